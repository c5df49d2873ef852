//! The benchmark registry: which file each benchmark reads, how its records look, what kind of answer it expects
//! and which DeepSeek-Math prompt sets go with it.
//!
//! The names follow the DeepSeekMath paper's tables; the prompt-set file names follow DeepSeek-Math's
//! `few_shot_test_configs.json` (the task → prompt-class map), which the shared data pack ships as JSON.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use seekmath_verify::extract::AnswerKind;

/// The on-disk record layout of a benchmark file; drives the loader in [`crate::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// `{question, answer}` with the answer's last line `#### N` (OpenAI GSM8K release).
    Gsm8k,
    /// `{problem, solution, ...}`; the gold answer is the last `\boxed{}` of the solution (Hendrycks MATH).
    MathSolution,
    /// `{problem, answer, ...}` (MATH-500 / PRM800K split).
    MathAnswer,
    /// `{question, golden, ...}` (CMATH).
    Cmath,
    /// DeepSeek chat format `{messages: [{role: user, content}], answer}` or a TSV `question<TAB>answer`.
    Mgsm,
    /// `{question, answer: "a;b"}` (AGIEval Gaokao-MathCloze, one or more blanks).
    GaokaoCloze,
    /// `{question, options: ["(A)..", ..], label: "A" | "AD"}` (AGIEval Gaokao-MathQA).
    GaokaoQa,
    /// `{question, options: [4 strings], answer: letter}` (MMLU-STEM).
    MmluStem,
    /// `{problem, solution, answer}` (Minerva OCW Courses).
    Ocw,
    /// `{question, options: "A) .. B) ..", Answer: letter}` (SAT).
    Sat,
}

/// Language of a benchmark's prompts: picks the zero-shot instruction (DeepSeekMath-Instruct uses one per language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// English.
    En,
    /// Chinese.
    Zh,
}

/// Everything the harness knows about one benchmark.
#[derive(Debug, Clone)]
pub struct BenchmarkSpec {
    /// Canonical name used on the command line and in reports (`gsm8k`, `math500`, ...).
    pub name: &'static str,
    /// Extra accepted spellings.
    pub aliases: &'static [&'static str],
    /// Display name as in the paper's tables.
    pub display: &'static str,
    /// Default file relative to the benchmark data root (`shared/data/benchmarks`).
    pub default_file: &'static str,
    /// Record layout.
    pub format: RecordFormat,
    /// What a final answer looks like; drives extraction and scoring.
    pub answer_kind: AnswerKind,
    /// Prompt language.
    pub language: Language,
    /// Few-shot chain-of-thought prompt set (file in `fewshot/`), if DeepSeek-Math defines one.
    pub cot_prompt: Option<&'static str>,
    /// Program-of-thought (PAL) prompt set, if DeepSeek-Math defines one.
    pub pot_prompt: Option<&'static str>,
}

impl BenchmarkSpec {
    /// The default data file under a benchmark data root.
    pub fn default_path(&self, data_root: &Path) -> PathBuf {
        data_root.join(self.default_file)
    }
}

/// All benchmarks the harness ships loaders for, in the order of the paper's Table 2, then the others.
pub static BENCHMARKS: &[BenchmarkSpec] = &[
    BenchmarkSpec {
        name: "gsm8k",
        aliases: &["gsm"],
        display: "GSM8K",
        default_file: "gsm8k/test.jsonl",
        format: RecordFormat::Gsm8k,
        answer_kind: AnswerKind::Number,
        language: Language::En,
        cot_prompt: Some("cot_gsm_8_shot.json"),
        pot_prompt: Some("pal_gsm_8_shot.json"),
    },
    BenchmarkSpec {
        name: "math",
        aliases: &[],
        display: "MATH",
        default_file: "math/test.jsonl",
        format: RecordFormat::MathSolution,
        answer_kind: AnswerKind::Expression,
        language: Language::En,
        cot_prompt: Some("cot_minerva_math_4_shot.json"),
        pot_prompt: Some("pal_math_4_shot.json"),
    },
    BenchmarkSpec {
        name: "math500",
        aliases: &["math-500"],
        display: "MATH-500",
        default_file: "math500/test.jsonl",
        format: RecordFormat::MathAnswer,
        answer_kind: AnswerKind::Expression,
        language: Language::En,
        cot_prompt: Some("cot_minerva_math_4_shot.json"),
        pot_prompt: Some("pal_math_4_shot.json"),
    },
    BenchmarkSpec {
        name: "ocw",
        aliases: &["ocwcourses"],
        display: "OCW Courses",
        default_file: "ocw/test.jsonl",
        format: RecordFormat::Ocw,
        answer_kind: AnswerKind::Expression,
        language: Language::En,
        cot_prompt: Some("cot_ocwcourses_4_shot.json"),
        pot_prompt: None,
    },
    BenchmarkSpec {
        name: "sat",
        aliases: &["math_sat"],
        display: "SAT",
        default_file: "sat/test.jsonl",
        format: RecordFormat::Sat,
        answer_kind: AnswerKind::Choice,
        language: Language::En,
        cot_prompt: Some("cot_math_sat_4_shot.json"),
        pot_prompt: None,
    },
    BenchmarkSpec {
        name: "mmlu_stem",
        aliases: &[],
        display: "MMLU-STEM",
        default_file: "mmlu_stem/test.jsonl",
        format: RecordFormat::MmluStem,
        answer_kind: AnswerKind::Choice,
        language: Language::En,
        cot_prompt: Some("cot_mmlu_stem_4_shot.json"),
        pot_prompt: None,
    },
    BenchmarkSpec {
        name: "cmath",
        aliases: &[],
        display: "CMATH",
        default_file: "cmath/test.jsonl",
        format: RecordFormat::Cmath,
        answer_kind: AnswerKind::Number,
        language: Language::Zh,
        cot_prompt: Some("cot_cmath_6_shot.json"),
        pot_prompt: None,
    },
    BenchmarkSpec {
        name: "gaokao_mathcloze",
        aliases: &[],
        display: "Gaokao MathCloze",
        default_file: "gaokao_mathcloze/test.jsonl",
        format: RecordFormat::GaokaoCloze,
        answer_kind: AnswerKind::MultiBlank,
        language: Language::Zh,
        cot_prompt: Some("cot_gaokao_mathcloze_5_shot.json"),
        pot_prompt: None,
    },
    BenchmarkSpec {
        name: "gaokao_mathqa",
        aliases: &[],
        display: "Gaokao MathQA",
        default_file: "gaokao_mathqa/test.jsonl",
        format: RecordFormat::GaokaoQa,
        answer_kind: AnswerKind::Choice,
        language: Language::Zh,
        cot_prompt: Some("cot_gaokao_mathqa_5_shot.json"),
        pot_prompt: None,
    },
    BenchmarkSpec {
        name: "mgsm_zh",
        aliases: &[],
        display: "MGSM-zh",
        default_file: "mgsm_zh/mgsm_zh.deepseek.jsonl",
        format: RecordFormat::Mgsm,
        answer_kind: AnswerKind::Number,
        language: Language::Zh,
        cot_prompt: None,
        pot_prompt: None,
    },
];

/// Looks a benchmark up by name or alias (case-insensitive, `-` and `_` interchangeable).
pub fn find(name: &str) -> Result<&'static BenchmarkSpec> {
    let wanted = normalize(name);
    for spec in BENCHMARKS {
        if normalize(spec.name) == wanted || spec.aliases.iter().any(|a| normalize(a) == wanted) {
            return Ok(spec);
        }
    }
    let known: Vec<&str> = BENCHMARKS.iter().map(|s| s.name).collect();
    bail!("unknown benchmark {name:?}; known: {}", known.join(", "))
}

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

/// A benchmark selection from the command line: `name` (default file under the data root) or `name=PATH`
/// (the same record format read from any file).
#[derive(Debug, Clone)]
pub struct BenchmarkSelection {
    /// The benchmark's registry entry.
    pub spec: &'static BenchmarkSpec,
    /// The file to read.
    pub path: PathBuf,
}

/// Parses a comma-separated `--bench` list such as `gsm8k,math500=/data/m500.jsonl`.
pub fn parse_selection(list: &str, data_root: &Path) -> Result<Vec<BenchmarkSelection>> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, path) = match part.split_once('=') {
            Some((name, path)) => (name, Some(PathBuf::from(path))),
            None => (part, None),
        };
        let spec = find(name)?;
        let path = path.unwrap_or_else(|| spec.default_path(data_root));
        out.push(BenchmarkSelection { spec, path });
    }
    if out.is_empty() {
        bail!("no benchmark selected (expected e.g. --bench gsm8k,math500)");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_name_and_alias() {
        assert_eq!(find("GSM8K").unwrap().name, "gsm8k");
        assert_eq!(find("math-500").unwrap().name, "math500");
        assert_eq!(find("mgsm-zh").unwrap().name, "mgsm_zh");
        assert!(find("nope").is_err());
    }

    #[test]
    fn parses_selection_with_paths() {
        let sel = parse_selection("gsm8k, math500=/tmp/x.jsonl", Path::new("/data")).unwrap();
        assert_eq!(sel[0].path, PathBuf::from("/data/gsm8k/test.jsonl"));
        assert_eq!(sel[1].path, PathBuf::from("/tmp/x.jsonl"));
        assert!(parse_selection(" , ", Path::new("/d")).is_err());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = BENCHMARKS
            .iter()
            .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
            .map(normalize)
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
