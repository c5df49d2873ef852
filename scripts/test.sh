#!/usr/bin/env bash
# The test command: set-up (idempotent), formatting and lint gates, then every crate's tests on the CPU.
# Parity tests call the Python references installed by setup.sh into .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
source scripts/env.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tensor-free crates must not depend on tch"
for crate in seekmath-verify seekmath-corpus seekmath-bench; do
    if cargo tree -p "$crate" -e normal,build --locked | grep -Eq '(^|[^-])(tch|torch-sys) v'; then
        echo "error: $crate depends on tch/torch-sys" >&2
        exit 1
    fi
done
echo "== cargo test"
cargo test --workspace --locked "$@"
