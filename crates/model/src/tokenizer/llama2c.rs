//! llama2.c's `tokenizer.bin`: SentencePiece pieces with merge scores, encoded by greedy highest-score pair
//! merging with byte fallback (`<0xNN>` pieces), exactly as llama2.c's `run.c` does.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

/// Beginning-of-sequence id in llama2.c vocabularies.
pub const BOS_ID: u32 = 1;
/// End-of-sequence id in llama2.c vocabularies.
pub const EOS_ID: u32 = 2;

/// Pieces and scores of a llama2.c tokenizer.
#[derive(Debug, Clone)]
pub struct Llama2cVocab {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    index: HashMap<Vec<u8>, u32>,
    byte_ids: [Option<u32>; 256],
}

/// `<0xNN>` → the byte NN.
fn byte_piece(piece: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(piece).ok()?;
    let hex = s.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl Llama2cVocab {
    /// Reads `i32 max_token_length` then, per piece, `f32 score, i32 len, len bytes`.
    pub fn from_file(path: &Path, vocab_size: usize) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut pos = 4usize;
        ensure!(bytes.len() >= 4, "{}: empty llama2.c tokenizer", path.display());
        let mut pieces = Vec::with_capacity(vocab_size);
        let mut scores = Vec::with_capacity(vocab_size);
        for i in 0..vocab_size {
            if pos + 8 > bytes.len() {
                bail!("{}: file ends at piece {i} of {vocab_size}", path.display());
            }
            let score = f32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
            let len = i32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
            pos += 8;
            ensure!(
                len >= 0 && pos + len as usize <= bytes.len(),
                "{}: bad length {len} of piece {i}",
                path.display()
            );
            pieces.push(bytes[pos..pos + len as usize].to_vec());
            scores.push(score);
            pos += len as usize;
        }
        ensure!(
            pos == bytes.len(),
            "{}: {} trailing bytes after {vocab_size} pieces",
            path.display(),
            bytes.len() - pos
        );
        Ok(Self::new(pieces, scores))
    }

    /// A vocabulary from pieces and their merge scores.
    pub fn new(pieces: Vec<Vec<u8>>, scores: Vec<f32>) -> Self {
        let mut index = HashMap::new();
        let mut byte_ids = [None; 256];
        for (i, p) in pieces.iter().enumerate() {
            index.entry(p.clone()).or_insert(i as u32);
            if let Some(b) = byte_piece(p) {
                byte_ids[b as usize] = Some(i as u32);
            }
        }
        Llama2cVocab {
            pieces,
            scores,
            index,
            byte_ids,
        }
    }

    /// Number of pieces.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Id of a piece.
    pub fn piece_id(&self, piece: &[u8]) -> Option<u32> {
        self.index.get(piece).copied()
    }

    /// Bytes of a piece.
    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        self.pieces.get(id as usize).map(Vec::as_slice)
    }

    /// run.c's `encode`: optional BOS, a dummy-prefix space, one piece per UTF-8 character (byte fallback), then
    /// repeated merging of the adjacent pair whose concatenation has the highest score (first pair on ties).
    pub fn encode(&self, text: &str, add_bos: bool) -> Vec<u32> {
        let mut tokens = Vec::new();
        if add_bos {
            tokens.push(BOS_ID);
        }
        if text.is_empty() {
            return tokens;
        }
        let start = tokens.len();
        if let Some(space) = self.piece_id(b" ") {
            tokens.push(space);
        }
        let mut buf = [0u8; 4];
        for ch in text.chars() {
            let bytes = ch.encode_utf8(&mut buf).as_bytes();
            match self.piece_id(bytes) {
                Some(id) => tokens.push(id),
                None => tokens.extend(bytes.iter().map(|&b| self.byte_ids[b as usize].unwrap_or(b as u32 + 3))),
            }
        }
        loop {
            let mut best: Option<(f32, usize, u32)> = None;
            for i in start..tokens.len().saturating_sub(1) {
                let mut merged = self.pieces[tokens[i] as usize].clone();
                merged.extend_from_slice(&self.pieces[tokens[i + 1] as usize]);
                if let Some(id) = self.piece_id(&merged) {
                    let score = self.scores[id as usize];
                    if best.is_none_or(|(s, _, _)| score > s) {
                        best = Some((score, i, id));
                    }
                }
            }
            let Some((_, i, id)) = best else { break };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
        tokens
    }

    /// Concatenated pieces (`<0xNN>` → byte NN), lossily decoded as UTF-8. Unlike run.c, the leading space of the
    /// first piece is kept (decode is then a pure concatenation). `skip_special` drops BOS/EOS.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            if skip_special && (id == BOS_ID || id == EOS_ID) {
                continue;
            }
            let Some(piece) = self.piece(id) else {
                bail!("token id {id} is outside the vocabulary of {}", self.len())
            };
            match byte_piece(piece) {
                Some(b) => bytes.push(b),
                None => bytes.extend_from_slice(piece),
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Llama2cVocab {
        let mut pieces: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"\n<s>\n".to_vec(), b"\n</s>\n".to_vec()];
        pieces.extend((0..=255u8).map(|b| format!("<0x{b:02X}>").into_bytes()));
        let words: [&[u8]; 5] = [b" ", b"a", b"b", b" a", b" ab"];
        pieces.extend(words.iter().map(|w| w.to_vec()));
        let mut scores = vec![0.0; pieces.len()];
        let n = scores.len();
        scores[n - 2] = -1.0;
        scores[n - 1] = -0.5;
        Llama2cVocab::new(pieces, scores)
    }

    #[test]
    fn merges_by_score_and_falls_back_to_bytes() {
        let v = vocab();
        let ids = v.encode("ab", true);
        assert_eq!(ids[0], BOS_ID);
        assert_eq!(v.decode(&ids[1..], false).unwrap(), " ab");
        assert_eq!(ids.len(), 2, "' ', 'a', 'b' merge to ' a' then ' ab'");
        let ids = v.encode("é", false);
        assert_eq!(ids.len(), 3, "space + two byte pieces");
        assert_eq!(v.decode(&ids, false).unwrap(), " é");
    }
}
