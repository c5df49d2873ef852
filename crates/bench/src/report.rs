//! Summaries (JSON) and the markdown table that puts our numbers next to the paper's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::metrics::{pass_at_k, reported_ks};
use crate::paper::{lookup, PaperResult, Setting};
use crate::registry::BenchmarkSpec;
use crate::runner::{ItemRecord, RunConfig};

/// Results of one benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchSummary {
    /// Registry name.
    pub bench: String,
    /// Display name.
    pub display: String,
    /// Paper setting.
    pub setting: Setting,
    /// Run configuration.
    pub config: RunConfig,
    /// Problems evaluated.
    pub n_items: usize,
    /// Malformed records skipped while loading.
    pub n_skipped_records: usize,
    /// Accuracy (%) of the final prediction: greedy/sample-0 for one sample, majority vote for k samples.
    pub accuracy: f64,
    /// Mean accuracy (%) of individual samples (= pass@1).
    pub sample_accuracy: f64,
    /// maj@k accuracy (%), k = samples (only for k > 1).
    pub maj_at_k: Option<f64>,
    /// Unbiased pass@k (%) for k = 1, 2, 4, ..., samples.
    pub pass_at_k: BTreeMap<String, f64>,
    /// Fraction (%) of samples without an extractable answer.
    pub invalid_rate: f64,
    /// Mean generated tokens per sample.
    pub mean_tokens: f64,
    /// Generation + execution time over all sessions (seconds).
    pub seconds: f64,
    /// Generated tokens per second.
    pub tokens_per_second: f64,
    /// Published numbers for this benchmark and setting.
    pub paper: Vec<PaperResult>,
}

/// Aggregates item records into a summary.
pub fn summarize(
    spec: &BenchmarkSpec,
    config: &RunConfig,
    setting: Setting,
    items: &[ItemRecord],
    skipped: usize,
) -> BenchSummary {
    let n = items.len().max(1) as f64;
    let samples = config.samples;
    let total_samples: usize = items.iter().map(|r| r.samples.len()).sum();
    let pct = |x: f64| 100.0 * x;
    let accuracy = pct(items.iter().filter(|r| r.correct).count() as f64 / n);
    let sample_accuracy = pct(items
        .iter()
        .map(|r| r.num_correct as f64 / r.samples.len().max(1) as f64)
        .sum::<f64>()
        / n);
    let mut pass = BTreeMap::new();
    for k in reported_ks(samples) {
        let v = items
            .iter()
            .filter(|r| r.samples.len() >= k)
            .map(|r| pass_at_k(r.samples.len(), r.num_correct, k))
            .sum::<f64>();
        pass.insert(format!("pass@{k}"), pct(v / n));
    }
    let invalid = items
        .iter()
        .flat_map(|r| &r.samples)
        .filter(|s| s.extracted.is_none())
        .count();
    let tokens: usize = items.iter().map(|r| r.tokens).sum();
    let seconds: f64 = items.iter().map(|r| r.seconds).sum();
    BenchSummary {
        bench: spec.name.to_string(),
        display: spec.display.to_string(),
        setting,
        config: config.clone(),
        n_items: items.len(),
        n_skipped_records: skipped,
        accuracy,
        sample_accuracy,
        maj_at_k: (samples > 1).then_some(accuracy),
        pass_at_k: pass,
        invalid_rate: pct(invalid as f64 / total_samples.max(1) as f64),
        mean_tokens: tokens as f64 / total_samples.max(1) as f64,
        seconds,
        tokens_per_second: if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 },
        paper: lookup(spec.name, setting),
    }
}

/// The markdown report: one row per benchmark, with the paper's numbers for the same setting.
pub fn markdown(model: &str, summaries: &[BenchSummary]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Evaluation of `{model}`\n");
    let _ = writeln!(
        md,
        "| Benchmark | Setting | n | Accuracy | maj@k | pass@k | invalid | tok/s | Paper (DeepSeekMath 7B) |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---|---:|---:|---|");
    for s in summaries {
        let shots = if s.config.shots > 0 {
            format!("{}-shot ", s.config.shots)
        } else {
            String::new()
        };
        let sampling = if s.config.temperature == 0.0 {
            "greedy".to_string()
        } else {
            format!("T={} k={}", s.config.temperature, s.config.samples)
        };
        let maj = s
            .maj_at_k
            .map(|m| format!("{m:.1}% (k={})", s.config.samples))
            .unwrap_or_else(|| "–".into());
        let pass = if s.config.samples > 1 {
            s.pass_at_k
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}%"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            "–".into()
        };
        let paper = if s.paper.is_empty() {
            "not reported".to_string()
        } else {
            s.paper
                .iter()
                .map(|p| format!("{} {:.1}% ({})", p.model, p.accuracy, p.source))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            md,
            "| {} | {}{} ({}, {sampling}) | {} | {:.1}% | {maj} | {pass} | {:.1}% | {:.1} | {paper} |",
            s.display,
            shots,
            s.setting.label(),
            s.config.mode,
            s.n_items,
            s.accuracy,
            s.invalid_rate,
            s.tokens_per_second,
        );
    }
    let _ = writeln!(
        md,
        "\nAccuracy is the final prediction's (greedy, or the majority vote over k samples). Paper numbers: DeepSeekMath \
         (arXiv:2402.03300), same benchmark and prompting setting, 7B models; they are context, not targets."
    );
    md
}

/// Writes `summary.json` (all benchmarks) and `report.md` into `out_dir`.
pub fn write_report(out_dir: &Path, model: &str, summaries: &[BenchSummary]) -> Result<()> {
    std::fs::write(out_dir.join("summary.json"), serde_json::to_string_pretty(summaries)?)?;
    std::fs::write(out_dir.join("report.md"), markdown(model, summaries))?;
    Ok(())
}
