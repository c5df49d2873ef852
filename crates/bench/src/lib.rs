//! Math benchmarks: data loaders, prompts (few-shot chain-of-thought, program-of-thought), a sandbox for
//! model-written code, and scoring through the verifier. No tensors: generation is supplied by the caller.
