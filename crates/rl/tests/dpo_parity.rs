//! Parity of the DPO loss and gradients with TRL's `DPOTrainer._compute_loss` (`tests/py/trl_dpo_parity.py`), and of
//! PPO's GAE (with whitening) with a batched Python reference (`tests/py/gae_reference.py`).
//!
//! DPO, two checks per case: (1) the loss formula from the recorded sequence log-probabilities and reference
//! log-probabilities (no model crate involved); (2) end to end through `seekmath_model::load`, the crate's
//! completion log-probabilities and `dpo_loss`: the loss and every parameter gradient. Tolerance 1e-5 absolute.
//! Skips (with a reason) when the venv, `torch` or `trl` is missing.

mod common;
use common::{max_abs_diff, python};

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use seekmath_rl::dpo::dpo_loss;
use seekmath_rl::paradigm::gae;
use seekmath_rl::ppo::{batch_advantages, PpoOptions};
use seekmath_rl::seqbatch::{token_logprobs, TokenBatch, TokenSequence};
use tch::{Device, Kind, Tensor};

const TOL: f64 = 1e-5;

fn run_script(py: &Path, modules: &str, script: &str, out: &Path) -> bool {
    let probe = Command::new(py).args(["-c", &format!("import {modules}")]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIP: python packages `{modules}` are not installed in {} (scripts/setup.sh installs them)",
            py.display()
        );
        return false;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(script);
    let run = Command::new(py).arg(&script).arg(out).output().expect("run python");
    assert!(
        run.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    true
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

#[test]
fn dpo_loss_and_gradients_match_trl() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    if !run_script(&py, "trl, transformers, datasets", "trl_dpo_parity.py", dir.path()) {
        return;
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_object().unwrap();
    assert!(!cases.is_empty());
    for (name, spec) in cases {
        let t = tensors(&dir.path().join(format!("{name}.safetensors")));
        let beta = spec["beta"].as_f64().unwrap();
        let pairs = spec["pairs"].as_i64().unwrap();
        let prompt_len = spec["prompt_len"].as_u64().unwrap() as usize;
        let want = t["loss"].double_value(&[0]);

        // (1) The formula on TRL-side sequence log-probabilities.
        let seq = &t["seq_logps"];
        let out = dpo_loss(
            &seq.narrow(0, 0, pairs),
            &seq.narrow(0, pairs, pairs),
            &t["ref_chosen"],
            &t["ref_rejected"],
            beta,
        );
        let got = out.loss.double_value(&[]);
        assert!((got - want).abs() < TOL, "{name}: formula loss {got} vs TRL {want}");

        // (2) End to end through the model crate.
        let model = seekmath_model::load(&dir.path().join("model"), Device::Cpu, Kind::Float).unwrap();
        let ids: Vec<i64> = Vec::try_from(t["input_ids"].flatten(0, -1)).unwrap();
        let attn: Vec<i64> = Vec::try_from(t["attention_mask"].flatten(0, -1)).unwrap();
        let width = t["input_ids"].size()[1] as usize;
        let seqs: Vec<TokenSequence> = (0..2 * pairs as usize)
            .map(|r| {
                let len = attn[r * width..(r + 1) * width].iter().sum::<i64>() as usize;
                TokenSequence {
                    ids: ids[r * width..r * width + len].to_vec(),
                    prompt_len,
                }
            })
            .collect();
        let refs: Vec<&TokenSequence> = seqs.iter().collect();
        let batch = TokenBatch::new(&refs, 0, Device::Cpu).unwrap();
        let logp = token_logprobs(&model.model, &batch, 1.0, None).unwrap();
        let sums = (logp * &batch.mask).sum_dim_intlist(-1, false, Kind::Float);
        assert!(max_abs_diff(&sums, seq) < TOL, "{name}: sequence log-probs differ");
        let out = dpo_loss(
            &sums.narrow(0, 0, pairs),
            &sums.narrow(0, pairs, pairs),
            &t["ref_chosen"],
            &t["ref_rejected"],
            beta,
        );
        let got = out.loss.double_value(&[]);
        assert!((got - want).abs() < TOL, "{name}: model loss {got} vs TRL {want}");
        out.loss.backward();
        let mut checked = 0;
        for (pname, var) in model.vs.variables() {
            let reference = t
                .get(&format!("grad.{pname}"))
                .unwrap_or_else(|| panic!("{name}: TRL has no gradient for {pname}"));
            let d = max_abs_diff(&var.grad(), reference);
            assert!(d < TOL, "{name}: gradient of {pname} differs by {d}");
            checked += 1;
        }
        assert_eq!(checked, t.keys().filter(|k| k.starts_with("grad.")).count());
    }
}

#[test]
fn gae_and_whitening_match_the_batched_reference() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    if !run_script(&py, "torch, safetensors", "gae_reference.py", dir.path()) {
        return;
    }
    let t = tensors(&dir.path().join("gae.safetensors"));
    let lengths: Vec<i64> = Vec::try_from(&t["lengths"]).unwrap();
    let rows = |name: &str| -> Vec<Vec<f64>> {
        lengths
            .iter()
            .enumerate()
            .map(|(r, &n)| Vec::<f64>::try_from(t[name].get(r as i64).narrow(0, 0, n)).unwrap())
            .collect()
    };
    let (rewards, values) = (rows("rewards"), rows("values"));
    for (name, gamma, lambda) in [("g1_l095", 1.0, 0.95), ("g099_l09", 0.99, 0.9)] {
        let want_adv = rows(&format!("{name}.advantages"));
        let want_ret = rows(&format!("{name}.returns"));
        for r in 0..rewards.len() {
            let (a, ret) = gae(&rewards[r], &values[r], gamma, lambda);
            for k in 0..a.len() {
                assert!((a[k] - want_adv[r][k]).abs() < 1e-12, "{name} row {r} advantage {k}");
                assert!((ret[k] - want_ret[r][k]).abs() < 1e-12, "{name} row {r} return {k}");
            }
        }
        let opts = PpoOptions {
            gamma,
            lambda,
            whiten_advantages: true,
            ..Default::default()
        };
        let (whitened, _) = batch_advantages(&rewards, &values, &opts);
        let want = rows(&format!("{name}.whitened"));
        for (g, w) in whitened.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-9, "{name}: whitened {g} vs {w}");
        }
    }
}
