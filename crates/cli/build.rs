//! Links `libtorch_cuda` into the `seekmath` binary even though no Rust code references a CUDA symbol.
//!
//! torch-sys asks for `-ltorch_cuda`, but rustc's default `--as-needed` drops it, and libtorch then reports CUDA as
//! unavailable on a GPU host. The flags apply to binaries only: RUSTFLAGS would also reach build scripts.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PATH");
    let python = std::env::var("SEEKMATH_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let probe = Command::new(&python)
        .args([
            "-c",
            "import torch,os;print(os.path.join(os.path.dirname(torch.__file__),'lib'));print(torch.__version__)",
        ])
        .output();
    let (lib_dir, version) = match probe {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let mut lines = text.lines();
            (
                lines.next().unwrap_or_default().to_string(),
                lines.next().unwrap_or("unknown").to_string(),
            )
        }
        _ => (String::new(), "unknown".to_string()),
    };
    println!("cargo:rustc-env=SEEKMATH_LIBTORCH_BUILD_VERSION={version}");
    if !lib_dir.is_empty() && std::path::Path::new(&lib_dir).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bins=-L{lib_dir}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
