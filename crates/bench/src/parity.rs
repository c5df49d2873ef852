//! Per-item agreement between our run and an independent reference run of the same prompts (e.g.
//! `scripts/hf_greedy.py`, transformers greedy decoding). Both completions go through the same extractor, so the
//! comparison is about the model engine, not about answer parsing.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::registry::BenchmarkSpec;
use crate::runner::ItemRecord;
use crate::scoring::Scorer;

/// One line of a reference completion file.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceCompletion {
    /// Item index (as in `items.jsonl`).
    pub index: usize,
    /// Problem id (checked against ours).
    pub id: String,
    /// Reference completion (stop strings applied).
    pub completion: String,
}

/// An item where the predictions differ.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// Item index.
    pub index: usize,
    /// Our prediction.
    pub ours: Option<String>,
    /// The reference's prediction.
    pub reference: Option<String>,
}

/// Agreement statistics.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    /// Items compared (present in both files).
    pub n: usize,
    /// Items with the same extracted prediction (both `None` counts as the same).
    pub same_prediction: usize,
    /// Items with byte-identical completions.
    pub same_completion: usize,
    /// `same_prediction / n` in percent.
    pub agreement: f64,
    /// Our accuracy on the compared items (%).
    pub our_accuracy: f64,
    /// The reference's accuracy on the compared items (%).
    pub reference_accuracy: f64,
    /// Items whose predictions differ.
    pub mismatches: Vec<Mismatch>,
}

/// Compares sample 0 of every item in `ours` (`items.jsonl`) with `reference` (JSONL of [`ReferenceCompletion`]).
pub fn compare(spec: &BenchmarkSpec, scorer: &Scorer, ours: &Path, reference: &Path) -> Result<ParityReport> {
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let mut theirs: HashMap<usize, ReferenceCompletion> = HashMap::new();
    for (i, line) in read(reference)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: ReferenceCompletion = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: bad reference record", reference.display(), i + 1))?;
        theirs.insert(r.index, r);
    }
    let (mut n, mut same_prediction, mut same_completion, mut ours_right, mut theirs_right) = (0, 0, 0, 0, 0);
    let mut mismatches = Vec::new();
    for (i, line) in read(ours)?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let item: ItemRecord =
            serde_json::from_str(line).with_context(|| format!("{}:{}: bad item record", ours.display(), i + 1))?;
        let Some(reference) = theirs.get(&item.index) else {
            continue;
        };
        if reference.id != item.id {
            bail!(
                "{} item {}: id {} differs from ours ({})",
                spec.name,
                item.index,
                reference.id,
                item.id
            );
        }
        let Some(sample) = item.samples.first() else { continue };
        n += 1;
        let theirs_pred = scorer.extract(&reference.completion);
        let ours_pred = scorer.extract(&sample.completion);
        same_completion += usize::from(sample.completion.trim_end() == reference.completion.trim_end());
        ours_right += usize::from(ours_pred.as_deref().is_some_and(|p| scorer.is_correct(p, &item.gold)));
        theirs_right += usize::from(theirs_pred.as_deref().is_some_and(|p| scorer.is_correct(p, &item.gold)));
        if ours_pred == theirs_pred {
            same_prediction += 1;
        } else {
            mismatches.push(Mismatch {
                index: item.index,
                ours: ours_pred,
                reference: theirs_pred,
            });
        }
    }
    if n == 0 {
        bail!("no common items between {} and {}", ours.display(), reference.display());
    }
    let pct = |x: usize| 100.0 * x as f64 / n as f64;
    Ok(ParityReport {
        n,
        same_prediction,
        same_completion,
        agreement: pct(same_prediction),
        our_accuracy: pct(ours_right),
        reference_accuracy: pct(theirs_right),
        mismatches,
    })
}
