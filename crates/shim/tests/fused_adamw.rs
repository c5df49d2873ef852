//! The fused AdamW kernel against the AdamW formula written out with tensor ops, and against libtorch's own
//! `torch::optim::AdamW` (through tch's optimizer), on CPU.

use seekmath_shim::{fused_adamw, ShimError};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// PyTorch's AdamW (decoupled weight decay, bias-corrected) in float64, one step.
#[allow(clippy::too_many_arguments)]
fn reference_step(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    step: i64,
    lr: f64,
    b1: f64,
    b2: f64,
    wd: f64,
    eps: f64,
) -> (Tensor, Tensor, Tensor) {
    let p = p * (1.0 - lr * wd);
    let m = m * b1 + g * (1.0 - b1);
    let v = v * b2 + g * g * (1.0 - b2);
    let bc1 = 1.0 - b1.powi(step as i32);
    let bc2 = 1.0 - b2.powi(step as i32);
    let denom = (&v / bc2).sqrt() + eps;
    let p = p - (&m / &denom) * (lr / bc1);
    (p, m, v)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn fused_adamw_matches_the_formula_over_several_steps() {
    tch::manual_seed(0);
    let shapes: [&[i64]; 3] = [&[7, 5], &[13], &[2, 3, 4]];
    let params: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu)))
        .collect();
    let exp_avgs: Vec<Tensor> = params.iter().map(|p| p.zeros_like()).collect();
    let exp_avg_sqs: Vec<Tensor> = params.iter().map(|p| p.zeros_like()).collect();
    let mut reference: Vec<(Tensor, Tensor, Tensor)> = params
        .iter()
        .map(|p| {
            (
                p.to_kind(Kind::Double),
                p.zeros_like().to_kind(Kind::Double),
                p.zeros_like().to_kind(Kind::Double),
            )
        })
        .collect();
    let (lr, b1, b2, wd, eps) = (3e-3, 0.9, 0.95, 0.1, 1e-8);
    for step in 1..=5 {
        let grads: Vec<Tensor> = params.iter().map(Tensor::randn_like).collect();
        fused_adamw(&params, &grads, &exp_avgs, &exp_avg_sqs, step, lr, b1, b2, wd, eps).unwrap();
        for (r, g) in reference.iter_mut().zip(&grads) {
            *r = reference_step(&r.0, &g.to_kind(Kind::Double), &r.1, &r.2, step, lr, b1, b2, wd, eps);
        }
        for (i, p) in params.iter().enumerate() {
            let diff = max_abs_diff(p, &reference[i].0);
            assert!(diff < 1e-6, "step {step}, param {i}: |fused - formula| = {diff:e}");
            assert!(max_abs_diff(&exp_avgs[i], &reference[i].1) < 1e-6);
            assert!(max_abs_diff(&exp_avg_sqs[i], &reference[i].2) < 1e-6);
        }
    }
    // The update really moved the parameters (a no-op kernel would fail the comparison above only by luck).
    assert!(max_abs_diff(&params[0], &reference[0].0.zeros_like()) > 0.1);
}

#[test]
fn fused_adamw_matches_libtorch_adamw_optimizer() {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().randn("w", &[16, 8], 0.0, 1.0);
    let mut opt = nn::AdamW {
        beta1: 0.9,
        beta2: 0.95,
        wd: 0.1,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(&vs, 1e-2)
    .unwrap();
    let ours = w.detach().copy();
    let m = ours.zeros_like();
    let v = ours.zeros_like();
    let x = Tensor::randn([4, 16], (Kind::Float, Device::Cpu));
    for step in 1..=3 {
        opt.zero_grad();
        let loss = x.matmul(&w).pow_tensor_scalar(2).sum(Kind::Float);
        loss.backward();
        let grad = w.grad().detach().copy();
        opt.step();
        fused_adamw(
            std::slice::from_ref(&ours),
            &[grad],
            &[m.shallow_clone()],
            &[v.shallow_clone()],
            step,
            1e-2,
            0.9,
            0.95,
            0.1,
            1e-8,
        )
        .unwrap();
        let diff = max_abs_diff(&ours, &w.detach());
        assert!(diff < 1e-6, "step {step}: |fused - torch::optim::AdamW| = {diff:e}");
        // Keep both on exactly the same trajectory.
        tch::no_grad(|| w.detach().copy_(&ours));
    }
}

#[test]
fn fused_adamw_rejects_inconsistent_lists() {
    let p = Tensor::zeros([3], (Kind::Float, Device::Cpu));
    let rejected = |grads: &[Tensor], step: i64| {
        let err = fused_adamw(
            &[p.shallow_clone()],
            grads,
            &[p.zeros_like()],
            &[p.zeros_like()],
            step,
            1e-3,
            0.9,
            0.95,
            0.0,
            1e-8,
        )
        .unwrap_err();
        assert!(matches!(err, ShimError::InvalidArgument(_)), "{err}");
    };
    rejected(&[], 1);
    // Steps count from 1 (bias correction divides by 1 - beta^step).
    rejected(&[p.zeros_like()], 0);
    // A shape mismatch is refused before it reaches the kernel (which does not check it on CPU).
    rejected(&[Tensor::zeros([4], (Kind::Float, Device::Cpu))], 1);
}
