//! Inference for fastText supervised models: tokenization, hashing, hidden layer and the three output layers,
//! computed exactly as fastText 0.9 does so that labels and probabilities match (see `tests/fasttext_parity.rs`).
//!
//! This is the hot path of mining (every crawled page is scored), so it avoids per-call allocation (a reusable
//! [`Scratch`]), hashes each token once for both lookup and word n-grams, uses a flat open-addressing vocabulary
//! table, maps pruned n-gram buckets through a dense array, and prefetches embedding rows ahead of the sum.

use super::format::{DenseMatrix, EntryKind, Loss, Matrix, ModelFile, QuantMatrix, EOS};

/// Prefix that marks label tokens.
pub const LABEL_PREFIX: &str = "__label__";

const SIGMOID_TABLE_SIZE: usize = 512;
const MAX_SIGMOID: f32 = 8.0;

/// fastText's 32-bit FNV-1a over bytes, with bytes sign-extended as C++ `char` is.
#[inline]
pub fn fasttext_hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= b as i8 as i32 as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

/// One prediction: label index and probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Index into the model's labels.
    pub label: usize,
    /// Probability (as fastText reports it: `exp(log(p + 1e-5))`).
    pub prob: f32,
}

/// Reusable buffers for [`FastTextModel::predict_into`]; one per thread.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    ids: Vec<i32>,
    hashes: Vec<i32>,
    hidden: Vec<f32>,
    output: Vec<f32>,
    ngram: Vec<u8>,
    heap: Vec<(f32, usize)>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
}

/// A loaded supervised model ready for prediction.
#[derive(Debug, Clone)]
pub struct FastTextModel {
    file: ModelFile,
    /// Open-addressing table of entry ids keyed by token hash.
    table: Vec<i32>,
    table_mask: usize,
    entry_hashes: Vec<u32>,
    /// Character n-gram rows of each in-vocabulary word (flattened), when the model uses subwords.
    subword_offsets: Vec<u32>,
    subword_ids: Vec<i32>,
    /// Pruned `.ftz` models: bucket → row offset, -1 when pruned away.
    bucket_map: Option<Vec<i32>>,
    tree: Vec<Node>,
    sigmoid_table: Vec<f32>,
}

impl FastTextModel {
    /// Prepares lookup structures for a model file.
    pub fn new(file: ModelFile) -> FastTextModel {
        let nentries = file.dict.entries.len();
        let capacity = (nentries.max(1) * 2).next_power_of_two();
        let mut table = vec![-1i32; capacity];
        let mut entry_hashes = Vec::with_capacity(nentries);
        for (id, entry) in file.dict.entries.iter().enumerate() {
            let h = fasttext_hash(entry.word.as_bytes());
            entry_hashes.push(h);
            let mut slot = h as usize & (capacity - 1);
            while table[slot] != -1 {
                slot = (slot + 1) & (capacity - 1);
            }
            table[slot] = id as i32;
        }
        let bucket_map = (file.dict.pruneidx_size > 0).then(|| {
            let mut map = vec![-1i32; file.args.bucket.max(0) as usize];
            for (&from, &to) in &file.dict.pruneidx {
                if let Some(slot) = map.get_mut(from as usize) {
                    *slot = to;
                }
            }
            map
        });
        let sigmoid_table = (0..=SIGMOID_TABLE_SIZE)
            .map(|i| {
                let x = (i as f32 * 2.0 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE as f32 - MAX_SIGMOID;
                (1.0 / (1.0 + (-(x as f64)).exp())) as f32
            })
            .collect();
        let mut model = FastTextModel {
            table_mask: capacity - 1,
            file,
            table,
            entry_hashes,
            subword_offsets: vec![0],
            subword_ids: Vec::new(),
            bucket_map,
            tree: Vec::new(),
            sigmoid_table,
        };
        if model.file.args.maxn > 0 {
            let mut ngram = Vec::new();
            for id in 0..model.file.dict.nwords as usize {
                let mut ids = vec![id as i32];
                let word = model.file.dict.entries[id].word.clone();
                if word != EOS {
                    model.compute_subwords(word.as_bytes(), &mut ids, &mut ngram);
                }
                model.subword_ids.extend_from_slice(&ids);
                model.subword_offsets.push(model.subword_ids.len() as u32);
            }
        }
        if model.file.args.loss == Loss::HierarchicalSoftmax {
            model.tree = build_tree(&model.file.dict.label_counts());
        }
        model
    }

    /// The underlying model file.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// Consumes the model, returning its file.
    pub fn into_file(self) -> ModelFile {
        self.file
    }

    /// Number of labels.
    pub fn num_labels(&self) -> usize {
        self.file.dict.nlabels as usize
    }

    /// Label name `i` (with its `__label__` prefix).
    pub fn label(&self, i: usize) -> &str {
        self.file.dict.label(i)
    }

    /// Index of a label, given with or without the `__label__` prefix.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        (0..self.num_labels()).find(|&i| {
            let l = self.label(i);
            l == name || l.strip_prefix(LABEL_PREFIX) == Some(name)
        })
    }

    #[inline]
    fn find(&self, token: &[u8], h: u32) -> i32 {
        let mut slot = h as usize & self.table_mask;
        loop {
            let id = self.table[slot];
            if id < 0 {
                return -1;
            }
            if self.entry_hashes[id as usize] == h && self.file.dict.entries[id as usize].word.as_bytes() == token {
                return id;
            }
            slot = (slot + 1) & self.table_mask;
        }
    }

    /// fastText's `pushHash`: map a bucket to an input row, honouring pruning.
    #[inline]
    fn push_bucket(&self, out: &mut Vec<i32>, bucket: i32) {
        let dict = &self.file.dict;
        if dict.pruneidx_size == 0 || bucket < 0 {
            return;
        }
        let bucket = match &self.bucket_map {
            Some(map) => match map.get(bucket as usize) {
                Some(&to) if to >= 0 => to,
                _ => return,
            },
            None => bucket,
        };
        out.push(dict.nwords + bucket);
    }

    /// Character n-grams of `<word>` (lengths minn..=maxn, counted in UTF-8 characters).
    fn compute_subwords(&self, word: &[u8], out: &mut Vec<i32>, ngram: &mut Vec<u8>) {
        let args = &self.file.args;
        let bucket = args.bucket.max(1) as u32;
        let (minn, maxn) = (args.minn.max(0) as usize, args.maxn.max(0) as usize);
        ngram.clear();
        ngram.push(b'<');
        ngram.extend_from_slice(word);
        ngram.push(b'>');
        let w = std::mem::take(ngram);
        let len = w.len();
        for i in 0..len {
            if w[i] & 0xC0 == 0x80 {
                continue;
            }
            let mut h: u32 = 2_166_136_261;
            let mut j = i;
            let mut n = 1;
            while j < len && n <= maxn {
                loop {
                    h ^= w[j] as i8 as i32 as u32;
                    h = h.wrapping_mul(16_777_619);
                    j += 1;
                    if j >= len || w[j] & 0xC0 != 0x80 {
                        break;
                    }
                }
                if n >= minn && !(n == 1 && (i == 0 || j == len)) {
                    self.push_bucket(out, (h % bucket) as i32);
                }
                n += 1;
            }
        }
        *ngram = w;
    }

    fn add_token(&self, token: &[u8], s: &mut Scratch) {
        let h = fasttext_hash(token);
        let wid = self.find(token, h);
        let is_label = if wid >= 0 {
            self.file.dict.entries[wid as usize].kind == EntryKind::Label
        } else {
            token.starts_with(LABEL_PREFIX.as_bytes())
        };
        if is_label {
            return;
        }
        if wid < 0 {
            if token != EOS.as_bytes() && self.file.args.maxn > 0 {
                let mut ngram = std::mem::take(&mut s.ngram);
                self.compute_subwords(token, &mut s.ids, &mut ngram);
                s.ngram = ngram;
            }
        } else if self.file.args.maxn <= 0 {
            s.ids.push(wid);
        } else {
            let (a, b) = (
                self.subword_offsets[wid as usize] as usize,
                self.subword_offsets[wid as usize + 1] as usize,
            );
            s.ids.extend_from_slice(&self.subword_ids[a..b]);
        }
        s.hashes.push(h as i32);
    }

    /// The input rows fastText averages for `text` (read as one line: newlines count as spaces, then `</s>`).
    pub fn input_ids(&self, text: &str, s: &mut Scratch) {
        s.ids.clear();
        s.hashes.clear();
        let bytes = text.as_bytes();
        let mut start = None;
        for (i, &b) in bytes.iter().enumerate() {
            if is_space(b) {
                if let Some(st) = start.take() {
                    self.add_token(&bytes[st..i], s);
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(st) = start {
            self.add_token(&bytes[st..], s);
        }
        self.add_token(EOS.as_bytes(), s);
        let n = self.file.args.word_ngrams.max(1) as usize;
        let bucket = self.file.args.bucket.max(1) as u64;
        if n > 1 {
            let hashes = std::mem::take(&mut s.hashes);
            for i in 0..hashes.len() {
                let mut h = hashes[i] as i64 as u64;
                for &next in hashes.iter().take((i + n).min(hashes.len())).skip(i + 1) {
                    h = h.wrapping_mul(116_049_371).wrapping_add(next as i64 as u64);
                    self.push_bucket(&mut s.ids, (h % bucket) as i32);
                }
            }
            s.hashes = hashes;
        }
    }

    fn compute_hidden(&self, s: &mut Scratch) {
        let dim = self.file.args.dim as usize;
        s.hidden.clear();
        s.hidden.resize(dim, 0.0);
        match &self.file.input {
            Matrix::Dense(m) => add_dense_rows(m, &s.ids, &mut s.hidden),
            Matrix::Quant(q) => {
                for &id in &s.ids {
                    add_quant_row(q, id as usize, &mut s.hidden);
                }
            }
        }
        let scale = (1.0f64 / s.ids.len() as f64) as f32;
        for v in &mut s.hidden {
            *v *= scale;
        }
    }

    #[inline]
    fn dot_output(&self, row: usize, hidden: &[f32]) -> f32 {
        match &self.file.output {
            Matrix::Dense(m) => dot(m.row(row), hidden),
            Matrix::Quant(q) => quant_dot(q, row, hidden),
        }
    }

    #[inline]
    fn sigmoid(&self, x: f32) -> f32 {
        if x < -MAX_SIGMOID {
            0.0
        } else if x > MAX_SIGMOID {
            1.0
        } else {
            let i = ((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE as f32 / MAX_SIGMOID / 2.0) as usize;
            self.sigmoid_table[i]
        }
    }

    /// Top-`k` labels for `text` with probability ≥ `threshold`, best first (fastText `predict`).
    pub fn predict(&self, text: &str, k: usize, threshold: f32) -> Vec<Prediction> {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        self.predict_into(text, k, threshold, &mut scratch, &mut out);
        out
    }

    /// [`Self::predict`] with caller-owned buffers (no allocation once warm).
    pub fn predict_into(&self, text: &str, k: usize, threshold: f32, s: &mut Scratch, out: &mut Vec<Prediction>) {
        out.clear();
        self.input_ids(text, s);
        if s.ids.is_empty() || k == 0 || self.num_labels() == 0 {
            return;
        }
        self.compute_hidden(s);
        let k = k.min(self.num_labels());
        s.heap.clear();
        let nlabels = self.num_labels();
        match self.file.args.loss {
            Loss::HierarchicalSoftmax => {
                let root = 2 * nlabels - 2;
                let mut heap = std::mem::take(&mut s.heap);
                self.dfs(k, std_log(threshold), root, 0.0, &mut heap, &s.hidden);
                s.heap = heap;
            }
            loss => {
                s.output.clear();
                for i in 0..nlabels {
                    s.output.push(self.dot_output(i, &s.hidden));
                }
                if loss == Loss::Softmax {
                    softmax(&mut s.output);
                } else {
                    for i in 0..nlabels {
                        s.output[i] = self.sigmoid(s.output[i]);
                    }
                }
                for (i, &p) in s.output.iter().enumerate() {
                    if p < threshold {
                        continue;
                    }
                    push_top_k(&mut s.heap, k, (std_log(p), i));
                }
            }
        }
        s.heap.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(s.heap.iter().map(|&(score, label)| Prediction {
            label,
            prob: score.exp(),
        }));
    }

    fn dfs(&self, k: usize, log_threshold: f32, node: usize, score: f32, heap: &mut Vec<(f32, usize)>, hidden: &[f32]) {
        if score < log_threshold {
            return;
        }
        if heap.len() == k && score < heap_min(heap) {
            return;
        }
        let nlabels = self.num_labels();
        let Node { left, right } = self.tree[node];
        if left == -1 && right == -1 {
            push_top_k(heap, k, (score, node));
            return;
        }
        let f = self.dot_output(node - nlabels, hidden);
        let f = (1.0 / (1.0 + ((-f).exp() as f64))) as f32;
        self.dfs(
            k,
            log_threshold,
            left as usize,
            score + std_log((1.0 - f as f64) as f32),
            heap,
            hidden,
        );
        self.dfs(k, log_threshold, right as usize, score + std_log(f), heap, hidden);
    }
}

/// fastText's `std_log`: `log(x + 1e-5)` computed in double, returned as float.
#[inline]
fn std_log(x: f32) -> f32 {
    (x as f64 + 1e-5).ln() as f32
}

fn heap_min(heap: &[(f32, usize)]) -> f32 {
    heap.iter().map(|e| e.0).fold(f32::INFINITY, f32::min)
}

/// Keeps the `k` highest scores (k is small; a linear scan beats a heap).
#[inline]
fn push_top_k(heap: &mut Vec<(f32, usize)>, k: usize, item: (f32, usize)) {
    if heap.len() < k {
        heap.push(item);
        return;
    }
    let (min_i, min) = heap
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map(|(i, e)| (i, e.0))
        .unwrap();
    if item.0 > min {
        heap[min_i] = item;
    }
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(v[0], f32::max);
    let mut z = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        z += *x;
    }
    for x in v.iter_mut() {
        *x /= z;
    }
}

/// Huffman tree over label counts, built exactly as fastText does (labels are sorted by count, descending).
fn build_tree(counts: &[i64]) -> Vec<Node> {
    let osz = counts.len();
    if osz == 0 {
        return Vec::new();
    }
    let mut tree = vec![Node { left: -1, right: -1 }; 2 * osz - 1];
    let mut count = vec![1_000_000_000_000_000i64; 2 * osz - 1];
    count[..osz].copy_from_slice(counts);
    let mut leaf = osz as i64 - 1;
    let mut node = osz;
    for i in osz..2 * osz - 1 {
        let mut mini = [0usize; 2];
        for slot in &mut mini {
            if leaf >= 0 && count[leaf as usize] < count[node] {
                *slot = leaf as usize;
                leaf -= 1;
            } else {
                *slot = node;
                node += 1;
            }
        }
        tree[i] = Node {
            left: mini[0] as i32,
            right: mini[1] as i32,
        };
        count[i] = count[mini[0]] + count[mini[1]];
    }
    tree
}

/// Sums dense rows into `acc`, prefetching a few rows ahead: rows are scattered over a large matrix, so the
/// first cache miss of each row, not the additions, is what costs.
fn add_dense_rows(m: &DenseMatrix, ids: &[i32], acc: &mut [f32]) {
    const AHEAD: usize = 8;
    for (k, &id) in ids.iter().enumerate() {
        #[cfg(target_arch = "x86_64")]
        if let Some(&next) = ids.get(k + AHEAD) {
            let row = m.row(next as usize);
            for line in (0..row.len()).step_by(16) {
                // SAFETY: prefetch is a hint; the pointer is inside the row slice.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(row.as_ptr().add(line) as *const i8, std::arch::x86_64::_MM_HINT_T0)
                };
            }
        }
        let _ = k;
        for (a, &r) in acc.iter_mut().zip(m.row(id as usize)) {
            *a += r;
        }
    }
}

#[inline]
fn add_quant_row(q: &QuantMatrix, row: usize, acc: &mut [f32]) {
    let norm = if q.qnorm {
        q.npq.centroid(0, q.norm_codes[row])[0]
    } else {
        1.0
    };
    let nsubq = q.pq.nsubq;
    let codes = &q.codes[row * nsubq..(row + 1) * nsubq];
    let dsub = q.pq.dsub;
    for (m, &code) in codes.iter().enumerate() {
        let c = q.pq.centroid(m, code);
        for (a, &v) in acc[m * dsub..m * dsub + c.len()].iter_mut().zip(c) {
            *a += norm * v;
        }
    }
}

fn quant_dot(q: &QuantMatrix, row: usize, x: &[f32]) -> f32 {
    let norm = if q.qnorm {
        q.npq.centroid(0, q.norm_codes[row])[0]
    } else {
        1.0
    };
    let nsubq = q.pq.nsubq;
    let dsub = q.pq.dsub;
    let mut res = 0.0f32;
    for (m, &code) in q.codes[row * nsubq..(row + 1) * nsubq].iter().enumerate() {
        for (n, &v) in q.pq.centroid(m, code).iter().enumerate() {
            res += x[m * dsub + n] * v;
        }
    }
    res * norm
}

/// Sequential dot product, as fastText's `dotRow` (keeps results bit-identical for small dims).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut d = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        d += x * y;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_fasttext_for_ascii_and_utf8() {
        // Reference values: fastText's Dictionary::hash (signed char) on "</s>" and "é".
        assert_eq!(fasttext_hash(b""), 2_166_136_261);
        let e = "é".as_bytes();
        let mut h: u32 = 2_166_136_261;
        for &b in e {
            h ^= (b as i8) as u32;
            h = h.wrapping_mul(16_777_619);
        }
        assert_eq!(fasttext_hash(e), h);
        assert_ne!(fasttext_hash(e), {
            let mut u: u32 = 2_166_136_261;
            for &b in e {
                u ^= b as u32;
                u = u.wrapping_mul(16_777_619);
            }
            u
        });
    }

    #[test]
    fn huffman_tree_pairs_rarest_first() {
        let tree = build_tree(&[5, 3, 1]);
        // Node 3 joins the two rarest labels (2, then 1); node 4 joins node 3 (count 4) with label 0 (count 5).
        assert_eq!((tree[3].left, tree[3].right), (2, 1));
        assert_eq!((tree[4].left, tree[4].right), (3, 0));
    }
}
