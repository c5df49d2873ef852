//! Continued pre-training and supervised fine-tuning, as DeepSeekMath ran them.
