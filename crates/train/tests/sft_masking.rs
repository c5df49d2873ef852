//! Acceptance: SFT loss masking. Prompt tokens carry no loss: their logits receive exactly zero gradient, and
//! replacing the prompt tokens (as targets) leaves every parameter gradient bit-for-bit unchanged — while the
//! same change *does* alter the gradients when masking is switched off, so the test can fail.

use seekmath_model::{LoadedModel, ModelConfig};
use seekmath_train::data::sft::{pack_examples, SftExample};
use seekmath_train::data::{collate, Batch, IGNORE_INDEX};
use seekmath_train::step::lm_loss_sum;
use tch::{Device, Kind, Tensor};

fn model() -> LoadedModel {
    let cfg = ModelConfig::llama(64, 32, 48, 2, 4, 2, 64, 1e-6);
    LoadedModel::random(cfg, 5, Device::Cpu, Kind::Float).unwrap()
}

fn gradients(m: &LoadedModel, inputs: &Batch, labels: &Tensor) -> Vec<(String, Tensor)> {
    for (_, p) in m.vs.variables() {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    let logits = m.model.forward(&inputs.input_ids, inputs.attention_mask.as_ref());
    let n = labels.ne(IGNORE_INDEX).sum(Kind::Int64).int64_value(&[]);
    (lm_loss_sum(&logits, labels) / n as f64).backward();
    let mut out: Vec<(String, Tensor)> =
        m.vs.variables()
            .into_iter()
            .map(|(k, v)| (k, v.grad().copy()))
            .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.iter().zip(b).all(|((_, x), (_, y))| x.equal(y))
}

#[test]
fn prompt_tokens_get_no_gradient() {
    let m = model();
    let response = vec![20, 21, 22, 23, 2];
    let a = SftExample {
        prompt: vec![1, 5, 6, 7, 8, 9],
        response: response.clone(),
    };
    let b = SftExample {
        prompt: vec![1, 40, 41, 42, 43, 44],
        response: response.clone(),
    };
    let other = SftExample {
        prompt: vec![1, 30, 31],
        response: vec![32, 33, 2],
    };
    let seq_a = pack_examples(&[&a, &other], 24, 0);
    let seq_b = pack_examples(&[&b, &other], 24, 0);
    let (batch_a, batch_b) = (
        collate(std::slice::from_ref(&seq_a), false),
        collate(std::slice::from_ref(&seq_b), false),
    );

    // 1. Logit gradients at positions whose target is a prompt (or pad) token are exactly zero.
    let logits = m
        .model
        .forward(&batch_a.input_ids, batch_a.attention_mask.as_ref())
        .detach()
        .set_requires_grad(true);
    (lm_loss_sum(&logits, &batch_a.labels) / batch_a.target_tokens as f64).backward();
    let grad_rows = logits
        .grad()
        .abs()
        .sum_dim_intlist([-1].as_slice(), false, Kind::Float)
        .view([-1]);
    let labels: Vec<i64> = Vec::try_from(batch_a.labels.view([-1])).unwrap();
    for (t, &label) in labels.iter().enumerate() {
        let g = grad_rows.double_value(&[t as i64]);
        if label == IGNORE_INDEX {
            assert_eq!(g, 0.0, "position {t} predicts a prompt/pad token but has gradient {g}");
        } else {
            assert!(g > 0.0, "position {t} predicts a response token but has no gradient");
        }
    }
    assert_eq!(batch_a.target_tokens, (response.len() + 3) as i64);

    // 2. Replacing the prompt tokens as targets changes no parameter gradient.
    assert_eq!(
        Vec::<i64>::try_from(batch_a.labels.view([-1])).unwrap(),
        Vec::<i64>::try_from(batch_b.labels.view([-1])).unwrap()
    );
    let g_a = gradients(&m, &batch_a, &batch_a.labels);
    let g_ab = gradients(&m, &batch_a, &batch_b.labels);
    assert!(same(&g_a, &g_ab), "prompt targets leaked into the gradient");

    // 3. Control: without the mask (every token a target) the same change does alter the gradients.
    let unmask = |s: &seekmath_train::data::Sequence| {
        let mut s = s.clone();
        s.targets = s
            .segments
            .iter()
            .map(|&g| g != seekmath_train::data::PAD_SEGMENT)
            .collect();
        collate(&[s], false)
    };
    let (open_a, open_b) = (unmask(&seq_a), unmask(&seq_b));
    assert!(!same(
        &gradients(&m, &open_a, &open_a.labels),
        &gradients(&m, &open_a, &open_b.labels)
    ));
}
