//! The stages of `corpus mine` and the loop that runs them.

use super::config::MineConfig;
use super::histogram::write_histogram_png;
use super::report::{write_run_report, IterationReport};
use super::shards::{fingerprint, remove_stale_temporaries, shard_name, write_atomic, AtomicWriter, Manifest};
use super::Components;
use crate::decontam::{self, clean_text, DecontamReport};
use crate::dedup::{cluster_signatures, dedup_by_url, KeepKey, MinHasher};
use crate::document::Document;
use crate::domains::{self, AnnotatedPrefix, PageRef};
use crate::readers;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Bins of the report's score histogram.
pub const PLOT_BINS: usize = 20;
/// Documents scored per parallel batch (bounds memory per shard).
const BATCH: usize = 512;

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct MineOutcome {
    /// Per-iteration reports.
    pub iterations: Vec<IterationReport>,
    /// Where the run report is (`report.md` in the output directory).
    pub report: PathBuf,
}

/// Per-shard ingest statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolShardStats {
    /// Input file.
    pub input: String,
    /// Reader counters.
    pub read: readers::ReadStats,
    /// Documents written.
    pub documents: u64,
    /// Documents skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Tokens written.
    pub tokens: u64,
    /// Documents per language.
    pub languages: BTreeMap<String, u64>,
}

/// Outcome of the ranking stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Score bins of the budget cut.
    pub bins: usize,
    /// Pages in bins at or above this one are selected.
    pub cut_bin: usize,
    /// Score threshold (`cut_bin / bins`, and never below `min_score`).
    pub threshold: f64,
    /// Pages scored.
    pub scored_docs: u64,
    /// Pages passing language and score-floor filters.
    pub eligible_docs: u64,
    /// Their tokens.
    pub eligible_tokens: u64,
    /// Pages selected.
    pub selected_docs: u64,
    /// Their tokens.
    pub selected_tokens: u64,
    /// Histogram of all pages' scores (PLOT_BINS bins over [0, 1]).
    pub plot_all: Vec<u64>,
    /// Histogram of the selected pages' scores.
    pub plot_selected: Vec<u64>,
}

impl Selection {
    fn bin(&self, score: f32) -> usize {
        ((score.clamp(0.0, 1.0) as f64 * self.bins as f64) as usize).min(self.bins - 1)
    }
}

/// Outcome of the dedup stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupSummary {
    /// Pages entering dedup.
    pub input_docs: usize,
    /// Removed as exact URL duplicates.
    pub url_duplicates: usize,
    /// Removed as near duplicates.
    pub near_duplicates: usize,
    /// Cluster statistics of the near-dedup.
    pub clusters: crate::dedup::ClusterStats,
    /// Up to five of the largest clusters: kept id first, then removed ids.
    pub example_clusters: Vec<Vec<String>>,
    /// Pages kept.
    pub kept_docs: usize,
}

/// Per-shard output statistics of the decontaminated corpus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CorpusShardStats {
    /// Pages written.
    pub documents: u64,
    /// Tokens written.
    pub tokens: u64,
    /// Pages per language.
    pub languages: BTreeMap<String, u64>,
    /// Decontamination report.
    pub decontam: DecontamReport,
}

/// Outcome of domain discovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainSummary {
    /// Domains in the pool.
    pub domains: usize,
    /// Domains judged math-related (fraction rule).
    pub math_domains: usize,
    /// Top domains by collected pages: (domain, pages, collected).
    pub top_domains: Vec<(String, usize, usize)>,
    /// Prefixes exported for annotation.
    pub exported_prefixes: usize,
    /// Where the annotation came from (`file <path>`, `auto >= x`, or `none`).
    pub annotation_source: String,
    /// Prefixes labelled math.
    pub math_prefixes: Vec<String>,
    /// Uncollected pages under math prefixes, added to the next iteration's seeds.
    pub new_seeds: usize,
}

struct Run<'a> {
    config: &'a MineConfig,
    c: &'a Components<'a>,
    shards: Vec<PathBuf>,
}

/// Runs (or, with `resume`, continues) a mining run.
pub fn run_mine(config: &MineConfig, components: &Components, resume: bool) -> Result<MineOutcome> {
    let out = &config.output;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() && !resume {
        bail!(
            "output directory {} is not empty; pass --resume to continue that run",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    remove_stale_tree(out);
    tracing::info!(seed = config.seed, iterations = config.iterations, output = %out.display(), "corpus mine");
    let mut shards = config.inputs.pool.clone();
    shards.sort();
    let run = Run {
        config,
        c: components,
        shards,
    };
    let pool_fp = run.pool_stage()?;
    let seeds_fp = run.seed_stage()?;
    let mut upstream = fingerprint(&(&pool_fp, &seeds_fp));
    let mut reports = Vec::new();
    for iteration in 1..=config.iterations {
        let (fp, report) = run.iteration(iteration, &upstream, reports.last())?;
        upstream = fp;
        reports.push(report);
    }
    let report = write_run_report(out, config, components.token_unit, &reports)?;
    Ok(MineOutcome {
        iterations: reports,
        report,
    })
}

/// Removes temporaries of writes that a crash interrupted, anywhere in the output tree.
fn remove_stale_tree(dir: &Path) {
    remove_stale_temporaries(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                remove_stale_tree(&e.path());
            }
        }
    }
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        out.push(serde_json::from_str(&line).with_context(|| format!("{} line {}", path.display(), i + 1))?);
    }
    Ok(out)
}

/// Streams a pool shard in batches of parsed documents.
fn for_each_batch(path: &Path, mut f: impl FnMut(Vec<Document>) -> Result<()>) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut batch = Vec::with_capacity(BATCH);
    for (i, line) in std::io::BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line?;
        batch.push(serde_json::from_str(&line).with_context(|| format!("{} line {}", path.display(), i + 1))?);
        if batch.len() == BATCH {
            f(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        f(batch)?;
    }
    Ok(())
}

fn doc_tokens(doc: &Document) -> u64 {
    doc.metadata.get("tokens").and_then(|v| v.as_u64()).unwrap_or(0)
}

fn lang_code(doc: &Document) -> &str {
    doc.lang.as_ref().map(|(l, _)| l.as_str()).unwrap_or("und")
}

fn sample_key(seed: u64, salt: &str, id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(format!("{salt}\u{1f}{id}").as_bytes(), seed)
}

/// Runs `f` for every shard index whose output file is missing, in parallel; returns all output names.
fn sharded(
    dir: &Path,
    count: usize,
    suffix: &str,
    f: impl Fn(usize, &Path) -> Result<()> + Sync,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    remove_stale_temporaries(dir);
    (0..count)
        .into_par_iter()
        .map(|i| {
            let path = dir.join(shard_name(i, suffix));
            if !path.exists() {
                f(i, &path)?;
            }
            Ok(shard_name(i, suffix))
        })
        .collect()
}

impl Run<'_> {
    fn pool_dir(&self) -> PathBuf {
        self.config.output.join("pool")
    }

    fn pool_shard(&self, i: usize) -> PathBuf {
        self.pool_dir().join(shard_name(i, "jsonl"))
    }

    /// Ingest: read, extract, identify language, count tokens; one output shard per input file.
    fn pool_stage(&self) -> Result<String> {
        let dir = self.pool_dir();
        let fp = fingerprint(&("pool/v1", &self.shards, self.c.token_unit));
        if Manifest::is_complete(&dir, &fp) {
            return Ok(fp);
        }
        tracing::info!(shards = self.shards.len(), "stage pool: reading inputs");
        let mut outputs = sharded(&dir, self.shards.len(), "jsonl", |i, path| self.ingest_shard(i, path))?;
        outputs.extend((0..self.shards.len()).map(|i| shard_name(i, "stats.json")));
        Manifest::write(&dir, "pool", &fp, &outputs)?;
        Ok(fp)
    }

    fn ingest_shard(&self, i: usize, path: &Path) -> Result<()> {
        let input = &self.shards[i];
        let mut reader = readers::open(input)?;
        let mut stats = PoolShardStats {
            input: input.display().to_string(),
            ..Default::default()
        };
        let mut w = AtomicWriter::create(path)?;
        let mut batch = Vec::with_capacity(BATCH);
        let flush = |batch: &mut Vec<Document>, stats: &mut PoolShardStats, w: &mut AtomicWriter| -> Result<()> {
            let done: Vec<Result<Document, &'static str>> = batch.par_drain(..).map(|d| self.prepare(d)).collect();
            for d in done {
                match d {
                    Ok(doc) => {
                        stats.documents += 1;
                        stats.tokens += doc_tokens(&doc);
                        *stats.languages.entry(lang_code(&doc).to_string()).or_default() += 1;
                        serde_json::to_writer(&mut *w, &doc)?;
                        w.write_all(b"\n")?;
                    }
                    Err(reason) => *stats.skipped.entry(reason.to_string()).or_default() += 1,
                }
            }
            Ok(())
        };
        for item in reader.by_ref() {
            match item {
                Ok(doc) => batch.push(doc),
                Err(e) => tracing::warn!("{e}"),
            }
            if batch.len() == BATCH {
                flush(&mut batch, &mut stats, &mut w)?;
            }
        }
        flush(&mut batch, &mut stats, &mut w)?;
        stats.read = reader.stats().clone();
        write_atomic(&path.with_extension("stats.json"), &serde_json::to_vec_pretty(&stats)?)?;
        w.commit()
    }

    fn prepare(&self, mut doc: Document) -> Result<Document, &'static str> {
        if let Some(html) = doc.html.take() {
            if doc.text.trim().is_empty() {
                let Some(extractor) = self.c.extractor else {
                    return Err("html without extractor");
                };
                doc.text = extractor.extract(&html, doc.url.as_deref());
            }
        }
        if doc.text.trim().is_empty() {
            return Err("empty text");
        }
        doc.id = doc.id.replace(['\t', '\n', '\r'], " ");
        if doc.domain.is_none() {
            doc.domain = doc.url.as_deref().and_then(crate::dedup::url_domain);
        }
        if doc.lang.is_none() {
            doc.lang = self.c.language.and_then(|l| l.identify(&doc.text));
        }
        let tokens = self.c.tokens.count(&doc.text);
        doc.metadata.insert("tokens".into(), tokens.into());
        Ok(doc)
    }

    /// Initial seeds: the configured seed files' texts, in file order.
    fn seed_stage(&self) -> Result<String> {
        let dir = self.config.output.join("seeds");
        let fp = fingerprint(&("seeds/v1", &self.config.inputs.seeds));
        if Manifest::is_complete(&dir, &fp) {
            return Ok(fp);
        }
        let mut w = AtomicWriter::create(&dir.join("seeds.jsonl"))?;
        let mut files = self.config.inputs.seeds.clone();
        files.sort();
        for f in &files {
            let mut reader = readers::open(f)?;
            for doc in reader.by_ref() {
                match doc {
                    Ok(d) if !d.text.trim().is_empty() => {
                        serde_json::to_writer(&mut w, &d.text)?;
                        w.write_all(b"\n")?;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
        w.commit()?;
        Manifest::write(&dir, "seeds", &fp, &["seeds.jsonl".into()])?;
        Ok(fp)
    }

    fn iteration(
        &self,
        k: usize,
        upstream: &str,
        previous: Option<&IterationReport>,
    ) -> Result<(String, IterationReport)> {
        let dir = self.config.output.join(format!("iter-{k}"));
        let cfg = self.config;
        tracing::info!(iteration = k, "iteration start");
        let train_fp = fingerprint(&(
            "train/v1",
            upstream,
            k,
            cfg.seed,
            &cfg.classifier,
            &cfg.inputs.negatives,
        ));
        self.train_stage(k, &dir.join("train"), &train_fp)?;
        let score_fp = fingerprint(&("score/v1", &train_fp));
        self.score_stage(&dir, &score_fp)?;
        let select_fp = fingerprint(&("select/v1", &score_fp, &cfg.select));
        let selection = self.select_stage(&dir, &select_fp)?;
        let dedup_fp = fingerprint(&("dedup/v1", &select_fp, &cfg.dedup));
        let dedup = self.dedup_stage(&dir, &selection, &dedup_fp)?;
        let corpus_fp = fingerprint(&("corpus/v1", &dedup_fp, &cfg.decontam, self.c.token_unit));
        let corpus = self.corpus_stage(&dir, &corpus_fp)?;
        let annotation = cfg.domains.annotations.get(k - 1);
        let domains_fp = fingerprint(&(
            "domains/v1",
            &corpus_fp,
            &cfg.domains.rule,
            annotation,
            cfg.domains.auto_label_fraction,
        ));
        let domains = self.domain_stage(&dir, annotation, &domains_fp)?;
        let report_fp = fingerprint(&("report/v1", &domains_fp));
        let report =
            super::report::iteration_report(k, &dir, &selection, &dedup, &corpus, &domains, previous, &report_fp)?;
        write_histogram_png(
            &dir.join("score_histogram.png"),
            &selection.plot_all,
            Some(selection.threshold),
        )?;
        Ok((domains_fp, report))
    }

    /// Positives: seeds plus pages discovered by earlier iterations; negatives: a seeded random sample of the pool.
    fn train_stage(&self, k: usize, dir: &Path, fp: &str) -> Result<()> {
        if Manifest::is_complete(dir, fp) {
            return Ok(());
        }
        let cfg = &self.config.classifier;
        let seed = self.config.seed;
        let mut positives: Vec<(u64, String)> = read_jsonl::<String>(&self.config.output.join("seeds/seeds.jsonl"))?
            .into_iter()
            .map(|t| (sample_key(seed, "pos", &t), t))
            .collect();
        let mut discovered = HashSet::new();
        for j in 1..k {
            let path = self.config.output.join(format!("iter-{j}/domains/new_seeds.txt"));
            discovered.extend(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .lines()
                    .map(str::to_string),
            );
        }
        // Bounded max-heap of the `negatives` smallest sample keys: memory bounded by configuration.
        let mut heap: BinaryHeap<(u64, String)> = BinaryHeap::new();
        let offer = |heap: &mut BinaryHeap<(u64, String)>, id: &str, text: String| {
            let key = sample_key(seed ^ k as u64, "neg", id);
            if heap.len() < cfg.negatives {
                heap.push((key, text));
            } else if heap.peek().is_some_and(|top| key < top.0) {
                heap.pop();
                heap.push((key, text));
            }
        };
        let negatives_from_pool = self.config.inputs.negatives.is_empty();
        for i in 0..self.shards.len() {
            for_each_batch(&self.pool_shard(i), |batch| {
                for doc in batch {
                    if discovered.contains(&doc.id) {
                        positives.push((sample_key(seed, "pos", &doc.id), doc.text));
                    } else if negatives_from_pool {
                        offer(&mut heap, &doc.id, doc.text);
                    }
                }
                Ok(())
            })?;
        }
        let mut negative_files = self.config.inputs.negatives.clone();
        negative_files.sort();
        for f in &negative_files {
            for doc in readers::open(f)?.flatten() {
                if let Ok(doc) = self.prepare(doc) {
                    offer(&mut heap, &doc.id, doc.text);
                }
            }
        }
        positives.sort();
        positives.truncate(cfg.max_positives);
        let negatives: Vec<String> = heap.into_sorted_vec().into_iter().map(|(_, t)| t).collect();
        let positives: Vec<String> = positives.into_iter().map(|(_, t)| t).collect();
        tracing::info!(
            iteration = k,
            positives = positives.len(),
            negatives = negatives.len(),
            "stage train"
        );
        std::fs::create_dir_all(dir)?;
        remove_stale_temporaries(dir);
        let tmp = dir.join(format!(".model.bin.tmp-{}", std::process::id()));
        self.c.trainer.train(
            &positives,
            &negatives,
            cfg,
            self.config.seed.wrapping_add(k as u64),
            &tmp,
        )?;
        std::fs::rename(&tmp, dir.join("model.bin"))?;
        let counts = serde_json::json!({"positives": positives.len(), "negatives": negatives.len(), "discovered": discovered.len()});
        write_atomic(&dir.join("counts.json"), &serde_json::to_vec_pretty(&counts)?)?;
        Manifest::write(dir, "train", fp, &["model.bin".into(), "counts.json".into()])
    }

    fn score_stage(&self, dir: &Path, fp: &str) -> Result<()> {
        let score_dir = dir.join("score");
        if Manifest::is_complete(&score_dir, fp) {
            return Ok(());
        }
        let model = self.c.trainer.load(&dir.join("train/model.bin"))?;
        tracing::info!(shards = self.shards.len(), "stage score");
        let outputs = sharded(&score_dir, self.shards.len(), "tsv", |i, path| {
            let mut w = AtomicWriter::create(path)?;
            for_each_batch(&self.pool_shard(i), |batch| {
                let scores: Vec<f32> = batch.par_iter().map(|d| model.score(&d.text)).collect();
                for (doc, score) in batch.iter().zip(scores) {
                    writeln!(w, "{}\t{:.6}\t{}\t{}", doc.id, score, doc_tokens(doc), lang_code(doc))?;
                }
                Ok(())
            })?;
            w.commit()
        })?;
        Manifest::write(&score_dir, "score", fp, &outputs)
    }

    fn for_each_score(&self, dir: &Path, i: usize, mut f: impl FnMut(&str, f32, u64, &str)) -> Result<()> {
        let path = dir.join("score").join(shard_name(i, "tsv"));
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let cols: Vec<&str> = line.split('\t').collect();
            let bad = || anyhow::anyhow!("{} line {}: malformed score line", path.display(), n + 1);
            if cols.len() != 4 {
                return Err(bad());
            }
            f(
                cols[0],
                cols[1].parse().map_err(|_| bad())?,
                cols[2].parse().map_err(|_| bad())?,
                cols[3],
            );
        }
        Ok(())
    }

    fn eligible(&self, score: f32, lang: &str) -> bool {
        let s = &self.config.select;
        score >= s.min_score && (s.languages.is_empty() || s.languages.iter().any(|l| l == lang))
    }

    /// Budget cut from a token-weighted score histogram: memory is `score_bins`, not the number of pages.
    fn select_stage(&self, dir: &Path, fp: &str) -> Result<Selection> {
        let path = dir.join("select");
        if Manifest::is_complete(&path, fp) {
            return Ok(serde_json::from_slice(&std::fs::read(path.join("selection.json"))?)?);
        }
        let s = &self.config.select;
        let mut sel = Selection {
            bins: s.score_bins,
            plot_all: vec![0; PLOT_BINS],
            plot_selected: vec![0; PLOT_BINS],
            ..Default::default()
        };
        let mut token_hist = vec![0u64; s.score_bins];
        let plot_bin = |score: f32| ((score.clamp(0.0, 1.0) * PLOT_BINS as f32) as usize).min(PLOT_BINS - 1);
        for i in 0..self.shards.len() {
            self.for_each_score(dir, i, |_, score, tokens, lang| {
                sel.scored_docs += 1;
                sel.plot_all[plot_bin(score)] += 1;
                if self.eligible(score, lang) {
                    sel.eligible_docs += 1;
                    sel.eligible_tokens += tokens;
                    let b = sel.bin(score);
                    token_hist[b] += tokens;
                }
            })?;
        }
        sel.cut_bin = 0;
        if s.token_budget > 0 {
            let mut total = 0u64;
            sel.cut_bin = s.score_bins;
            for b in (0..s.score_bins).rev() {
                if token_hist[b] == 0 {
                    continue;
                }
                total += token_hist[b];
                sel.cut_bin = b;
                if total >= s.token_budget {
                    break;
                }
            }
        }
        sel.threshold = (sel.cut_bin as f64 / s.score_bins as f64).max(s.min_score as f64);
        for i in 0..self.shards.len() {
            self.for_each_score(dir, i, |_, score, tokens, lang| {
                if self.eligible(score, lang) && sel.bin(score) >= sel.cut_bin {
                    sel.selected_docs += 1;
                    sel.selected_tokens += tokens;
                    sel.plot_selected[plot_bin(score)] += 1;
                }
            })?;
        }
        tracing::info!(
            selected = sel.selected_docs,
            tokens = sel.selected_tokens,
            threshold = sel.threshold,
            "stage select"
        );
        write_atomic(&path.join("selection.json"), &serde_json::to_vec_pretty(&sel)?)?;
        Manifest::write(&path, "select", fp, &["selection.json".into()])?;
        Ok(sel)
    }

    /// Sharded signatures, then global URL dedup and MinHash clustering over the selected pages.
    fn dedup_stage(&self, dir: &Path, sel: &Selection, fp: &str) -> Result<DedupSummary> {
        let path = dir.join("dedup");
        if Manifest::is_complete(&path, fp) {
            return Ok(serde_json::from_slice(&std::fs::read(path.join("summary.json"))?)?);
        }
        let hasher = MinHasher::new(crate::dedup::MinHashConfig {
            seed: self.config.dedup.seed ^ self.config.seed,
            ..self.config.dedup.clone()
        });
        let sig_outputs = sharded(&path, self.shards.len(), "sig.jsonl", |i, out| {
            let mut selected = HashSet::new();
            self.for_each_score(dir, i, |id, score, _, lang| {
                if self.eligible(score, lang) && sel.bin(score) >= sel.cut_bin {
                    selected.insert(id.to_string());
                }
            })?;
            let mut w = AtomicWriter::create(out)?;
            let mut scores = HashMap::new();
            self.for_each_score(dir, i, |id, score, _, _| {
                if selected.contains(id) {
                    scores.insert(id.to_string(), score);
                }
            })?;
            for_each_batch(&self.pool_shard(i), |batch| {
                let chosen: Vec<&Document> = batch.iter().filter(|d| selected.contains(&d.id)).collect();
                let sigs: Vec<Vec<u32>> = chosen.par_iter().map(|d| hasher.signature(&d.text)).collect();
                for (d, sig) in chosen.iter().zip(sigs) {
                    let rec = SigRecord {
                        id: d.id.clone(),
                        url: d.url.clone(),
                        score: scores[&d.id],
                        len: d.text.len(),
                        sig,
                    };
                    serde_json::to_writer(&mut w, &rec)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })?;
            w.commit()
        })?;
        let mut recs: Vec<SigRecord> = Vec::new();
        for name in &sig_outputs {
            recs.extend(read_jsonl::<SigRecord>(&path.join(name))?);
        }
        let keys: Vec<KeepKey> = recs
            .iter()
            .map(|r| KeepKey {
                score: Some(r.score),
                text_len: r.len,
                id: &r.id,
            })
            .collect();
        let urls: Vec<Option<&str>> = recs.iter().map(|r| r.url.as_deref()).collect();
        let by_url = dedup_by_url(&urls, &keys);
        let survivors: Vec<usize> = (0..recs.len()).filter(|&i| by_url.keep[i]).collect();
        let sigs: Vec<Vec<u32>> = survivors.iter().map(|&i| recs[i].sig.clone()).collect();
        let skeys: Vec<KeepKey> = survivors.iter().map(|&i| keys[i]).collect();
        let clustering = cluster_signatures(&hasher, &sigs, &skeys);
        let mut kept: Vec<&str> = survivors
            .iter()
            .zip(&clustering.keep)
            .filter(|(_, k)| **k)
            .map(|(&i, _)| recs[i].id.as_str())
            .collect();
        kept.sort_unstable();
        let mut members: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (j, &root) in clustering.cluster_of.iter().enumerate() {
            members.entry(root).or_default().push(j);
        }
        let mut big: Vec<Vec<usize>> = members.into_values().filter(|m| m.len() > 1).collect();
        big.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        let example_clusters = big
            .iter()
            .take(5)
            .map(|m| {
                let mut ids: Vec<String> = m.iter().map(|&j| recs[survivors[j]].id.clone()).collect();
                let keeper = m.iter().position(|&j| clustering.keep[j]).unwrap_or(0);
                ids.swap(0, keeper);
                ids
            })
            .collect();
        let summary = DedupSummary {
            input_docs: recs.len(),
            url_duplicates: by_url.removed,
            near_duplicates: clustering.stats.removed,
            clusters: clustering.stats.clone(),
            example_clusters,
            kept_docs: kept.len(),
        };
        tracing::info!(
            input = summary.input_docs,
            url_dups = summary.url_duplicates,
            near_dups = summary.near_duplicates,
            "stage dedup"
        );
        let mut list = kept.join("\n");
        list.push('\n');
        write_atomic(&path.join("kept.txt"), list.as_bytes())?;
        write_atomic(&path.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
        let mut outputs = sig_outputs;
        outputs.extend(["kept.txt".to_string(), "summary.json".to_string()]);
        Manifest::write(&path, "dedup", fp, &outputs)?;
        Ok(summary)
    }

    /// Decontaminates the kept pages and writes the iteration's corpus shards.
    fn corpus_stage(&self, dir: &Path, fp: &str) -> Result<CorpusShardStats> {
        let path = dir.join("corpus");
        let merge = |names: &[String]| -> Result<CorpusShardStats> {
            let mut total = CorpusShardStats::default();
            for n in names {
                let s: CorpusShardStats = serde_json::from_slice(&std::fs::read(path.join(n))?)?;
                total.documents += s.documents;
                total.tokens += s.tokens;
                for (l, c) in s.languages {
                    *total.languages.entry(l).or_default() += c;
                }
                total
                    .decontam
                    .merge(&s.decontam, self.config.decontam.matching.max_examples);
            }
            Ok(total)
        };
        let stat_names: Vec<String> = (0..self.shards.len()).map(|i| shard_name(i, "stats.json")).collect();
        if Manifest::is_complete(&path, fp) {
            return merge(&stat_names);
        }
        let kept: HashSet<String> = std::fs::read_to_string(dir.join("dedup/kept.txt"))?
            .lines()
            .map(str::to_string)
            .collect();
        let index = decontam::build_index(&self.config.decontam.benchmarks, self.config.decontam.matching.clone())?;
        let mut scores: HashMap<String, f32> = HashMap::new();
        for i in 0..self.shards.len() {
            self.for_each_score(dir, i, |id, score, _, _| {
                if kept.contains(id) {
                    scores.insert(id.to_string(), score);
                }
            })?;
        }
        let outputs = sharded(&path, self.shards.len(), "jsonl", |i, out| {
            let mut w = AtomicWriter::create(out)?;
            let mut stats = CorpusShardStats::default();
            for_each_batch(&self.pool_shard(i), |batch| {
                let chosen: Vec<Document> = batch.into_iter().filter(|d| kept.contains(&d.id)).collect();
                let cleaned: Vec<(Document, decontam::Cleaned)> = chosen
                    .into_par_iter()
                    .map(|d| {
                        let c = clean_text(&index, &d.text);
                        (d, c)
                    })
                    .collect();
                for (mut doc, c) in cleaned {
                    stats.decontam.record(&index, &doc.id, &doc.text, &c);
                    if c.text.trim().is_empty() {
                        continue;
                    }
                    if !c.matches.is_empty() {
                        doc.text = c.text;
                        let t = self.c.tokens.count(&doc.text);
                        doc.metadata.insert("tokens".into(), t.into());
                    }
                    doc.scores.insert("math".into(), scores[&doc.id]);
                    stats.documents += 1;
                    stats.tokens += doc_tokens(&doc);
                    *stats.languages.entry(lang_code(&doc).to_string()).or_default() += 1;
                    serde_json::to_writer(&mut w, &doc)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })?;
            write_atomic(&out.with_extension("stats.json"), &serde_json::to_vec_pretty(&stats)?)?;
            w.commit()
        })?;
        let mut all = outputs;
        all.extend(stat_names.iter().cloned());
        let total = merge(&stat_names)?;
        tracing::info!(
            docs = total.documents,
            tokens = total.tokens,
            decontam_hits = total.decontam.documents_hit,
            "stage corpus"
        );
        Manifest::write(&path, "corpus", fp, &all)?;
        Ok(total)
    }

    fn domain_stage(&self, dir: &Path, annotation: Option<&PathBuf>, fp: &str) -> Result<DomainSummary> {
        let path = dir.join("domains");
        if Manifest::is_complete(&path, fp) {
            return Ok(serde_json::from_slice(&std::fs::read(path.join("summary.json"))?)?);
        }
        let rule = &self.config.domains.rule;
        let mut collected = HashSet::new();
        for i in 0..self.shards.len() {
            for_each_batch(&dir.join("corpus").join(shard_name(i, "jsonl")), |b| {
                collected.extend(b.into_iter().map(|d| d.id));
                Ok(())
            })?;
        }
        let mut pages = Vec::new();
        for i in 0..self.shards.len() {
            for_each_batch(&self.pool_shard(i), |b| {
                pages.extend(
                    b.iter()
                        .filter_map(|d| PageRef::new(&d.id, d.url.as_deref()?, collected.contains(&d.id))),
                );
                Ok(())
            })?;
        }
        let stats = domains::domain_stats(&pages);
        let math: Vec<&str> = domains::math_domains(&stats, rule)
            .iter()
            .map(|s| s.key.as_str())
            .collect();
        let prefixes = domains::path_prefix_stats(&pages, &math, rule);
        domains::export_prefixes(&path.join("prefixes.tsv"), &prefixes)?;
        let (labelled, source) = match (annotation, self.config.domains.auto_label_fraction) {
            (Some(file), _) => {
                if !file.exists() {
                    bail!(
                        "iteration needs the annotation file {}: label the `label` column of {} (`math` for math-related prefixes), save it there, and rerun with --resume",
                        file.display(),
                        path.join("prefixes.tsv").display()
                    );
                }
                let (l, skipped) = domains::import_annotations(file)?;
                if skipped > 0 {
                    tracing::warn!(file = %file.display(), skipped, "malformed annotation lines skipped");
                }
                (
                    l,
                    format!("file {}", file.file_name().and_then(|n| n.to_str()).unwrap_or("?")),
                )
            }
            (None, Some(frac)) => (
                prefixes
                    .iter()
                    .filter(|(s, _)| s.fraction() >= frac)
                    .map(|(s, _)| AnnotatedPrefix { prefix: s.key.clone() })
                    .collect(),
                format!("auto (collected fraction >= {frac})"),
            ),
            (None, None) => (Vec::new(), "none".to_string()),
        };
        let seeds = domains::seeds_under_prefixes(&pages, &labelled);
        let mut top: Vec<&domains::DomainStat> = stats.iter().filter(|s| s.collected > 0).collect();
        top.sort_by(|a, b| b.collected.cmp(&a.collected).then(a.key.cmp(&b.key)));
        let summary = DomainSummary {
            domains: stats.len(),
            math_domains: math.len(),
            top_domains: top
                .iter()
                .take(15)
                .map(|s| (s.key.clone(), s.pages, s.collected))
                .collect(),
            exported_prefixes: prefixes.len(),
            annotation_source: source,
            math_prefixes: labelled.iter().map(|p| p.prefix.clone()).collect(),
            new_seeds: seeds.len(),
        };
        let mut list = seeds.join("\n");
        if !list.is_empty() {
            list.push('\n');
        }
        write_atomic(&path.join("new_seeds.txt"), list.as_bytes())?;
        write_atomic(&path.join("domains.json"), &serde_json::to_vec_pretty(&stats)?)?;
        write_atomic(&path.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
        tracing::info!(
            math_domains = summary.math_domains,
            new_seeds = summary.new_seeds,
            "stage domains"
        );
        let outputs = ["prefixes.tsv", "new_seeds.txt", "domains.json", "summary.json"].map(String::from);
        Manifest::write(&path, "domains", fp, &outputs)?;
        Ok(summary)
    }
}

use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
struct SigRecord {
    id: String,
    url: Option<String>,
    score: f32,
    len: usize,
    sig: Vec<u32>,
}
