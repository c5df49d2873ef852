//! Iteration and run reports (JSON for machines, Markdown for people).

use super::config::MineConfig;
use super::mine::{CorpusShardStats, DedupSummary, DomainSummary, Selection, PLOT_BINS};
use super::shards::{shard_name, write_atomic};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// One iteration's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationReport {
    /// Iteration number (from 1).
    pub iteration: usize,
    /// Ranking outcome.
    pub selection: Selection,
    /// Dedup outcome.
    pub dedup: DedupSummary,
    /// Final corpus of the iteration (after decontamination).
    pub corpus: CorpusShardStats,
    /// Domain discovery.
    pub domains: DomainSummary,
    /// Pages of this iteration's corpus already in the previous iteration's corpus (`None` for the first).
    pub overlap_with_previous: Option<usize>,
    /// `overlap_with_previous / corpus.documents`: the paper stopped at 98%.
    pub overlap_fraction: Option<f64>,
    /// Fingerprint of the inputs of the report, so a resumed run can tell it is current.
    pub fingerprint: String,
}

fn corpus_ids(dir: &Path) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    let corpus = dir.join("corpus");
    for i in 0.. {
        let p = corpus.join(shard_name(i, "jsonl"));
        if !p.exists() {
            break;
        }
        let f = std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?;
        for line in std::io::BufReader::new(f).lines() {
            let v: serde_json::Value = serde_json::from_str(&line?)?;
            if let Some(id) = v.get("id").and_then(|x| x.as_str()) {
                ids.insert(id.to_string());
            }
        }
    }
    Ok(ids)
}

/// Builds (or, when current, re-reads) an iteration's report and writes `report.json`.
#[allow(clippy::too_many_arguments)]
pub fn iteration_report(
    iteration: usize,
    dir: &Path,
    selection: &Selection,
    dedup: &DedupSummary,
    corpus: &CorpusShardStats,
    domains: &DomainSummary,
    previous: Option<&IterationReport>,
    fingerprint: &str,
) -> Result<IterationReport> {
    let path = dir.join("report.json");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(r) = serde_json::from_slice::<IterationReport>(&bytes) {
            if r.fingerprint == fingerprint {
                return Ok(r);
            }
        }
    }
    let (overlap, fraction) = match previous {
        Some(p) => {
            let prev_dir = dir.with_file_name(format!("iter-{}", p.iteration));
            let before = corpus_ids(&prev_dir)?;
            let now = corpus_ids(dir)?;
            let shared = now.iter().filter(|id| before.contains(*id)).count();
            (Some(shared), Some(shared as f64 / now.len().max(1) as f64))
        }
        None => (None, None),
    };
    let report = IterationReport {
        iteration,
        selection: selection.clone(),
        dedup: dedup.clone(),
        corpus: corpus.clone(),
        domains: domains.clone(),
        overlap_with_previous: overlap,
        overlap_fraction: fraction,
        fingerprint: fingerprint.to_string(),
    };
    write_atomic(&path, &serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

fn pct(a: f64) -> String {
    format!("{:.1}%", 100.0 * a)
}

/// Writes `report.md` (all iterations) in the output directory and returns its path.
pub fn write_run_report(out: &Path, config: &MineConfig, unit: &str, reports: &[IterationReport]) -> Result<PathBuf> {
    let mut md = String::new();
    let _ = writeln!(md, "# corpus mine report\n");
    let _ = writeln!(
        md,
        "Seed {}; {} iteration(s); {} pool shard(s); token unit: {unit}; budget {} {unit}/iteration, score floor {}; \
         dedup {}-gram shingles, {}×{} LSH, candidate verification {}; decontamination {}-grams against {} benchmark path(s).\n",
        config.seed,
        config.iterations,
        config.inputs.pool.len(),
        config.select.token_budget,
        config.select.min_score,
        config.dedup.shingle.ngram,
        config.dedup.bands,
        config.dedup.rows,
        config.dedup.verify_threshold.map_or("off".to_string(), |t| format!("at estimated Jaccard ≥ {t}")),
        config.decontam.matching.ngram,
        config.decontam.benchmarks.len(),
    );
    let _ = writeln!(md, "## Convergence\n");
    let _ = writeln!(md, "| iteration | scored | selected | after dedup | kept pages | kept {unit} | already in previous iteration | new seeds |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.iteration,
            r.selection.scored_docs,
            r.selection.selected_docs,
            r.dedup.kept_docs,
            r.corpus.documents,
            r.corpus.tokens,
            match (r.overlap_with_previous, r.overlap_fraction) {
                (Some(n), Some(f)) => format!("{n} ({})", pct(f)),
                _ => "–".into(),
            },
            r.domains.new_seeds
        );
    }
    for r in reports {
        let _ = writeln!(md, "\n## Iteration {}\n", r.iteration);
        let _ = writeln!(
            md,
            "**Ranking.** {} pages scored; {} eligible (language filter, score ≥ floor) with {} {unit}; cut at score {:.4} keeps {} pages / {} {unit}.\n",
            r.selection.scored_docs, r.selection.eligible_docs, r.selection.eligible_tokens, r.selection.threshold, r.selection.selected_docs, r.selection.selected_tokens
        );
        let _ = writeln!(
            md,
            "Score histogram (log scale; red line: cut): `iter-{}/score_histogram.png`\n",
            r.iteration
        );
        let _ = writeln!(md, "| score bin | all pages | selected |\n|---|---|---|");
        for b in 0..PLOT_BINS {
            let _ = writeln!(
                md,
                "| {:.2}–{:.2} | {} | {} |",
                b as f64 / PLOT_BINS as f64,
                (b + 1) as f64 / PLOT_BINS as f64,
                r.selection.plot_all[b],
                r.selection.plot_selected[b]
            );
        }
        let d = &r.dedup;
        let _ = writeln!(
            md,
            "\n**Dedup.** {} pages in; {} exact-URL duplicates; {} near duplicates in {} clusters (largest {}; {} LSH candidate pairs, {} rejected by verification); {} kept.\n",
            d.input_docs, d.url_duplicates, d.near_duplicates, d.clusters.duplicate_clusters, d.clusters.largest_cluster, d.clusters.candidate_pairs, d.clusters.rejected_pairs, d.kept_docs
        );
        let dc = &r.corpus.decontam;
        let _ = writeln!(
            md,
            "**Decontamination.** {} pages scanned ({} bytes); {} had lines removed ({} lines, {} bytes); {} emptied and dropped.\n",
            dc.documents, dc.bytes_scanned, dc.documents_hit, dc.segments_removed, dc.bytes_removed, dc.documents_emptied
        );
        if !dc.per_benchmark.is_empty() {
            let _ = writeln!(md, "| benchmark | pages hit | matches | items hit | example (page → item: matched text) |\n|---|---|---|---|---|");
            for (name, c) in &dc.per_benchmark {
                let ex = c
                    .examples
                    .first()
                    .map(|e| {
                        let snippet: String = e.matched.chars().take(80).collect();
                        format!("{} → {}: {}", e.doc_id, e.item_id, snippet.replace(['|', '\n'], " "))
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {ex} |",
                    c.documents_hit, c.matches, c.items_hit
                );
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "**Corpus.** {} pages, {} {unit}. Language mix:\n",
            r.corpus.documents, r.corpus.tokens
        );
        let mut langs: Vec<(&String, &u64)> = r.corpus.languages.iter().collect();
        langs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(md, "| language | pages |\n|---|---|");
        for (l, c) in langs {
            let _ = writeln!(md, "| {l} | {c} |");
        }
        let dm = &r.domains;
        let _ = writeln!(
            md,
            "\n**Domains.** {} domains in the pool; {} math-related (> {} of pages collected); {} path prefixes exported to `iter-{}/domains/prefixes.tsv`; annotation: {}; {} prefixes labelled math; {} uncollected pages under them added to the next iteration's seeds.\n",
            dm.domains, dm.math_domains, pct(config.domains.rule.math_fraction), dm.exported_prefixes, r.iteration, dm.annotation_source, dm.math_prefixes.len(), dm.new_seeds
        );
        let _ = writeln!(
            md,
            "| top domain | pool pages | collected | fraction |\n|---|---|---|---|"
        );
        for (dom, pages, coll) in &dm.top_domains {
            let _ = writeln!(
                md,
                "| {dom} | {pages} | {coll} | {} |",
                pct(*coll as f64 / (*pages).max(1) as f64)
            );
        }
    }
    let path = out.join("report.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}
