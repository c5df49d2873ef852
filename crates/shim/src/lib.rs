//! A small C++ shim for the libtorch APIs that tch does not bind (fused AdamW, CUDA graphs, streams, autocast).
