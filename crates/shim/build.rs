//! Compiles `csrc/shim.cpp` against the libtorch that torch-sys links (the project venv's torch).
//!
//! Paths come from the venv python (env `SEEKMATH_PYTHON`, else `python3` on PATH), as torch-sys finds libtorch.
//! CUDA parts are compiled only when the CUDA runtime headers are present (`pip install --no-deps
//! 'nvidia-cuda-crt==13.0.*'` next to torch's CUDA wheels); otherwise their entry points return an error at run
//! time, so a CPU-only machine still builds everything above this crate.

use std::path::{Path, PathBuf};
use std::process::Command;

const PROBE: &str = "import os,sysconfig,torch;print(os.path.dirname(torch.__file__));print(sysconfig.get_paths()['purelib']);print(int(torch._C._GLIBCXX_USE_CXX11_ABI))";

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-env-changed=SEEKMATH_PYTHON");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    let python = std::env::var("SEEKMATH_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(&python)
        .args(["-c", PROBE])
        .output()
        .unwrap_or_else(|err| panic!("seekmath-shim: cannot run {python}: {err}"));
    if !out.status.success() {
        panic!(
            "seekmath-shim: `{python}` cannot import torch (source scripts/env.sh first): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let torch_dir = PathBuf::from(lines.next().expect("torch dir"));
    let site_packages = PathBuf::from(lines.next().expect("site-packages"));
    let cxx11_abi = lines.next().unwrap_or("1").trim().to_string();
    let torch_lib = torch_dir.join("lib");
    let cuda_include = site_packages.join("nvidia/cu13/include");

    let with_cuda = cuda_include.join("cuda_runtime_api.h").exists()
        && cuda_include.join("crt/host_defines.h").exists()
        && torch_lib.join("libtorch_cuda.so").exists()
        && torch_dir.join("include/ATen/cuda/CUDAGraph.h").exists();

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/shim.cpp")
        .std("c++17")
        .include(torch_dir.join("include"))
        .include(torch_dir.join("include/torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi.as_str())
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false);
    if with_cuda {
        build.include(&cuda_include).define("SEEKMATH_SHIM_CUDA", None);
    } else {
        println!(
            "cargo:warning=seekmath-shim: CUDA headers not found under {} (pip install --no-deps 'nvidia-cuda-crt==13.0.*'); building CPU-only",
            cuda_include.display()
        );
    }
    build.compile("seekmath_shim");

    link_dir(&torch_lib);
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if with_cuda {
        // Only torch's own libraries are linked: they find the CUDA runtime through their RUNPATH, so running needs
        // nothing on the library path but torch/lib (the shim never calls the CUDA runtime directly).
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
}

fn link_dir(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
}
