//! SFT data (§3.2): prompt/response records rendered with the model's chat template, loss on response tokens
//! only, and examples randomly concatenated up to the context length.
//!
//! Accepted JSONL records (one per line; malformed lines are reported with file and line, counted, skipped):
//! `{"messages": [{"role": .., "content": ..}, ...]}` (the last message is the response, from the assistant),
//! `{"prompt": .., "response": ..}`, `{"question": .., "answer": ..}` (GSM8K), `{"problem": .., "solution": ..}`
//! (MATH), and `{"instruction": .., "output": ..}`.

use super::{derive_seed, Sequence, SequenceStream, PAD_SEGMENT};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seekmath_model::{ChatMessage, Tokenizer};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::PathBuf;

/// A conversation whose last message is the response to learn.
#[derive(Debug, Clone, PartialEq)]
pub struct SftRecord {
    /// Messages; the last one is the target response.
    pub messages: Vec<ChatMessage>,
}

/// A tokenised example: prompt tokens (no loss) followed by response tokens (loss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    /// Prompt tokens (chat template up to the assistant turn).
    pub prompt: Vec<u32>,
    /// Response tokens, including the end-of-turn / EOS token(s).
    pub response: Vec<u32>,
}

impl SftExample {
    fn len(&self) -> usize {
        self.prompt.len() + self.response.len()
    }
}

/// Counters from reading SFT files.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SftReadStats {
    /// Records read.
    pub records: usize,
    /// Lines that were not valid records (reported and skipped).
    pub malformed: usize,
}

/// Reads every record of `paths`.
pub fn read_records(paths: &[PathBuf]) -> Result<(Vec<SftRecord>, SftReadStats)> {
    let mut out = Vec::new();
    let mut stats = SftReadStats::default();
    for path in paths {
        let file = std::fs::File::open(path).with_context(|| format!("opening SFT data {}", path.display()))?;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            match parse_record(&line) {
                Ok(r) => {
                    out.push(r);
                    stats.records += 1;
                }
                Err(e) => {
                    tracing::warn!("{}:{}: skipping malformed SFT record: {e}", path.display(), n + 1);
                    stats.malformed += 1;
                }
            }
        }
    }
    Ok((out, stats))
}

/// Parses one JSON record in any of the accepted shapes.
pub fn parse_record(line: &str) -> Result<SftRecord> {
    let value: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
    let obj = value.as_object().context("not a JSON object")?;
    if let Some(messages) = obj.get("messages") {
        #[derive(Deserialize)]
        struct Msg {
            role: String,
            content: String,
        }
        let msgs: Vec<Msg> =
            serde_json::from_value(messages.clone()).context("'messages' must be [{role, content}]")?;
        if msgs.len() < 2 || msgs.last().unwrap().role != "assistant" {
            bail!("'messages' must end with an assistant message after at least one other message");
        }
        return Ok(SftRecord {
            messages: msgs.into_iter().map(|m| ChatMessage::new(m.role, m.content)).collect(),
        });
    }
    for (p, r) in [
        ("prompt", "response"),
        ("question", "answer"),
        ("problem", "solution"),
        ("instruction", "output"),
    ] {
        if let (Some(prompt), Some(response)) = (obj.get(p), obj.get(r)) {
            let (Some(prompt), Some(response)) = (prompt.as_str(), response.as_str()) else {
                bail!("'{p}' and '{r}' must be strings");
            };
            return Ok(SftRecord {
                messages: vec![
                    ChatMessage::new("user", prompt),
                    ChatMessage::new("assistant", response),
                ],
            });
        }
    }
    bail!("no 'messages', 'prompt'/'response', 'question'/'answer', 'problem'/'solution' or 'instruction'/'output'")
}

/// Turns a record into prompt and response tokens.
pub trait ExampleEncoder {
    /// Tokenises one record.
    fn encode(&self, record: &SftRecord) -> Result<SftExample>;
}

/// Encodes with a model tokenizer: the chat template when asked (prompt = template with the generation prompt,
/// response = the rest of the fully rendered conversation), else `prompt` with special tokens then
/// `response + eos`.
pub struct TokenizerEncoder<'a> {
    /// The tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Use the chat template.
    pub use_chat_template: bool,
    /// Prepended as a system message when set.
    pub system_prompt: Option<String>,
}

impl ExampleEncoder for TokenizerEncoder<'_> {
    fn encode(&self, record: &SftRecord) -> Result<SftExample> {
        let mut messages = record.messages.clone();
        if let Some(system) = &self.system_prompt {
            if messages.first().is_none_or(|m| m.role != "system") {
                messages.insert(0, ChatMessage::new("system", system.clone()));
            }
        }
        let (context, response) = messages.split_at(messages.len() - 1);
        let eos = self.tokenizer.eos_token_ids().first().copied();
        if self.use_chat_template {
            let prompt_text = self.tokenizer.apply_chat_template(context, true)?;
            let full_text = self.tokenizer.apply_chat_template(&messages, false)?;
            let Some(rest) = full_text.strip_prefix(&prompt_text) else {
                bail!("the chat template does not render the prompt as a prefix of the conversation");
            };
            let prompt = self.tokenizer.encode(&prompt_text, false)?;
            let mut response_ids = self.tokenizer.encode(rest, false)?;
            // Templates that end the turn with a newline after the end-of-turn token still must stop generation.
            if let Some(eos) = eos {
                if !response_ids.iter().any(|t| self.tokenizer.eos_token_ids().contains(t)) {
                    response_ids.push(eos);
                }
            }
            return Ok(SftExample {
                prompt,
                response: response_ids,
            });
        }
        let prompt_text: String = context
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let prompt = self.tokenizer.encode(&prompt_text, true)?;
        let mut response_ids = self.tokenizer.encode(&response[0].content, false)?;
        response_ids.extend(eos);
        Ok(SftExample {
            prompt,
            response: response_ids,
        })
    }
}

/// Builds one row from examples laid end to end: `T + 1` tokens, padded; targets are response tokens.
pub fn pack_examples(examples: &[&SftExample], sequence_len: usize, pad_id: u32) -> Sequence {
    let mut tokens = Vec::with_capacity(sequence_len);
    let mut segments = Vec::with_capacity(sequence_len);
    let mut targets = Vec::with_capacity(sequence_len);
    for (i, ex) in examples.iter().enumerate() {
        for (part, is_target) in [(&ex.prompt, false), (&ex.response, true)] {
            for &t in part.iter() {
                if tokens.len() == sequence_len {
                    break;
                }
                tokens.push(t);
                segments.push(i as u32);
                targets.push(is_target);
            }
        }
    }
    while tokens.len() < sequence_len {
        tokens.push(pad_id);
        segments.push(PAD_SEGMENT);
        targets.push(false);
    }
    Sequence {
        tokens,
        segments,
        targets,
    }
}

/// The SFT stream: per epoch, a seeded shuffle of the examples, greedily concatenated into rows of `T + 1`.
pub struct SftStream {
    examples: Vec<SftExample>,
    sequence_len: usize,
    pad_id: u32,
    concatenate: bool,
    seed: u64,
    epoch: u64,
    /// Rows of the current epoch, as example indices.
    rows: Vec<Vec<usize>>,
    next_row: usize,
}

/// Position of an [`SftStream`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SftPosition {
    /// Completed passes.
    pub epoch: u64,
    /// Next row of this epoch.
    pub next_row: usize,
}

impl SftStream {
    /// `examples` must each fit in `context_length + 1` tokens (see [`fit_examples`]).
    pub fn new(
        examples: Vec<SftExample>,
        context_length: usize,
        pad_id: u32,
        concatenate: bool,
        seed: u64,
    ) -> Result<Self> {
        if examples.is_empty() {
            bail!("no SFT examples to train on");
        }
        let mut stream = Self {
            examples,
            sequence_len: context_length + 1,
            pad_id,
            concatenate,
            seed,
            epoch: 0,
            rows: Vec::new(),
            next_row: 0,
        };
        stream.plan_epoch(0);
        Ok(stream)
    }

    fn plan_epoch(&mut self, epoch: u64) {
        let mut order: Vec<usize> = (0..self.examples.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            self.seed,
            0x5346_5421,
            epoch,
        )));
        self.rows.clear();
        let mut row: Vec<usize> = Vec::new();
        let mut used = 0;
        for i in order {
            let len = self.examples[i].len();
            if !row.is_empty() && (!self.concatenate || used + len > self.sequence_len) {
                self.rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(i);
            used += len;
        }
        if !row.is_empty() {
            self.rows.push(row);
        }
        self.epoch = epoch;
        self.next_row = 0;
    }

    /// Rows per epoch.
    pub fn rows_per_epoch(&self) -> usize {
        self.rows.len()
    }

    /// All rows of one epoch in order without advancing the stream (for held-out evaluation).
    pub fn epoch_sequences(&self) -> Vec<Sequence> {
        self.rows.iter().map(|r| self.row_sequence(r)).collect()
    }

    fn row_sequence(&self, row: &[usize]) -> Sequence {
        let examples: Vec<&SftExample> = row.iter().map(|&i| &self.examples[i]).collect();
        pack_examples(&examples, self.sequence_len, self.pad_id)
    }
}

impl SequenceStream for SftStream {
    fn next_sequence(&mut self) -> Result<Sequence> {
        if self.next_row == self.rows.len() {
            self.plan_epoch(self.epoch + 1);
            tracing::info!("SFT data: epoch {}", self.epoch);
        }
        let seq = self.row_sequence(&self.rows[self.next_row]);
        self.next_row += 1;
        Ok(seq)
    }

    fn position(&self) -> serde_json::Value {
        serde_json::to_value(SftPosition {
            epoch: self.epoch,
            next_row: self.next_row,
        })
        .expect("serialises")
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let pos: SftPosition = serde_json::from_value(position.clone()).context("SFT data position")?;
        self.plan_epoch(pos.epoch);
        if pos.next_row > self.rows.len() {
            bail!(
                "checkpoint SFT position {} is past the {} rows of an epoch (data changed?)",
                pos.next_row,
                self.rows.len()
            );
        }
        self.next_row = pos.next_row;
        Ok(())
    }
}

/// Drops (or, with `truncate`, cuts the response of) examples longer than `context_length + 1` tokens; returns
/// the kept examples and how many were dropped.
pub fn fit_examples(examples: Vec<SftExample>, context_length: usize, truncate: bool) -> (Vec<SftExample>, usize) {
    let limit = context_length + 1;
    let mut dropped = 0;
    let kept = examples
        .into_iter()
        .filter_map(|mut ex| {
            if ex.len() <= limit {
                return Some(ex);
            }
            if truncate && ex.prompt.len() < limit {
                ex.response.truncate(limit - ex.prompt.len());
                return Some(ex);
            }
            dropped += 1;
            None
        })
        .collect();
    (kept, dropped)
}

/// Splits off `holdout` examples (a seeded choice) for held-out loss; returns `(train, held_out)`.
pub fn split_holdout(mut examples: Vec<SftExample>, holdout: usize, seed: u64) -> (Vec<SftExample>, Vec<SftExample>) {
    if holdout == 0 || examples.len() < 2 {
        return (examples, Vec::new());
    }
    let holdout = holdout.min(examples.len() / 2);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(seed, 0x484F_4C44, 0)));
    let held: std::collections::HashSet<usize> = order[..holdout].iter().copied().collect();
    let mut train = Vec::new();
    let mut eval = Vec::new();
    for (i, ex) in examples.drain(..).enumerate() {
        if held.contains(&i) {
            eval.push(ex);
        } else {
            train.push(ex);
        }
    }
    (train, eval)
}

/// Reads and encodes SFT files.
pub fn load_examples(paths: &[PathBuf], encoder: &dyn ExampleEncoder) -> Result<(Vec<SftExample>, SftReadStats)> {
    let (records, stats) = read_records(paths)?;
    let examples = records
        .iter()
        .enumerate()
        .map(|(i, r)| encoder.encode(r).with_context(|| format!("encoding SFT record {i}")))
        .collect::<Result<Vec<_>>>()?;
    Ok((examples, stats))
}

/// The file name, for messages.
pub fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::collate;

    fn ex(prompt: &[u32], response: &[u32]) -> SftExample {
        SftExample {
            prompt: prompt.to_vec(),
            response: response.to_vec(),
        }
    }

    #[test]
    fn record_shapes_and_malformed_lines() {
        assert_eq!(
            parse_record(r#"{"question":"1+1?","answer":"2"}"#).unwrap().messages[1].content,
            "2"
        );
        let m =
            parse_record(r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}"#).unwrap();
        assert_eq!(m.messages.len(), 2);
        assert!(parse_record(r#"{"messages":[{"role":"user","content":"a"}]}"#).is_err());
        assert!(parse_record(r#"{"foo":1}"#).is_err());
        assert!(parse_record("nope").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\":\"p\",\"response\":\"r\"}\n{bad\n\n{\"problem\":\"x\",\"solution\":\"y\"}\n",
        )
        .unwrap();
        let (records, stats) = read_records(&[path]).unwrap();
        assert_eq!((records.len(), stats.malformed), (2, 1));
    }

    #[test]
    fn packed_rows_target_only_responses() {
        let a = ex(&[1, 2, 3], &[4, 5]);
        let b = ex(&[6, 7], &[8]);
        let seq = pack_examples(&[&a, &b], 10, 0);
        let batch = collate(&[seq], false);
        let labels: Vec<i64> = Vec::try_from(batch.labels.view([-1])).unwrap();
        // inputs 1 2 3 4 5 6 7 8 0 ; targets are 4,5 (after 3,4) and 8 (after 7).
        assert_eq!(labels, vec![-100, -100, 4, 5, -100, -100, 8, -100, -100]);
    }

    #[test]
    fn stream_concatenates_within_context_and_resumes() {
        let examples: Vec<SftExample> = (0..40u32)
            .map(|i| SftExample {
                prompt: vec![i, i],
                response: vec![100 + i; 1 + (i as usize % 4)],
            })
            .collect();
        let mut s = SftStream::new(examples.clone(), 11, 0, true, 3).unwrap();
        assert!(s.rows_per_epoch() < 40, "examples are concatenated");
        let all: Vec<Sequence> = (0..s.rows_per_epoch()).map(|_| s.next_sequence().unwrap()).collect();
        let covered: usize = all.iter().map(|q| q.targets.iter().filter(|&&t| t).count()).sum();
        assert_eq!(
            covered,
            examples.iter().map(|e| e.response.len()).sum::<usize>(),
            "every response exactly once"
        );
        let pos = s.position();
        let next: Vec<Sequence> = (0..5).map(|_| s.next_sequence().unwrap()).collect();
        let mut r = SftStream::new(examples, 11, 0, true, 3).unwrap();
        r.restore(&pos).unwrap();
        assert_eq!(next, (0..5).map(|_| r.next_sequence().unwrap()).collect::<Vec<_>>());
    }

    #[test]
    fn long_examples_are_dropped_or_truncated_and_holdout_is_disjoint() {
        let (kept, dropped) = fit_examples(vec![ex(&[1; 3], &[2; 3]), ex(&[1; 9], &[2; 9])], 7, false);
        assert_eq!((kept.len(), dropped), (1, 1));
        let (kept, dropped) = fit_examples(vec![ex(&[1; 3], &[2; 9])], 7, true);
        assert_eq!((kept[0].response.len(), dropped), (5, 0));
        let all: Vec<SftExample> = (0..10u32).map(|i| ex(&[i], &[i])).collect();
        let (train, held) = split_holdout(all, 3, 1);
        assert_eq!((train.len(), held.len()), (7, 3));
        assert!(held.iter().all(|h| !train.contains(h)));
    }
}
