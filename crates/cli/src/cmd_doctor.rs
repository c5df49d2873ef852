//! `seekmath doctor`: the known-good base every later run starts from.
//!
//! It prints versions and devices, and on CUDA measures a bf16 matmul and checks scaled-dot-product attention
//! forward and backward against a plain f32 implementation, so a broken driver, a CPU-only libtorch or a missing
//! `libtorch_cuda` link shows up here rather than an hour into training.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use tch::{Device, Kind, Tensor};

/// Which device the user expects to work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// Use CUDA when present, otherwise the CPU; never fails for lack of a GPU.
    Auto,
    /// CPU only.
    Cpu,
    /// Require CUDA: the exit code is non-zero when it is unavailable or a check fails.
    Cuda,
}

/// Arguments of `seekmath doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Device to check; `cuda` makes a missing or failing GPU an error.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Matrix size of the bf16 matmul benchmark (n×n by n×n).
    #[arg(long, default_value_t = 8192)]
    matmul_size: i64,
    /// Timed matmul iterations (after warm-up).
    #[arg(long, default_value_t = 50)]
    matmul_iters: usize,
}

/// Runs the checks; returns a failing exit code when a requested capability is missing or wrong.
pub fn run(args: DoctorArgs) -> Result<ExitCode> {
    println!("seekmath {}", env!("CARGO_PKG_VERSION"));
    println!(
        "tch 0.24.0, libtorch (built against) {}",
        env!("SEEKMATH_LIBTORCH_BUILD_VERSION")
    );
    println!("cpu threads (intra-op): {}", tch::get_num_threads());
    let cuda = tch::Cuda::is_available();
    println!(
        "cuda: available={} devices={} cudnn={} cudart={}",
        cuda,
        tch::Cuda::device_count(),
        version_or_none(tch::utils::version_cudnn()),
        version_or_none(tch::utils::version_cudart()),
    );
    let mut ok = check_cpu_sdpa();
    match (args.device, cuda) {
        (DeviceChoice::Cuda, false) => {
            println!("FAIL: --device cuda was asked for, but libtorch sees no CUDA device");
            return Ok(ExitCode::FAILURE);
        }
        (DeviceChoice::Cuda, true) | (DeviceChoice::Auto, true) => {
            let device = Device::Cuda(0);
            let tflops = bf16_matmul_tflops(device, args.matmul_size, args.matmul_iters);
            println!(
                "cuda:0 bf16 matmul {n}x{n}x{n}: {tflops:.1} TFLOP/s",
                n = args.matmul_size
            );
            ok &= sdpa_check(device, Kind::BFloat16, 2e-2);
        }
        _ => {}
    }
    println!(
        "{}",
        if ok {
            "doctor: all checks passed"
        } else {
            "doctor: some checks FAILED"
        }
    );
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn version_or_none(v: i64) -> String {
    if v > 0 {
        v.to_string()
    } else {
        "none".to_string()
    }
}

fn check_cpu_sdpa() -> bool {
    sdpa_check(Device::Cpu, Kind::Float, 1e-4)
}

/// Times `iters` bf16 matmuls after a warm-up; the result is the achieved TFLOP/s (2·n³ flops each).
fn bf16_matmul_tflops(device: Device, n: i64, iters: usize) -> f64 {
    let a = Tensor::randn([n, n], (Kind::BFloat16, device));
    let b = Tensor::randn([n, n], (Kind::BFloat16, device));
    for _ in 0..5 {
        let _ = a.matmul(&b);
    }
    synchronize(device);
    let start = Instant::now();
    for _ in 0..iters {
        let _ = a.matmul(&b);
    }
    synchronize(device);
    let seconds = start.elapsed().as_secs_f64();
    2.0 * (n as f64).powi(3) * iters as f64 / seconds / 1e12
}

fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Causal grouped-query SDPA (forward and backward) in `kind` against an explicit f32 softmax(QKᵀ/√d)V.
fn sdpa_check(device: Device, kind: Kind, tolerance: f64) -> bool {
    let (batch, heads, kv_heads, seq, dim) = (2, 8, 2, 128, 64);
    let q32 = Tensor::randn([batch, heads, seq, dim], (Kind::Float, device));
    let k32 = Tensor::randn([batch, kv_heads, seq, dim], (Kind::Float, device));
    let v32 = Tensor::randn([batch, kv_heads, seq, dim], (Kind::Float, device));
    let grad_out = Tensor::randn([batch, heads, seq, dim], (Kind::Float, device));

    let q = q32.to_kind(kind).set_requires_grad(true);
    let k = k32.to_kind(kind).set_requires_grad(true);
    let v = v32.to_kind(kind).set_requires_grad(true);
    let fast = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, true, None, true);
    (fast.to_kind(Kind::Float) * &grad_out).sum(Kind::Float).backward();

    let qr = q32.set_requires_grad(true);
    let kr = k32.set_requires_grad(true);
    let vr = v32.set_requires_grad(true);
    let group = heads / kv_heads;
    let ke = kr.repeat_interleave_self_int(group, 1, None);
    let ve = vr.repeat_interleave_self_int(group, 1, None);
    let scores = qr.matmul(&ke.transpose(-2, -1)) / (dim as f64).sqrt();
    let causal = Tensor::ones([seq, seq], (Kind::Bool, device)).triu(1);
    let reference = scores
        .masked_fill(&causal, f64::NEG_INFINITY)
        .softmax(-1, Kind::Float)
        .matmul(&ve);
    (&reference * &grad_out).sum(Kind::Float).backward();

    let max_diff = |a: &Tensor, b: &Tensor| (a.to_kind(Kind::Float) - b).abs().max().double_value(&[]);
    let scale = |t: &Tensor| t.abs().max().double_value(&[]).max(1.0);
    let checks = [
        ("forward", max_diff(&fast, &reference) / scale(&reference)),
        ("grad q", max_diff(&q.grad(), &qr.grad()) / scale(&qr.grad())),
        ("grad k", max_diff(&k.grad(), &kr.grad()) / scale(&kr.grad())),
        ("grad v", max_diff(&v.grad(), &vr.grad()) / scale(&vr.grad())),
    ];
    let ok = checks.iter().all(|(_, d)| d.is_finite() && *d <= tolerance);
    let detail: Vec<String> = checks.iter().map(|(n, d)| format!("{n} {d:.2e}")).collect();
    println!(
        "{device:?} sdpa {kind:?} causal GQA forward+backward vs f32 reference (rel. max diff; tol {tolerance:e}): {} {}",
        detail.join(", "),
        if ok { "OK" } else { "FAIL" }
    );
    ok
}
