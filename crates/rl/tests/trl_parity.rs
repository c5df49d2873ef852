//! Parity of the GRPO loss and gradients with TRL's `GRPOTrainer._compute_loss` (see `tests/py/trl_grpo_parity.py`).
//!
//! The Python side builds a tiny random Llama, fixed prompts/completions/rewards and old/reference log-probs, and
//! records TRL's loss, every parameter gradient, and the final-norm hidden states with their gradient. Two checks per
//! case: (1) from the recorded hidden states and `lm_head.weight` (no model crate involved): loss, ∂L/∂hidden and
//! ∂L/∂lm_head; (2) end to end through `seekmath_model::load` + `CausalLm::forward`: loss and every parameter's
//! gradient. Tolerance 1e-5 absolute. Skips (with a reason) when the venv or `trl` is missing.

mod common;
use common::{max_abs_diff, python};

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use seekmath_rl::advantage::{outcome_advantages, AdvantageOptions, RewardScaling};
use seekmath_rl::logprobs::completion_logprobs;
use seekmath_rl::loss::{grpo_loss, GrpoLossOptions, LossAggregation, PolicyTerms, StepTotals};
use tch::{Device, Kind, Tensor};

const TOL: f64 = 1e-5;

fn generate_references(out: &Path) -> Option<serde_json::Value> {
    let py = python()?;
    let probe = Command::new(&py)
        .args(["-c", "import trl, transformers, datasets"])
        .output()
        .ok()?;
    if !probe.status.success() {
        eprintln!(
            "SKIP: python package `trl` is not installed in {} (scripts/setup.sh installs it)",
            py.display()
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/trl_grpo_parity.py");
    let run = Command::new(&py).arg(&script).arg(out).output().expect("run python");
    assert!(
        run.status.success(),
        "reference script failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    Some(serde_json::from_str(&manifest).unwrap())
}

struct Case {
    options: GrpoLossOptions,
    scaling: RewardScaling,
    temperature: f64,
    tensors: HashMap<String, Tensor>,
}

fn load_case(dir: &Path, name: &str, spec: &serde_json::Value, manifest: &serde_json::Value) -> Case {
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join(format!("{name}.safetensors")))
        .unwrap()
        .into_iter()
        .collect();
    let aggregation = match spec["loss_type"].as_str().unwrap() {
        "grpo" => LossAggregation::Grpo,
        "dapo" => LossAggregation::Dapo,
        "dr_grpo" => LossAggregation::DrGrpo,
        other => panic!("unexpected loss type {other}"),
    };
    let scaling = match spec["scale_rewards"].as_str().unwrap() {
        "group" => RewardScaling::Group,
        "none" => RewardScaling::None,
        other => panic!("unexpected scale_rewards {other}"),
    };
    let options = GrpoLossOptions {
        epsilon: spec["epsilon"].as_f64().unwrap(),
        epsilon_high: spec["epsilon_high"].as_f64(),
        beta: spec["beta"].as_f64().unwrap(),
        aggregation,
        max_completion_length: manifest["max_completion_length"].as_u64().unwrap() as usize,
        kl_importance_correction: spec["use_bias_correction_kl"].as_bool().unwrap(),
    };
    Case {
        options,
        scaling,
        temperature: manifest["temperature"].as_f64().unwrap(),
        tensors,
    }
}

impl Case {
    fn t(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("missing tensor {name}"))
    }

    /// Our advantages from the rewards; asserted equal to TRL's before use.
    fn advantages(&self, group_size: usize) -> Tensor {
        let rewards: Vec<f64> = Vec::try_from(self.t("rewards").to_kind(Kind::Double)).unwrap();
        let opts = AdvantageOptions {
            scaling: self.scaling,
            std_epsilon: 1e-4,
        };
        let ours = outcome_advantages(&rewards, group_size, &opts).unwrap().advantages;
        let ours = Tensor::from_slice(&ours).to_kind(Kind::Float);
        assert!(
            max_abs_diff(&ours, self.t("advantages")) < 1e-6,
            "advantages differ from TRL's"
        );
        ours
    }

    fn loss_from_logits(&self, logits: &Tensor, group_size: usize) -> Tensor {
        let input_ids = Tensor::cat(&[self.t("prompt_ids"), self.t("completion_ids")], 1);
        let completion_len = self.t("completion_ids").size()[1];
        let logp = completion_logprobs(logits, &input_ids, completion_len, self.temperature);
        let mask = self.t("loss_mask").to_kind(Kind::Float);
        let advantages = self.advantages(group_size);
        let terms = PolicyTerms {
            logprobs: &logp,
            old_logprobs: Some(self.t("old_logprobs")),
            ref_logprobs: Some(self.t("ref_logprobs")),
            advantages: &advantages,
            mask: &mask,
        };
        grpo_loss(&terms, &self.options, StepTotals::of_mask(&mask))
            .unwrap()
            .loss
    }
}

#[test]
fn grpo_loss_and_gradients_match_trl() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(manifest) = generate_references(tmp.path()) else {
        return;
    };
    let group_size = manifest["group_size"].as_u64().unwrap() as usize;
    let cases = manifest["cases"].as_object().unwrap();
    assert!(
        cases.contains_key("grpo_beta0.04")
            && cases.contains_key("dapo_beta0.04")
            && cases.contains_key("dr_grpo_beta0.04")
    );
    for (name, spec) in cases {
        let case = load_case(tmp.path(), name, spec, &manifest);
        let trl_loss = case.t("loss").double_value(&[0]);

        // (1) From TRL's own hidden states: isolates the loss math from the model implementation.
        let hidden = case.t("hidden").detach().set_requires_grad(true);
        let head = case.t("lm_head_weight").detach().set_requires_grad(true);
        let logits = hidden.matmul(&head.tr());
        let loss = case.loss_from_logits(&logits, group_size);
        loss.backward();
        let d_loss = (loss.double_value(&[]) - trl_loss).abs();
        assert!(
            d_loss < TOL,
            "{name}: loss {} vs TRL {trl_loss}",
            loss.double_value(&[])
        );
        let d_hidden = max_abs_diff(&hidden.grad(), case.t("hidden_grad"));
        let d_head = max_abs_diff(&head.grad(), case.t("grad.lm_head.weight"));
        assert!(
            d_hidden < TOL && d_head < TOL,
            "{name}: dL/dhidden diff {d_hidden}, dL/dlm_head diff {d_head}"
        );
        println!("{name}: loss {trl_loss:.8} |Δloss| {d_loss:.2e} |Δ∂hidden| {d_hidden:.2e} |Δ∂lm_head| {d_head:.2e}");

        // (2) End to end through the model crate.
        let loaded = seekmath_model::load(&tmp.path().join("model"), Device::Cpu, Kind::Float).unwrap();
        let input_ids = Tensor::cat(&[case.t("prompt_ids"), case.t("completion_ids")], 1);
        let attention = Tensor::cat(&[case.t("prompt_mask"), case.t("loss_mask")], 1);
        let logits = loaded.model.forward(&input_ids, Some(&attention));
        let loss = case.loss_from_logits(&logits, group_size);
        loss.backward();
        let d_loss = (loss.double_value(&[]) - trl_loss).abs();
        assert!(
            d_loss < TOL,
            "{name} (model): loss {} vs TRL {trl_loss}",
            loss.double_value(&[])
        );
        let mut worst = (0.0f64, String::new());
        let variables = loaded.vs.variables();
        assert!(!variables.is_empty());
        for (pname, param) in &variables {
            let reference = case.t(&format!("grad.{pname}"));
            let d = max_abs_diff(&param.grad(), reference);
            if d > worst.0 {
                worst = (d, pname.clone());
            }
        }
        assert!(
            worst.0 < TOL,
            "{name} (model): gradient of {} differs by {}",
            worst.1,
            worst.0
        );
        println!(
            "{name} (model): |Δloss| {d_loss:.2e}, max |Δgrad| {:.2e} over {} parameters",
            worst.0,
            variables.len()
        );
    }
}
