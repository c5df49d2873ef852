//! Reference numbers from the DeepSeekMath paper (Shao et al., 2024, "DeepSeekMath: Pushing the Limits of
//! Mathematical Reasoning in Open Language Models", arXiv:2402.03300), printed next to our results.
//!
//! Only the DeepSeekMath 7B rows are kept, and only for settings the harness reproduces. Values are top-1
//! accuracy in percent, transcribed by hand from Tables 2, 3 and 5; check them against the PDF before quoting.
//! MATH-500 is not in the paper (it is a later subset of MATH), so it has no entry.

use serde::Serialize;

/// Evaluation setting as the paper's tables group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// Few-shot chain-of-thought (base models).
    FewShotCot,
    /// Few-shot program-of-thought (base models).
    FewShotPot,
    /// Zero-shot chain-of-thought (instruct / RL models).
    ZeroShotCot,
    /// Zero-shot tool-integrated reasoning (instruct / RL models).
    ZeroShotTir,
}

impl Setting {
    /// Human-readable label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Setting::FewShotCot => "few-shot CoT",
            Setting::FewShotPot => "few-shot PoT",
            Setting::ZeroShotCot => "zero-shot CoT",
            Setting::ZeroShotTir => "zero-shot tool-integrated",
        }
    }
}

/// One published number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PaperResult {
    /// Benchmark (registry name).
    pub bench: &'static str,
    /// Setting.
    pub setting: Setting,
    /// Model as named in the paper.
    pub model: &'static str,
    /// Top-1 accuracy in percent.
    pub accuracy: f64,
    /// Where in the paper.
    pub source: &'static str,
}

const T2: &str = "DeepSeekMath paper, Table 2";
const T3: &str = "DeepSeekMath paper, Table 3";
const T5: &str = "DeepSeekMath paper, Table 5";
const BASE: &str = "DeepSeekMath-Base 7B";
const INSTRUCT: &str = "DeepSeekMath-Instruct 7B";
const RL: &str = "DeepSeekMath-RL 7B";

macro_rules! r {
    ($bench:expr, $setting:ident, $model:expr, $acc:expr, $src:expr) => {
        PaperResult {
            bench: $bench,
            setting: Setting::$setting,
            model: $model,
            accuracy: $acc,
            source: $src,
        }
    };
}

/// The table.
pub static PAPER_RESULTS: &[PaperResult] = &[
    r!("gsm8k", FewShotCot, BASE, 64.2, T2),
    r!("math", FewShotCot, BASE, 36.2, T2),
    r!("ocw", FewShotCot, BASE, 15.4, T2),
    r!("sat", FewShotCot, BASE, 84.4, T2),
    r!("mmlu_stem", FewShotCot, BASE, 56.5, T2),
    r!("cmath", FewShotCot, BASE, 71.7, T2),
    r!("gaokao_mathcloze", FewShotCot, BASE, 20.3, T2),
    r!("gaokao_mathqa", FewShotCot, BASE, 35.3, T2),
    r!("gsm8k", FewShotPot, BASE, 66.9, T3),
    r!("math", FewShotPot, BASE, 31.4, T3),
    r!("gsm8k", ZeroShotCot, INSTRUCT, 82.9, T5),
    r!("math", ZeroShotCot, INSTRUCT, 46.8, T5),
    r!("mgsm_zh", ZeroShotCot, INSTRUCT, 73.2, T5),
    r!("cmath", ZeroShotCot, INSTRUCT, 84.6, T5),
    r!("gsm8k", ZeroShotCot, RL, 88.2, T5),
    r!("math", ZeroShotCot, RL, 51.7, T5),
    r!("mgsm_zh", ZeroShotCot, RL, 79.6, T5),
    r!("cmath", ZeroShotCot, RL, 88.8, T5),
    r!("gsm8k", ZeroShotTir, INSTRUCT, 83.7, T5),
    r!("math", ZeroShotTir, INSTRUCT, 57.4, T5),
    r!("mgsm_zh", ZeroShotTir, INSTRUCT, 72.0, T5),
    r!("cmath", ZeroShotTir, INSTRUCT, 84.3, T5),
    r!("gsm8k", ZeroShotTir, RL, 86.7, T5),
    r!("math", ZeroShotTir, RL, 58.8, T5),
    r!("mgsm_zh", ZeroShotTir, RL, 78.4, T5),
    r!("cmath", ZeroShotTir, RL, 87.6, T5),
];

/// Published numbers for a benchmark in a setting (possibly several models).
pub fn lookup(bench: &str, setting: Setting) -> Vec<PaperResult> {
    PAPER_RESULTS
        .iter()
        .filter(|r| r.bench == bench && r.setting == setting)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_a_registered_benchmark() {
        for r in PAPER_RESULTS {
            assert!(crate::registry::find(r.bench).is_ok(), "{}", r.bench);
            assert!((0.0..=100.0).contains(&r.accuracy));
        }
        assert_eq!(lookup("gsm8k", Setting::FewShotCot)[0].accuracy, 64.2);
        assert!(lookup("math500", Setting::FewShotCot).is_empty());
    }
}
