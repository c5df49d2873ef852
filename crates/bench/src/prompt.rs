//! Prompt construction for the four evaluation settings of the DeepSeekMath paper.
//!
//! - few-shot chain-of-thought (base models, Table 2): the DeepSeek-Math exemplar sets;
//! - zero-shot chain-of-thought (instruct/RL models, Table 5): the model's chat template plus the step-by-step
//!   instruction DeepSeekMath-Instruct was evaluated with;
//! - program-of-thought (Table 3): the PAL exemplar sets, the program is run in the sandbox;
//! - tool-integrated (Table 5): chat template plus the "integrate natural language reasoning with programs"
//!   instruction; code blocks are executed and their output fed back.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::fewshot::FewShotPromptSet;
use crate::registry::{BenchmarkSpec, Language};
use crate::runner::Generator;

/// How the model is asked to solve a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// Natural-language chain of thought.
    Cot,
    /// Program of thought: the completion is a Python program whose output is the answer.
    Pot,
    /// Tool-integrated reasoning: interleaved text and executed code blocks.
    Tir,
}

impl std::str::FromStr for PromptMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cot" => Ok(Self::Cot),
            "pot" | "pal" => Ok(Self::Pot),
            "tir" | "tool" => Ok(Self::Tir),
            other => Err(format!("unknown mode {other:?} (expected cot, pot or tir)")),
        }
    }
}

impl std::fmt::Display for PromptMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cot => "cot",
            Self::Pot => "pot",
            Self::Tir => "tir",
        })
    }
}

/// Shape of the program a PoT prompt set asks for, which decides how the harness runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramStyle {
    /// `def solution(): ... return result` (PAL GSM8K): the harness prints `solution()`.
    SolutionFunction,
    /// A fenced program assigning `answer`, then a fenced imports block (PAL MATH): the harness prints `answer`.
    AnswerVariable,
}

/// Zero-shot instruction appended to the question, per mode and language (DeepSeekMath-Instruct evaluation).
pub fn zero_shot_instruction(mode: PromptMode, language: Language) -> &'static str {
    match (mode, language) {
        (PromptMode::Tir, Language::En) => {
            "Please integrate natural language reasoning with programs to solve the problem above, and put your final answer within \\boxed{}."
        }
        (PromptMode::Tir, Language::Zh) => "请结合自然语言和Python程序语言来解答问题，并把最终答案放置于\\boxed{}中。",
        (_, Language::En) => "Please reason step by step, and put your final answer within \\boxed{}.",
        (_, Language::Zh) => "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。",
    }
}

/// Builds prompts and stop strings for one benchmark in one setting.
#[derive(Debug, Clone)]
pub struct PromptBuilder {
    style: Style,
    mode: PromptMode,
    stop: Vec<String>,
}

#[derive(Debug, Clone)]
enum Style {
    FewShot {
        set: FewShotPromptSet,
        shots: Option<usize>,
    },
    Chat {
        instruction: &'static str,
    },
}

impl PromptBuilder {
    /// `shots`: `None` = the published exemplar count, `Some(0)` = zero-shot chat, `Some(n)` = first n exemplars.
    pub fn new(spec: &BenchmarkSpec, mode: PromptMode, shots: Option<usize>, fewshot_dir: &Path) -> Result<Self> {
        let zero_shot = shots == Some(0);
        let style = match (mode, zero_shot) {
            (PromptMode::Tir, false) if shots.is_some() => {
                bail!("tool-integrated prompts are zero-shot chat prompts; use --shots 0 with --mode tir")
            }
            (PromptMode::Tir, _) | (PromptMode::Cot, true) => Style::Chat {
                instruction: zero_shot_instruction(mode, spec.language),
            },
            (PromptMode::Pot, true) => bail!("program-of-thought needs the PAL few-shot prompts; drop --shots 0"),
            (PromptMode::Cot, false) | (PromptMode::Pot, false) => {
                let file = if mode == PromptMode::Cot {
                    spec.cot_prompt
                } else {
                    spec.pot_prompt
                };
                match (file, shots) {
                    (Some(_), _) => {}
                    // Benchmarks the paper only evaluates zero-shot (MGSM-zh) default to the chat prompt.
                    (None, None) if mode == PromptMode::Cot => {
                        let instruction = zero_shot_instruction(mode, spec.language);
                        return Ok(Self {
                            style: Style::Chat { instruction },
                            mode,
                            stop: Vec::new(),
                        });
                    }
                    (None, _) => {
                        bail!(
                            "{} has no DeepSeek-Math few-shot {mode} prompt set; use --shots 0",
                            spec.display
                        )
                    }
                }
                let file = file.expect("checked above");
                let path = fewshot_dir.join(file);
                let set = FewShotPromptSet::load(&path).with_context(|| format!("prompt set for {}", spec.name))?;
                Style::FewShot { set, shots }
            }
        };
        let mut stop = match &style {
            Style::FewShot { set, .. } => set.stop_words.clone(),
            Style::Chat { .. } => Vec::new(),
        };
        if mode == PromptMode::Tir {
            stop.push("```output".to_string());
        }
        Ok(Self { style, mode, stop })
    }

    /// The prompting mode.
    pub fn mode(&self) -> PromptMode {
        self.mode
    }

    /// Stop strings for generation.
    pub fn stop_words(&self) -> &[String] {
        &self.stop
    }

    /// Number of exemplars in the prompt (0 for chat prompts).
    pub fn shots(&self) -> usize {
        match &self.style {
            Style::FewShot { set, shots } => shots.unwrap_or(set.len()),
            Style::Chat { .. } => 0,
        }
    }

    /// How programs of this PoT prompt set are run (`None` for non-PoT prompts).
    pub fn program_style(&self) -> Option<ProgramStyle> {
        match (&self.style, self.mode) {
            (Style::FewShot { set, .. }, PromptMode::Pot) => Some(
                if set.format_template.contains("def solution") || set.few_shot_prompt.contains("def solution():") {
                    ProgramStyle::SolutionFunction
                } else {
                    ProgramStyle::AnswerVariable
                },
            ),
            _ => None,
        }
    }

    /// The full prompt text for a problem.
    pub fn build(&self, problem: &Problem, generator: &dyn Generator) -> Result<String> {
        match &self.style {
            Style::FewShot { set, shots } => set.format(&problem.question, *shots),
            Style::Chat { instruction } => {
                let content = format!("{}\n{instruction}", problem.question.trim());
                generator.chat_prompt(&[("user".to_string(), content)])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_parses() {
        assert_eq!("PoT".parse::<PromptMode>().unwrap(), PromptMode::Pot);
        assert_eq!("tool".parse::<PromptMode>().unwrap(), PromptMode::Tir);
        assert!("x".parse::<PromptMode>().is_err());
    }

    #[test]
    fn rejects_impossible_settings() {
        let gsm = crate::registry::find("gsm8k").unwrap();
        let dir = Path::new("/nonexistent");
        assert!(PromptBuilder::new(gsm, PromptMode::Tir, Some(8), dir).is_err());
        assert!(PromptBuilder::new(gsm, PromptMode::Pot, Some(0), dir).is_err());
        let chat = PromptBuilder::new(gsm, PromptMode::Tir, Some(0), dir).unwrap();
        assert_eq!(chat.stop_words(), ["```output"]);
        let mgsm = crate::registry::find("mgsm_zh").unwrap();
        assert!(PromptBuilder::new(mgsm, PromptMode::Cot, Some(8), dir).is_err());
        assert_eq!(PromptBuilder::new(mgsm, PromptMode::Cot, None, dir).unwrap().shots(), 0);
    }
}
