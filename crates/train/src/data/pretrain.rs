//! The pre-training stream: a weighted mixture of token sources, each shuffled per epoch and packed into
//! fixed-length sequences.
//!
//! Which source feeds sequence `k` is a pure function of `(seed, k)` (so mixture proportions hold exactly in
//! expectation and need no state), and each source walks its documents in a seeded per-epoch permutation,
//! concatenating them (each ends with EOS) into `T + 1`-token rows, as GPT-style packing does. The position is
//! the sequence counter plus each source's `(epoch, index, offset)` cursor.

use super::shards::{expand_shard_paths, Shard};
use super::{derive_seed, Sequence, SequenceStream};
use crate::config::SourceConfig;
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Where a source stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCursor {
    /// Completed passes over the source.
    pub epoch: u64,
    /// Index into this epoch's document permutation.
    pub index: u64,
    /// Tokens of the current document already consumed.
    pub offset: u64,
}

/// One source's documents across its shards.
struct SourceStream {
    name: String,
    shards: Vec<Shard>,
    /// Cumulative document counts: document `g` lives in the shard `i` with `starts[i] <= g < starts[i+1]`.
    starts: Vec<u64>,
    order: Vec<u64>,
    cursor: SourceCursor,
    seed: u64,
}

impl SourceStream {
    fn open(name: &str, paths: &[std::path::PathBuf], seed: u64) -> Result<Self> {
        let files = expand_shard_paths(paths).with_context(|| format!("data source '{name}'"))?;
        if files.is_empty() {
            bail!("data source '{name}' has no token shards in {paths:?}");
        }
        let shards = files.iter().map(|f| Shard::open(f)).collect::<Result<Vec<_>>>()?;
        let mut starts = vec![0u64];
        for s in &shards {
            starts.push(starts.last().unwrap() + s.num_documents() as u64);
        }
        if shards.iter().all(|s| s.num_tokens() == 0) {
            bail!("data source '{name}' has no tokens");
        }
        let mut stream = Self {
            name: name.to_string(),
            shards,
            starts,
            order: Vec::new(),
            cursor: Default::default(),
            seed,
        };
        stream.shuffle(0);
        Ok(stream)
    }

    fn num_documents(&self) -> u64 {
        *self.starts.last().unwrap()
    }

    fn shuffle(&mut self, epoch: u64) {
        self.order = (0..self.num_documents()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(self.seed, 0x5348_5546, epoch));
        self.order.shuffle(&mut rng);
    }

    fn locate(&self, global: u64) -> (usize, usize) {
        let shard = self.starts.partition_point(|&s| s <= global) - 1;
        (shard, (global - self.starts[shard]) as usize)
    }

    /// Appends `n` tokens (and their document ids, numbered from `first_segment`) to the outputs.
    fn take(&mut self, n: usize, tokens: &mut Vec<u32>, segments: &mut Vec<u32>, mut segment: u32) -> Result<()> {
        let mut need = n;
        while need > 0 {
            let (shard, doc) = self.locate(self.order[self.cursor.index as usize]);
            let len = self.shards[shard].document_len(doc) as u64;
            let available = len - self.cursor.offset;
            let k = available.min(need as u64) as usize;
            if k > 0 {
                tokens.extend(self.shards[shard].read(doc, self.cursor.offset as usize, k)?);
                segments.extend(std::iter::repeat_n(segment, k));
                self.cursor.offset += k as u64;
                need -= k;
            }
            if self.cursor.offset == len {
                self.cursor.offset = 0;
                self.cursor.index += 1;
                if k > 0 {
                    segment += 1;
                }
                if self.cursor.index == self.num_documents() {
                    self.cursor.index = 0;
                    self.cursor.epoch += 1;
                    self.shuffle(self.cursor.epoch);
                    tracing::info!("data source '{}' starts epoch {}", self.name, self.cursor.epoch);
                }
            }
        }
        Ok(())
    }
}

/// The mixture stream of the pre-training stage.
pub struct MixtureStream {
    sources: Vec<SourceStream>,
    /// Cumulative normalised weights.
    cumulative: Vec<f64>,
    seed: u64,
    sequence_len: usize,
    emitted: u64,
}

/// The serialised position of a [`MixtureStream`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MixturePosition {
    /// Sequences produced so far.
    pub emitted: u64,
    /// Per-source cursors, by source name.
    pub sources: Vec<(String, SourceCursor)>,
}

impl MixtureStream {
    /// Opens every source's shards; `context_length` tokens of input per sequence.
    pub fn new(sources: &[SourceConfig], context_length: usize, seed: u64) -> Result<Self> {
        let active: Vec<&SourceConfig> = sources.iter().filter(|s| s.weight > 0.0).collect();
        if active.is_empty() {
            bail!("no data source with a positive weight (data.sources)");
        }
        let total: f64 = active.iter().map(|s| s.weight).sum();
        let mut cumulative = Vec::new();
        let mut acc = 0.0;
        for s in &active {
            acc += s.weight / total;
            cumulative.push(acc);
        }
        *cumulative.last_mut().unwrap() = 1.0;
        let streams = active
            .iter()
            .enumerate()
            .map(|(i, s)| SourceStream::open(&s.name, &s.paths, derive_seed(seed, 0x5352_4353, i as u64)))
            .collect::<Result<Vec<_>>>()?;
        for (s, w) in active.iter().zip(&cumulative) {
            tracing::info!(
                "data source '{}': weight {:.3} (cumulative {w:.3})",
                s.name,
                s.weight / total
            );
        }
        Ok(Self {
            sources: streams,
            cumulative,
            seed,
            sequence_len: context_length + 1,
            emitted: 0,
        })
    }

    /// Index of the source that feeds sequence `k`.
    pub fn source_for(&self, k: u64) -> usize {
        let u = (derive_seed(self.seed, 0x4D49_5854, k) >> 11) as f64 / (1u64 << 53) as f64;
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }

    /// Source names in index order.
    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name.clone()).collect()
    }
}

impl SequenceStream for MixtureStream {
    fn next_sequence(&mut self) -> Result<Sequence> {
        let source = self.source_for(self.emitted);
        let mut tokens = Vec::with_capacity(self.sequence_len);
        let mut segments = Vec::with_capacity(self.sequence_len);
        self.sources[source].take(self.sequence_len, &mut tokens, &mut segments, 0)?;
        self.emitted += 1;
        Ok(Sequence {
            targets: vec![true; tokens.len()],
            tokens,
            segments,
        })
    }

    fn position(&self) -> serde_json::Value {
        let pos = MixturePosition {
            emitted: self.emitted,
            sources: self.sources.iter().map(|s| (s.name.clone(), s.cursor)).collect(),
        };
        serde_json::to_value(pos).expect("position serialises")
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let pos: MixturePosition = serde_json::from_value(position.clone()).context("data position")?;
        if pos.sources.len() != self.sources.len() {
            bail!(
                "checkpoint has {} data sources, the config {}",
                pos.sources.len(),
                self.sources.len()
            );
        }
        for (stream, (name, cursor)) in self.sources.iter_mut().zip(&pos.sources) {
            if &stream.name != name {
                bail!(
                    "checkpoint data source '{name}' does not match the config's '{}'",
                    stream.name
                );
            }
            if cursor.index >= stream.num_documents() {
                bail!(
                    "checkpoint cursor of '{name}' is past its {} documents (shards changed?)",
                    stream.num_documents()
                );
            }
            stream.shuffle(cursor.epoch);
            stream.cursor = *cursor;
        }
        self.emitted = pos.emitted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shards::ShardWriter;
    use std::path::Path;

    fn write_source(dir: &Path, name: &str, base: u32, docs: usize) -> SourceConfig {
        let path = dir.join(format!("{name}.smtok"));
        let mut w = ShardWriter::new(&path);
        for d in 0..docs {
            let len = 3 + d % 5;
            let doc: Vec<u32> = (0..len as u32).map(|t| base + (d as u32) * 10 + t).collect();
            w.push(&doc);
        }
        w.finish().unwrap();
        SourceConfig {
            name: name.into(),
            weight: 1.0,
            paths: vec![path],
        }
    }

    #[test]
    fn mixture_follows_weights_and_resumes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = write_source(dir.path(), "a", 0, 20);
        let mut b = write_source(dir.path(), "b", 100_000, 7);
        a.weight = 0.8;
        b.weight = 0.2;
        let sources = vec![a, b];
        let mut stream = MixtureStream::new(&sources, 8, 7).unwrap();
        let counts = (0..5000u64).fold([0usize; 2], |mut c, k| {
            c[stream.source_for(k)] += 1;
            c
        });
        assert!((counts[0] as f64 / 5000.0 - 0.8).abs() < 0.03, "{counts:?}");

        let first: Vec<Sequence> = (0..30).map(|_| stream.next_sequence().unwrap()).collect();
        assert!(first.iter().all(|s| s.tokens.len() == 9 && s.segments.len() == 9));
        // Source b (7 short documents) wraps around several epochs within 30 sequences; still deterministic.
        let saved = stream.position();
        let rest: Vec<Sequence> = (0..20).map(|_| stream.next_sequence().unwrap()).collect();
        let mut resumed = MixtureStream::new(&sources, 8, 7).unwrap();
        resumed.restore(&saved).unwrap();
        let again: Vec<Sequence> = (0..20).map(|_| resumed.next_sequence().unwrap()).collect();
        assert_eq!(rest, again);
        // A different seed gives a different order.
        let mut other = MixtureStream::new(&sources, 8, 8).unwrap();
        let other_first: Vec<Sequence> = (0..30).map(|_| other.next_sequence().unwrap()).collect();
        assert_ne!(first, other_first);
    }

    #[test]
    fn packing_marks_document_boundaries_and_covers_every_document_once_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let src = write_source(dir.path(), "only", 0, 10);
        let total: usize = (0..10).map(|d| 3 + d % 5).sum();
        let mut stream = MixtureStream::new(&[src], 4, 1).unwrap();
        let mut seen = Vec::new();
        while seen.len() < total {
            let s = stream.next_sequence().unwrap();
            for w in s.tokens.windows(2).zip(s.segments.windows(2)) {
                // Within a document, token ids are consecutive; a segment change marks a new document.
                if w.1[0] == w.1[1] {
                    assert_eq!(w.0[1], w.0[0] + 1);
                }
            }
            seen.extend(s.tokens);
        }
        let mut first_epoch: Vec<u32> = seen[..total].to_vec();
        first_epoch.sort();
        let mut expected: Vec<u32> = (0..10u32)
            .flat_map(|d| (0..3 + d % 5).map(move |t| d * 10 + t))
            .collect();
        expected.sort();
        assert_eq!(first_epoch, expected);
    }
}
