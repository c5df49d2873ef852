//! `seekmath corpus ...`: read crawl files, extract text with math, identify languages, train and apply the math
//! classifier, rank by token budget. All behaviour lives in `seekmath-corpus`; this module parses arguments,
//! drives progress bars and prints summaries.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use seekmath_corpus::classifier::{read_fasttext_lines, Classifier, QuantizeConfig, TrainConfig, LABEL_PREFIX};
use seekmath_corpus::document::Document;
use seekmath_corpus::extract::{extract_document, ExtractOptions};
use seekmath_corpus::langid::{LanguageFilter, LanguageIdentifier};
use seekmath_corpus::rank::{select, Scored, Selection, TokenCounter};
use seekmath_corpus::readers::{self, ReadStats, ReaderOptions};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Corpus commands.
#[derive(Subcommand)]
pub enum CorpusCommand {
    /// Extract text (keeping math as LaTeX) from WARC/JSONL/Parquet pages into JSONL documents.
    Extract(ExtractArgs),
    /// Identify languages with a fastText model (lid.176.ftz) and optionally keep only some.
    Langid(LangidArgs),
    /// Train the fastText-compatible math classifier from positive and negative inputs.
    TrainClassifier(TrainArgs),
    /// Score documents with a classifier: adds `math_score` (the positive-label probability).
    Score(ScoreArgs),
    /// Keep the best-scored documents by token budget or threshold.
    Rank(RankArgs),
    /// Read lines on stdin and print predictions like `fasttext predict-prob`.
    Predict(PredictArgs),
    /// Run the iterative mining loop (train → score → rank → dedup → decontaminate → domains) from a TOML config.
    Mine(MineArgs),
    /// Exact-URL and MinHash near-duplicate removal.
    Dedup(DedupArgs),
    /// Remove text segments that share 10-grams with benchmark problems.
    Decontam(DecontamArgs),
    /// Domain discovery: export math-domain path prefixes for annotation, import labels, list new seeds.
    Domains(DomainsArgs),
}

/// Arguments of `corpus`.
#[derive(Args)]
pub struct CorpusArgs {
    #[command(subcommand)]
    command: CorpusCommand,
}

/// Input options shared by commands that read documents.
#[derive(Args, Clone)]
pub struct InputArgs {
    /// Input files (WARC/WET, JSONL, Parquet, text lines; gz/zstd allowed).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// JSONL/Parquet fields that hold the text (repeatable); default `text`, `html`, or a known Q/A pair.
    #[arg(long = "text-field")]
    text_fields: Vec<String>,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// `corpus extract`.
#[derive(Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output JSONL.
    #[arg(short, long)]
    output: PathBuf,
    /// Keep all visible text (no boilerplate removal).
    #[arg(long)]
    keep_boilerplate: bool,
    /// Language-identification model; sets `lang` on every document.
    #[arg(long)]
    langid_model: Option<PathBuf>,
    /// Languages to keep (comma-separated ISO codes; needs --langid-model; empty keeps all).
    #[arg(long, value_delimiter = ',')]
    lang: Vec<String>,
}

/// `corpus langid`.
#[derive(Args)]
pub struct LangidArgs {
    #[command(flatten)]
    input: InputArgs,
    /// fastText language-identification model.
    #[arg(long)]
    model: PathBuf,
    /// Output JSONL.
    #[arg(short, long)]
    output: PathBuf,
    /// Languages to keep (comma-separated; empty keeps all).
    #[arg(long, value_delimiter = ',')]
    lang: Vec<String>,
    /// Minimum probability of the identified language.
    #[arg(long, default_value_t = 0.0)]
    min_prob: f32,
}

/// `corpus train-classifier`.
#[derive(Args)]
pub struct TrainArgs {
    /// Positive (math) inputs: JSONL, WARC, Parquet, or fastText-format lines.
    #[arg(long, required = true, num_args = 1..)]
    positive: Vec<PathBuf>,
    /// Negative inputs.
    #[arg(long, required = true, num_args = 1..)]
    negative: Vec<PathBuf>,
    /// Output model (`.bin`; `.ftz` quantizes).
    #[arg(short, long)]
    output: PathBuf,
    /// Label for positives.
    #[arg(long, default_value = "math")]
    positive_label: String,
    /// Label for negatives.
    #[arg(long, default_value = "other")]
    negative_label: String,
    /// Embedding dimension.
    #[arg(long, default_value_t = 256)]
    dim: i32,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Longest word n-gram.
    #[arg(long, default_value_t = 3)]
    word_ngrams: i32,
    /// Minimum word count.
    #[arg(long, default_value_t = 3)]
    min_count: i32,
    /// Epochs.
    #[arg(long, default_value_t = 3)]
    epoch: i32,
    /// Hashing buckets.
    #[arg(long, default_value_t = 2_000_000)]
    bucket: i32,
    /// Loss: softmax, ns, hs, ova.
    #[arg(long, default_value = "softmax")]
    loss: String,
    /// Training threads (more than one is Hogwild, not bit-reproducible).
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: i32,
    /// JSONL/Parquet text fields (repeatable).
    #[arg(long = "text-field")]
    text_fields: Vec<String>,
}

/// `corpus score`.
#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Classifier model (.bin/.ftz).
    #[arg(long)]
    model: PathBuf,
    /// Output JSONL.
    #[arg(short, long)]
    output: PathBuf,
    /// The positive label whose probability is the score.
    #[arg(long, default_value = "math")]
    label: String,
}

/// `corpus rank`.
#[derive(Args)]
pub struct RankArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output JSONL (kept documents, in input order).
    #[arg(short, long)]
    output: PathBuf,
    /// Keep the best documents up to this many tokens.
    #[arg(long, conflicts_with = "threshold")]
    budget_tokens: Option<u64>,
    /// Keep documents whose score is at least this.
    #[arg(long)]
    threshold: Option<f32>,
    /// Hugging Face tokenizer.json for token counts (default: whitespace words).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Score key in `scores` (written by `corpus score`).
    #[arg(long, default_value = "math")]
    score_key: String,
}

/// `corpus predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// Classifier model (.bin/.ftz).
    #[arg(long)]
    model: PathBuf,
    /// Number of labels per line.
    #[arg(short, default_value_t = 1)]
    k: usize,
    /// Minimum probability.
    #[arg(long, default_value_t = 0.0)]
    threshold: f32,
}

/// Runs a corpus command.
pub fn run(args: CorpusArgs) -> Result<ExitCode> {
    match args.command {
        CorpusCommand::Extract(a) => extract_cmd(a),
        CorpusCommand::Langid(a) => langid_cmd(a),
        CorpusCommand::TrainClassifier(a) => train_cmd(a),
        CorpusCommand::Score(a) => score_cmd(a),
        CorpusCommand::Rank(a) => rank_cmd(a),
        CorpusCommand::Predict(a) => predict_cmd(a),
        CorpusCommand::Mine(a) => mine_cmd(a),
        CorpusCommand::Dedup(a) => dedup_cmd(a),
        CorpusCommand::Decontam(a) => decontam_cmd(a),
        CorpusCommand::Domains(a) => domains_cmd(a),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn progress(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {pos} docs ({per_sec}) {elapsed} {msg}")
            .expect("valid template"),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// `--ngram` of `corpus decontam`: the lengths the scan supports.
fn parse_decontam_ngram(value: &str) -> std::result::Result<usize, String> {
    let max = seekmath_corpus::decontam::MAX_NGRAM;
    match value.parse::<usize>() {
        Ok(n) if (2..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 2 to {max}")),
    }
}

fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the thread pool")
}

/// Summary printed at the end of every streaming command.
#[derive(Default)]
struct Summary {
    read: ReadStats,
    dropped: BTreeMap<String, u64>,
    kept: u64,
    tokens: u64,
}

impl Summary {
    fn print(&self, what: &str) {
        eprintln!(
            "{what}: records {} → documents {}, kept {}, words {}",
            self.read.records, self.read.documents, self.kept, self.tokens
        );
        print_skipped(&self.read, &self.dropped);
    }
}

/// One line per reason for records the readers skipped or found malformed, and for documents a stage dropped.
fn print_skipped(read: &ReadStats, dropped: &BTreeMap<String, u64>) {
    for (reason, n) in read.skipped.iter().chain(dropped) {
        eprintln!("  skipped {n:>8}  {reason}");
    }
    for (kind, n) in &read.errors {
        eprintln!("  bad     {n:>8}  {kind}");
    }
}

/// Documents per parallel batch.
const BATCH: usize = 1024;

/// Reads every input in batches of up to [`BATCH`] documents and hands each batch to `each`, advancing `bar`.
/// Malformed records are logged and skipped (the readers count them: the returned statistics), so a run of bad
/// records never ends a file early.
fn for_each_batch(
    input: &InputArgs,
    bar: &ProgressBar,
    mut each: impl FnMut(Vec<Document>) -> Result<()>,
) -> Result<ReadStats> {
    let options = ReaderOptions {
        text_fields: input.text_fields.clone(),
        ..Default::default()
    };
    let mut stats = ReadStats::default();
    for path in &input.inputs {
        let mut reader = readers::open_with(path, &options)?;
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            for item in reader.by_ref() {
                match item {
                    Ok(doc) => batch.push(doc),
                    Err(e) => tracing::warn!("{e}"),
                }
                if batch.len() == BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            bar.inc(batch.len() as u64);
            each(batch)?;
        }
        stats.merge(reader.stats());
    }
    Ok(stats)
}

/// Streams documents from all inputs in batches, maps each batch in parallel, writes kept ones in input order.
fn stream_map(
    input: &InputArgs,
    output: &Path,
    label: &str,
    map: impl Fn(Document) -> Result<Option<serde_json::Value>, String> + Sync,
) -> Result<Summary> {
    let pool = thread_pool(input.threads)?;
    let file = std::fs::File::create(output).with_context(|| format!("cannot create {}", output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let bar = progress(label);
    let mut summary = Summary::default();
    let read = for_each_batch(input, &bar, |batch| {
        let results: Vec<_> = pool.install(|| batch.into_par_iter().map(&map).collect());
        for r in results {
            match r {
                Ok(Some(value)) => {
                    summary.kept += 1;
                    summary.tokens += value
                        .get("text")
                        .and_then(|t| t.as_str())
                        .map_or(0, |t| t.split_whitespace().count() as u64);
                    serde_json::to_writer(&mut out, &value)?;
                    out.write_all(b"\n")?;
                }
                Ok(None) => {}
                Err(reason) => *summary.dropped.entry(reason).or_default() += 1,
            }
        }
        Ok(())
    })?;
    summary.read = read;
    out.flush()?;
    bar.finish();
    Ok(summary)
}

fn to_value(doc: &Document) -> serde_json::Value {
    serde_json::to_value(doc).expect("documents serialise")
}

fn extract_cmd(a: ExtractArgs) -> Result<()> {
    let options = ExtractOptions {
        remove_boilerplate: !a.keep_boilerplate,
        ..Default::default()
    };
    let lid = a.langid_model.as_ref().map(LanguageIdentifier::load).transpose()?;
    if lid.is_none() && !a.lang.is_empty() {
        bail!("--lang needs --langid-model");
    }
    let filter = LanguageFilter {
        keep: a.lang.clone(),
        min_probability: 0.0,
    };
    let summary = stream_map(&a.input, &a.output, "extract", |mut doc| {
        if !extract_document(&mut doc, &options) {
            return Err("no text after extraction".into());
        }
        if let Some(lid) = &lid {
            lid.annotate(&mut doc);
            if !filter.accepts(doc.lang.as_ref()) {
                return Err(format!(
                    "language {}",
                    doc.lang.as_ref().map_or("none", |l| l.0.as_str())
                ));
            }
        }
        Ok(Some(to_value(&doc)))
    })?;
    summary.print("extract");
    Ok(())
}

fn langid_cmd(a: LangidArgs) -> Result<()> {
    let lid = LanguageIdentifier::load(&a.model)?;
    let filter = LanguageFilter {
        keep: a.lang.clone(),
        min_probability: a.min_prob,
    };
    let summary = stream_map(&a.input, &a.output, "langid", |mut doc| {
        if doc.text.is_empty() && doc.html.is_some() {
            extract_document(&mut doc, &ExtractOptions::default());
        }
        lid.annotate(&mut doc);
        if !filter.accepts(doc.lang.as_ref()) {
            return Err(format!(
                "language {}",
                doc.lang.as_ref().map_or("none", |l| l.0.as_str())
            ));
        }
        Ok(Some(to_value(&doc)))
    })?;
    summary.print("langid");
    Ok(())
}

/// Texts of one training input: fastText lines (labels stripped) or documents (extracted if HTML).
fn training_texts(path: &Path, text_fields: &[String]) -> Result<Vec<String>> {
    let first_line = {
        let mut r =
            readers::compress::open_decompressed(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        line
    };
    if first_line.trim_start().starts_with(LABEL_PREFIX) {
        return Ok(read_fasttext_lines(path)?.into_iter().map(|(_, t)| t).collect());
    }
    let options = ReaderOptions {
        text_fields: text_fields.to_vec(),
        ..Default::default()
    };
    let mut reader = readers::open_with(path, &options)?;
    let docs: Vec<Document> = reader
        .by_ref()
        .filter_map(|d| d.map_err(|e| tracing::warn!("{e}")).ok())
        .collect();
    let texts: Vec<String> = docs
        .into_par_iter()
        .filter_map(|mut d| extract_document(&mut d, &ExtractOptions::default()).then_some(d.text))
        .collect();
    let stats = reader.stats();
    tracing::info!(file = %path.display(), documents = texts.len(), bad = stats.error_count(), "read training input");
    Ok(texts)
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    let mut samples = Vec::new();
    for (label, paths) in [(&a.positive_label, &a.positive), (&a.negative_label, &a.negative)] {
        let mut n = 0;
        for p in paths {
            for t in training_texts(p, &a.text_fields)? {
                samples.push((label.clone(), t));
                n += 1;
            }
        }
        eprintln!("{label}: {n} documents");
        if n == 0 {
            bail!("no {label} documents in {paths:?}");
        }
    }
    let config = TrainConfig {
        dim: a.dim,
        lr: a.lr,
        word_ngrams: a.word_ngrams,
        min_count: a.min_count,
        epoch: a.epoch,
        bucket: a.bucket,
        loss: a.loss.clone(),
        threads: a.threads,
        seed: a.seed,
        ..Default::default()
    };
    tracing::info!(seed = a.seed, "training");
    let bar = progress("train");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut model = Classifier::train(&samples, &config)?;
    bar.finish();
    if a.output.extension().is_some_and(|e| e == "ftz") {
        model = model.quantize(&QuantizeConfig::default())?;
    }
    model.save(&a.output)?;
    eprintln!(
        "train-classifier: {} documents, labels {:?} → {}",
        samples.len(),
        model.labels(),
        a.output.display()
    );
    Ok(())
}

fn score_cmd(a: ScoreArgs) -> Result<()> {
    let model = Classifier::load(&a.model)?;
    if model.model().label_index(&a.label).is_none() {
        bail!(
            "model {} has no label {:?} (labels: {:?})",
            a.model.display(),
            a.label,
            model.labels()
        );
    }
    let key = a.label.strip_prefix(LABEL_PREFIX).unwrap_or(&a.label).to_string();
    let summary = stream_map(&a.input, &a.output, "score", |mut doc| {
        if doc.text.is_empty() && doc.html.is_some() && !extract_document(&mut doc, &ExtractOptions::default()) {
            return Err("no text after extraction".into());
        }
        let p = model.probability(&doc.text, &a.label);
        doc.scores.insert(key.clone(), p);
        let mut v = to_value(&doc);
        v["math_score"] = serde_json::json!(p);
        Ok(Some(v))
    })?;
    summary.print("score");
    Ok(())
}

fn rank_cmd(a: RankArgs) -> Result<()> {
    let selection = match (a.budget_tokens, a.threshold) {
        (Some(b), None) => Selection::TokenBudget(b),
        (None, Some(t)) => Selection::Threshold(t),
        _ => bail!("give exactly one of --budget-tokens or --threshold"),
    };
    let counter = a.tokenizer.as_ref().map(TokenCounter::from_file).transpose()?;
    let key = a.score_key.clone();
    let score_of = |doc: &Document| -> Option<f32> {
        doc.scores.get(&key).copied().or_else(|| {
            doc.metadata
                .get("math_score")
                .and_then(|v| v.as_f64())
                .map(|v| v as f32)
        })
    };
    // Pass 1: id, score, tokens of every scored document (tokenized in parallel batches).
    let pool = thread_pool(a.input.threads)?;
    let mut scored: Vec<Scored> = Vec::new();
    let mut summary = Summary::default();
    let bar = progress("count");
    let read = for_each_batch(&a.input, &bar, |batch| {
        let counted: Vec<Result<Option<Scored>>> = pool.install(|| {
            batch
                .par_iter()
                .map(|doc| {
                    let Some(score) = score_of(doc) else { return Ok(None) };
                    let tokens = match &counter {
                        Some(c) => c.count(&doc.text)?,
                        None => doc.text.split_whitespace().count() as u64,
                    };
                    Ok(Some(Scored {
                        id: doc.id.clone(),
                        score,
                        tokens,
                    }))
                })
                .collect()
        });
        for c in counted {
            match c? {
                Some(s) => {
                    summary.tokens += s.tokens;
                    scored.push(s);
                }
                None => *summary.dropped.entry(format!("no `{key}` score")).or_default() += 1,
            }
        }
        Ok(())
    })?;
    summary.read = read;
    bar.finish();
    let selected = select(&scored, selection);
    let keep: HashSet<usize> = selected.indices.iter().copied().collect();
    // Pass 2: write kept documents in input order; the n-th scored document is the n-th record of pass 1.
    let options = ReaderOptions {
        text_fields: a.input.text_fields.clone(),
        ..Default::default()
    };
    let mut out = BufWriter::new(
        std::fs::File::create(&a.output).with_context(|| format!("cannot create {}", a.output.display()))?,
    );
    let mut index = 0usize;
    for path in &a.input.inputs {
        for doc in readers::open_with(path, &options)?.flatten() {
            if score_of(&doc).is_none() {
                continue;
            }
            if keep.contains(&index) {
                serde_json::to_writer(&mut out, &to_value(&doc))?;
                out.write_all(b"\n")?;
            }
            index += 1;
        }
    }
    out.flush()?;
    summary.kept = selected.indices.len() as u64;
    summary.print("rank");
    eprintln!(
        "rank: kept {} of {} documents, {} {} (lowest kept score {:?})",
        selected.indices.len(),
        scored.len(),
        selected.tokens,
        if counter.is_some() { "tokens" } else { "words" },
        selected.min_score
    );
    Ok(())
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let model = Classifier::load(&a.model)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        let line = line.context("reading stdin")?;
        let preds = model.predict_threshold(&line, a.k, a.threshold);
        let fields: Vec<String> = preds
            .iter()
            .map(|(l, p)| format!("{l} {}", format_like_cpp(*p)))
            .collect();
        writeln!(out, "{}", fields.join(" "))?;
    }
    out.flush()?;
    Ok(())
}

/// Formats a probability as C++ `ostream <<` does by default (6 significant digits, trailing zeros trimmed), so
/// output compares textually with `fasttext predict-prob`.
fn format_like_cpp(p: f32) -> String {
    let p = p as f64;
    if p == 0.0 {
        return "0".into();
    }
    let exponent = p.abs().log10().floor() as i32;
    if !(-5..6).contains(&exponent) {
        let s = format!("{:.5e}", p);
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (5 - exponent).max(0) as usize;
    let s = format!("{p:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::format_like_cpp;

    #[test]
    fn probabilities_print_like_cpp_streams() {
        assert_eq!(format_like_cpp(0.5), "0.5");
        assert_eq!(format_like_cpp(0.123_456_79), "0.123457");
        assert_eq!(format_like_cpp(1.00001), "1.00001");
        assert_eq!(format_like_cpp(1e-5), "1e-05");
        assert_eq!(format_like_cpp(0.000123456), "0.000123456");
    }
}

// ---- Corpus II: the mining loop, dedup, decontamination, domain discovery ----

/// `corpus mine`.
#[derive(Args)]
pub struct MineArgs {
    /// Run configuration (TOML; see `seekmath_corpus::pipeline::config::MineConfig`).
    #[arg(long)]
    config: PathBuf,
    /// Override a config value, e.g. `--set select.token_budget=40000000000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the run in a non-empty output directory: finished stages and shards are skipped.
    #[arg(long)]
    resume: bool,
    /// Hugging Face tokenizer.json for token counts (default: whitespace words).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// fastText language-identification model (lid.176.ftz); without it every page is `und`.
    #[arg(long)]
    lid: Option<PathBuf>,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// `corpus dedup`.
#[derive(Args)]
pub struct DedupArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output JSONL (kept documents, in input order).
    #[arg(short, long)]
    output: PathBuf,
    /// Words per shingle.
    #[arg(long, default_value_t = 5)]
    ngram: usize,
    /// LSH bands.
    #[arg(long, default_value_t = 14)]
    bands: usize,
    /// Hashes per band.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Seed of the hash functions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Minimum estimated Jaccard for an LSH candidate pair to be merged (0 merges every candidate, as datatrove).
    #[arg(long, default_value_t = 0.7)]
    verify: f64,
    /// Fold digits to `0` before shingling (datatrove's default; off keeps problems that differ in numbers apart).
    #[arg(long)]
    normalize_numbers: bool,
    /// Score that decides which duplicate is kept (highest wins, then longest text, then smallest id).
    #[arg(long, default_value = "math")]
    score_key: String,
    /// Write dedup statistics here (JSON).
    #[arg(long)]
    stats: Option<PathBuf>,
}

/// `corpus decontam`.
#[derive(Args)]
pub struct DecontamArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output JSONL (documents with contaminated lines removed; emptied documents dropped).
    #[arg(short, long)]
    output: PathBuf,
    /// Benchmark JSONL files or directories (every non-train `*.jsonl` below), repeatable.
    #[arg(long, required = true, num_args = 1..)]
    benchmarks: Vec<PathBuf>,
    /// n-gram length (the paper: 10).
    #[arg(long, default_value_t = 10, value_parser = parse_decontam_ngram)]
    ngram: usize,
    /// Write the per-benchmark report here (JSON).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// `corpus domains`.
#[derive(Args)]
pub struct DomainsArgs {
    /// All crawled pages of the iteration (the pool), any readable format.
    #[arg(long, required = true, num_args = 1..)]
    pool: Vec<PathBuf>,
    /// The pages collected in the iteration (matched to the pool by id).
    #[arg(long, required = true, num_args = 1..)]
    collected: Vec<PathBuf>,
    /// Where to export path prefixes of math-related domains for annotation (`.tsv`, or `.jsonl`).
    #[arg(short, long)]
    output: PathBuf,
    /// A domain is math-related above this collected fraction (the paper: 0.1).
    #[arg(long, default_value_t = 0.1)]
    math_fraction: f64,
    /// Domains with fewer pool pages are not judged.
    #[arg(long, default_value_t = 3)]
    min_pages: usize,
    /// Path segments per exported prefix, at most.
    #[arg(long, default_value_t = 2)]
    max_depth: usize,
    /// An annotated prefix file to import (label column `math`).
    #[arg(long)]
    annotations: Option<PathBuf>,
    /// With --annotations: write the ids of uncollected pool pages under math prefixes here (new seeds).
    #[arg(long)]
    seeds_out: Option<PathBuf>,
}

fn read_all(paths: &[PathBuf], text_fields: &[String]) -> Result<(Vec<Document>, ReadStats)> {
    let options = ReaderOptions {
        text_fields: text_fields.to_vec(),
        ..Default::default()
    };
    let (mut docs, mut stats) = (Vec::new(), ReadStats::default());
    for path in paths {
        let mut reader = readers::open_with(path, &options)?;
        for item in reader.by_ref() {
            match item {
                Ok(doc) => docs.push(doc),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        stats.merge(reader.stats());
    }
    Ok((docs, stats))
}

fn mine_cmd(a: MineArgs) -> Result<()> {
    use seekmath_corpus::pipeline::{self as mine, adapters};
    let config = mine::MineConfig::load(&a.config, &a.overrides)?;
    let counter = a.tokenizer.as_ref().map(TokenCounter::from_file).transpose()?;
    let lid = a.lid.as_ref().map(LanguageIdentifier::load).transpose()?;
    let extractor = adapters::HtmlExtractor::default();
    let components = mine::Components {
        extractor: Some(&extractor),
        language: lid.as_ref().map(|l| l as &dyn mine::LanguageIdentifier),
        tokens: match &counter {
            Some(c) => c,
            None => &mine::WordCounter,
        },
        token_unit: if counter.is_some() { "tokens" } else { "words" },
        trainer: &adapters::FastTextTrainer,
    };
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    let outcome = thread_pool(threads)?.install(|| mine::run_mine(&config, &components, a.resume))?;
    for r in &outcome.iterations {
        eprintln!(
            "iteration {}: scored {}, selected {}, kept {} pages / {} {}, decontaminated {} pages, new seeds {}{}",
            r.iteration,
            r.selection.scored_docs,
            r.selection.selected_docs,
            r.corpus.documents,
            r.corpus.tokens,
            components.token_unit,
            r.corpus.decontam.documents_hit,
            r.domains.new_seeds,
            r.overlap_fraction
                .map(|f| format!(", {:.1}% already collected before", 100.0 * f))
                .unwrap_or_default()
        );
    }
    eprintln!("report: {}", outcome.report.display());
    Ok(())
}

fn dedup_cmd(a: DedupArgs) -> Result<()> {
    use seekmath_corpus::dedup::{dedup_documents, MinHashConfig, ShingleConfig};
    let (docs, read) = read_all(&a.input.inputs, &a.input.text_fields)?;
    let config = MinHashConfig {
        shingle: ShingleConfig {
            ngram: a.ngram,
            normalize_numbers: a.normalize_numbers,
            ..ShingleConfig::default()
        },
        bands: a.bands,
        rows: a.rows,
        seed: a.seed,
        verify_threshold: (a.verify > 0.0).then_some(a.verify),
    };
    let result = thread_pool(a.input.threads)?.install(|| dedup_documents(&docs, &config, &a.score_key));
    let file = std::fs::File::create(&a.output).with_context(|| format!("cannot create {}", a.output.display()))?;
    let mut out = BufWriter::new(file);
    for (doc, keep) in docs.iter().zip(&result.keep) {
        if *keep {
            serde_json::to_writer(&mut out, doc)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    if let Some(p) = &a.stats {
        std::fs::write(p, serde_json::to_vec_pretty(&result)?).with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!(
        "dedup: {} documents ({} bad records) → {} kept; {} exact-URL duplicates, {} near duplicates in {} clusters (largest {})",
        docs.len(),
        read.error_count(),
        result.keep.iter().filter(|k| **k).count(),
        result.url_duplicates,
        result.near_duplicates,
        result.clusters.duplicate_clusters,
        result.clusters.largest_cluster
    );
    Ok(())
}

fn decontam_cmd(a: DecontamArgs) -> Result<()> {
    use seekmath_corpus::decontam::{build_index, clean_text, DecontamConfig, DecontamReport};
    let index = build_index(
        &a.benchmarks,
        DecontamConfig {
            ngram: a.ngram,
            ..DecontamConfig::default()
        },
    )?;
    let pool = thread_pool(a.input.threads)?;
    let file = std::fs::File::create(&a.output).with_context(|| format!("cannot create {}", a.output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut report = DecontamReport::default();
    let bar = progress("decontam");
    let read = for_each_batch(&a.input, &bar, |batch| {
        let cleaned: Vec<_> = pool.install(|| {
            batch
                .into_par_iter()
                .map(|d| {
                    let c = clean_text(&index, &d.text);
                    (d, c)
                })
                .collect()
        });
        for (mut doc, c) in cleaned {
            report.record(&index, &doc.id, &doc.text, &c);
            if c.text.trim().is_empty() {
                continue;
            }
            doc.text = c.text;
            serde_json::to_writer(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;
    out.flush()?;
    bar.finish();
    if let Some(p) = &a.report {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!(
        "decontam: {} documents, {} with lines removed ({} lines, {} bytes), {} emptied and dropped",
        report.documents, report.documents_hit, report.segments_removed, report.bytes_removed, report.documents_emptied
    );
    for (name, c) in &report.per_benchmark {
        eprintln!("  {name:<28} pages {:>6}  items {:>5}", c.documents_hit, c.items_hit);
    }
    print_skipped(&read, &BTreeMap::new());
    Ok(())
}

fn domains_cmd(a: DomainsArgs) -> Result<()> {
    use seekmath_corpus::domains::{self, DomainConfig, PageRef};
    let (collected, _) = read_all(&a.collected, &[])?;
    let collected: HashSet<String> = collected.into_iter().map(|d| d.id).collect();
    let (pool, _) = read_all(&a.pool, &[])?;
    let pages: Vec<PageRef> = pool
        .iter()
        .filter_map(|d| PageRef::new(&d.id, d.url.as_deref()?, collected.contains(&d.id)))
        .collect();
    let rule = DomainConfig {
        math_fraction: a.math_fraction,
        min_pages: a.min_pages,
        max_prefix_depth: a.max_depth,
        ..DomainConfig::default()
    };
    let stats = domains::domain_stats(&pages);
    let math: Vec<&str> = domains::math_domains(&stats, &rule)
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    let prefixes = domains::path_prefix_stats(&pages, &math, &rule);
    domains::export_prefixes(&a.output, &prefixes)?;
    eprintln!(
        "domains: {} pages with URLs in {} domains; {} math-related; {} prefixes exported to {}",
        pages.len(),
        stats.len(),
        math.len(),
        prefixes.len(),
        a.output.display()
    );
    if let Some(ann) = &a.annotations {
        let (labelled, skipped) = domains::import_annotations(ann)?;
        let seeds = domains::seeds_under_prefixes(&pages, &labelled);
        eprintln!(
            "annotations: {} math prefixes ({skipped} malformed lines skipped); {} new seed pages",
            labelled.len(),
            seeds.len()
        );
        if let Some(out) = &a.seeds_out {
            let mut text = seeds.join("\n");
            text.push('\n');
            std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
        }
    }
    Ok(())
}
