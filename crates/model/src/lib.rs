//! Decoder-only transformers (Llama, Mistral, Qwen2, DeepSeek-LLM) on libtorch through tch: loading from Hugging Face
//! folders, GGUF and llama2.c files, saving in Hugging Face format, and a batched sampling engine.
