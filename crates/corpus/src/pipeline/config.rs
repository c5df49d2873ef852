//! `corpus mine` configuration (TOML, with `--set key=value` overrides).

use crate::decontam::DecontamConfig;
use crate::dedup::MinHashConfig;
use crate::domains::DomainConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything `seekmath corpus mine` needs. Relative paths are resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineConfig {
    /// Output directory (one sub-directory per stage and iteration).
    pub output: PathBuf,
    /// Seed of every random choice (negative sampling, classifier training, MinHash functions). Logged.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Iterations of the loop (the paper ran four).
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// Input files.
    pub inputs: InputConfig,
    /// Classifier training.
    #[serde(default)]
    pub classifier: ClassifierConfig,
    /// Ranking and budget.
    #[serde(default)]
    pub select: SelectConfig,
    /// Near-dedup.
    #[serde(default)]
    pub dedup: MinHashConfig,
    /// Decontamination.
    #[serde(default)]
    pub decontam: DecontamStageConfig,
    /// Domain discovery.
    #[serde(default)]
    pub domains: DomainStageConfig,
}

fn default_seed() -> u64 {
    42
}
fn default_iterations() -> usize {
    2
}

/// Input files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// The crawl to mine (WARC/WET/JSONL/Parquet, compressed or not); each file is one shard.
    pub pool: Vec<PathBuf>,
    /// Initial positive seed documents (the paper: OpenWebMath).
    pub seeds: Vec<PathBuf>,
    /// Where negative examples are sampled from. Empty (the default, and the paper's choice): random pool pages.
    /// A separate sample of general web pages is better when the pool is already math-heavy, as in small tests.
    #[serde(default)]
    pub negatives: Vec<PathBuf>,
}

/// Classifier training settings (the paper's fastText settings by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Negative examples sampled from the pool per iteration (the paper: 500,000).
    pub negatives: usize,
    /// Upper bound on positives (seeds plus discovered pages); the excess is dropped deterministically.
    pub max_positives: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Learning rate.
    pub lr: f32,
    /// Longest word n-gram.
    pub word_ngrams: usize,
    /// Minimum word count.
    pub min_count: usize,
    /// Epochs.
    pub epochs: usize,
    /// Training threads. fastText's Hogwild training is only deterministic with one thread.
    pub threads: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            negatives: 500_000,
            max_positives: 500_000,
            dim: 256,
            lr: 0.1,
            word_ngrams: 3,
            min_count: 3,
            epochs: 3,
            threads: 1,
        }
    }
}

/// Ranking settings: keep the top-scoring pages up to a token budget, above a score floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectConfig {
    /// Tokens to keep per iteration (the paper: 40B in iteration 1); `0` means no budget, only `min_score`.
    pub token_budget: u64,
    /// Pages scoring below this are never kept.
    pub min_score: f32,
    /// Languages to keep (codes from language identification); empty keeps all.
    pub languages: Vec<String>,
    /// Score resolution of the budget cut: the cut is the bin edge where the budget is reached, so memory stays
    /// bounded by this, not by the number of pages (10,000 bins: the cut overshoots the budget by at most one bin).
    pub score_bins: usize,
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self {
            token_budget: 0,
            min_score: 0.5,
            languages: Vec::new(),
            score_bins: 10_000,
        }
    }
}

/// Decontamination stage settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecontamStageConfig {
    /// Benchmark files or directories (all non-train `*.jsonl` below).
    pub benchmarks: Vec<PathBuf>,
    /// Matching parameters (`[decontam.matching]`).
    pub matching: DecontamConfig,
}

/// Domain discovery stage settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainStageConfig {
    /// Fraction rule and export settings (`[domains.rule]`).
    pub rule: DomainConfig,
    /// Annotated prefix files, one per iteration (entry `i` is imported after iteration `i + 1`); missing entries
    /// mean no human annotation for that iteration.
    pub annotations: Vec<PathBuf>,
    /// Unattended runs only: label a prefix math when at least this fraction of its pages was collected, standing
    /// in for the human annotator. Off by default; the report says when it was used.
    pub auto_label_fraction: Option<f64>,
}

impl MineConfig {
    /// Reads a TOML file, applies `key=value` overrides (dotted keys, TOML values; bare words are strings) and
    /// resolves relative paths against the file's directory.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let mut value: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        for o in overrides {
            apply_override(&mut value, o).with_context(|| format!("applying --set {o}"))?;
        }
        let mut config: MineConfig = toml::Value::Table(value)
            .try_into()
            .with_context(|| format!("invalid config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.output);
        self.inputs.pool.iter_mut().for_each(fix);
        self.inputs.seeds.iter_mut().for_each(fix);
        self.inputs.negatives.iter_mut().for_each(fix);
        self.decontam.benchmarks.iter_mut().for_each(fix);
        self.domains.annotations.iter_mut().for_each(fix);
    }

    /// Checks values that would otherwise fail deep inside a stage.
    pub fn validate(&self) -> Result<()> {
        if self.iterations == 0 {
            bail!("iterations must be at least 1");
        }
        if self.inputs.pool.is_empty() || self.inputs.seeds.is_empty() {
            bail!("inputs.pool and inputs.seeds must each name at least one file");
        }
        if self.dedup.bands == 0 || self.dedup.rows == 0 || self.dedup.shingle.ngram == 0 {
            bail!("dedup.bands, dedup.rows and dedup.shingle.ngram must be positive");
        }
        let ngram = self.decontam.matching.ngram;
        if !(2..=crate::decontam::MAX_NGRAM).contains(&ngram) {
            bail!(
                "decontam.matching.ngram must be 2 to {}, not {ngram}",
                crate::decontam::MAX_NGRAM
            );
        }
        if self.select.score_bins < 10 {
            bail!("select.score_bins must be at least 10");
        }
        Ok(())
    }
}

fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (key, raw) = assignment.split_once('=').context("expected key=value")?;
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut current = table;
    for part in &parts[..parts.len() - 1] {
        current = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .with_context(|| format!("{part} is not a table"))?;
    }
    current.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_with_defaults_overrides_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine.toml");
        std::fs::write(
            &p,
            "output = \"out\"\n[inputs]\npool = [\"web.jsonl\"]\nseeds = [\"/abs/seed.jsonl\"]\n[dedup]\nbands = 20\n",
        )
        .unwrap();
        let c = MineConfig::load(
            &p,
            &[
                "select.token_budget=1000".into(),
                "dedup.shingle.ngram=7".into(),
                "seed=9".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.output, dir.path().join("out"));
        assert_eq!(c.inputs.pool[0], dir.path().join("web.jsonl"));
        assert_eq!(c.inputs.seeds[0], PathBuf::from("/abs/seed.jsonl"));
        assert_eq!((c.dedup.bands, c.dedup.rows, c.dedup.shingle.ngram), (20, 8, 7));
        assert_eq!((c.select.token_budget, c.seed, c.iterations), (1000, 9, 2));
        assert_eq!(c.classifier.dim, 256);
        assert!(
            MineConfig::load(&p, &["nonsense_key=1".into()]).is_err(),
            "unknown keys are rejected"
        );
        for bad in ["decontam.matching.ngram=1", "decontam.matching.ngram=100000"] {
            let err = MineConfig::load(&p, &[bad.into()]).unwrap_err();
            assert!(format!("{err:#}").contains("decontam.matching.ngram"), "{bad}: {err:#}");
        }
    }
}
