//! The fastText binary model format (`.bin` dense, `.ftz` product-quantized), version 12, read and written
//! byte-compatibly so that models move freely between fastText and seekmath.
//!
//! Layout: magic, version, [`ModelArgs`], [`Dictionary`], `quant_input` flag, input matrix, `qout` flag, output
//! matrix. Matrices are either dense (`m`, `n`, row-major f32) or quantized ([`QuantMatrix`]).

use crate::huge::HugeBuf;
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::io::{Read, Write};

/// fastText's file magic number.
pub const MAGIC: i32 = 793_712_314;
/// The format version written (fastText 0.9.x).
pub const VERSION: i32 = 12;
/// End-of-sentence token fastText appends at each newline.
pub const EOS: &str = "</s>";
/// Sub-quantizer codebook size (8-bit codes).
pub const KSUB: usize = 256;

/// Loss functions, numbered as in fastText.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Hierarchical softmax over a Huffman tree of labels.
    HierarchicalSoftmax = 1,
    /// Negative sampling (binary logistic per label at prediction time).
    NegativeSampling = 2,
    /// Full softmax.
    Softmax = 3,
    /// One-vs-all binary logistic.
    OneVsAll = 4,
}

impl Loss {
    fn from_i32(v: i32) -> Result<Loss> {
        Ok(match v {
            1 => Loss::HierarchicalSoftmax,
            2 => Loss::NegativeSampling,
            3 => Loss::Softmax,
            4 => Loss::OneVsAll,
            _ => bail!("unknown loss id {v}"),
        })
    }

    /// fastText's name for the loss (`hs`, `ns`, `softmax`, `ova`).
    pub fn name(self) -> &'static str {
        match self {
            Loss::HierarchicalSoftmax => "hs",
            Loss::NegativeSampling => "ns",
            Loss::Softmax => "softmax",
            Loss::OneVsAll => "ova",
        }
    }
}

/// The hyper-parameters stored in a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArgs {
    /// Embedding dimension.
    pub dim: i32,
    /// Context window (unsupervised only).
    pub ws: i32,
    /// Training epochs.
    pub epoch: i32,
    /// Minimum word count.
    pub min_count: i32,
    /// Negatives sampled per positive.
    pub neg: i32,
    /// Maximum word n-gram length.
    pub word_ngrams: i32,
    /// Loss function.
    pub loss: Loss,
    /// Model kind: 1 cbow, 2 skipgram, 3 supervised.
    pub model: i32,
    /// Hashing buckets for n-grams.
    pub bucket: i32,
    /// Minimum character n-gram length.
    pub minn: i32,
    /// Maximum character n-gram length (0: none).
    pub maxn: i32,
    /// Learning-rate update period in tokens.
    pub lr_update_rate: i32,
    /// Sampling threshold.
    pub t: f64,
}

/// Whether a dictionary entry is a word or a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An input token.
    Word = 0,
    /// A `__label__` class.
    Label = 1,
}

/// A dictionary entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Token text.
    pub word: String,
    /// Occurrences in the training data.
    pub count: i64,
    /// Word or label.
    pub kind: EntryKind,
}

/// The vocabulary: words first, then labels, plus the n-gram pruning map of quantized models.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Words (ids `0..nwords`) then labels.
    pub entries: Vec<Entry>,
    /// Number of words.
    pub nwords: i32,
    /// Number of labels.
    pub nlabels: i32,
    /// Tokens seen in training.
    pub ntokens: i64,
    /// -1 when unpruned; else the number of kept n-gram buckets.
    pub pruneidx_size: i64,
    /// Kept bucket → new row offset (pruned `.ftz` models).
    pub pruneidx: HashMap<i32, i32>,
}

/// A dense row-major matrix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DenseMatrix {
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// `m * n` values, on huge pages (rows are read at random; see [`crate::huge`]).
    pub data: HugeBuf<f32>,
}

impl DenseMatrix {
    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n..(i + 1) * self.n]
    }
}

/// A product quantizer: `nsubq` codebooks of 256 centroids over consecutive `dsub`-wide slices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductQuantizer {
    /// Vector dimension.
    pub dim: usize,
    /// Number of sub-quantizers.
    pub nsubq: usize,
    /// Slice width.
    pub dsub: usize,
    /// Width of the last slice.
    pub lastdsub: usize,
    /// `dim * 256` centroid values.
    pub centroids: Vec<f32>,
}

impl ProductQuantizer {
    /// Centroid `code` of sub-quantizer `m`.
    #[inline]
    pub fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let code = code as usize;
        if m == self.nsubq - 1 {
            let start = m * KSUB * self.dsub + code * self.lastdsub;
            &self.centroids[start..start + self.lastdsub]
        } else {
            let start = (m * KSUB + code) * self.dsub;
            &self.centroids[start..start + self.dsub]
        }
    }
}

/// A product-quantized matrix (fastText `QuantMatrix`), optionally with quantized row norms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantMatrix {
    /// Whether rows were normalised and their norms quantized separately.
    pub qnorm: bool,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// `m * nsubq` codes.
    pub codes: Vec<u8>,
    /// Codebooks for the row directions.
    pub pq: ProductQuantizer,
    /// One code per row for its norm (when `qnorm`).
    pub norm_codes: Vec<u8>,
    /// One-dimensional quantizer of norms (when `qnorm`).
    pub npq: ProductQuantizer,
}

/// Either kind of matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Plain f32 rows.
    Dense(DenseMatrix),
    /// Product-quantized rows.
    Quant(QuantMatrix),
}

impl Matrix {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.m,
            Matrix::Quant(q) => q.m,
        }
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.n,
            Matrix::Quant(q) => q.n,
        }
    }
}

/// A whole fastText model as stored on disk.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Hyper-parameters.
    pub args: ModelArgs,
    /// Vocabulary.
    pub dict: Dictionary,
    /// Input embeddings (words, then n-gram buckets).
    pub input: Matrix,
    /// Output layer (labels, or internal tree nodes for hs).
    pub output: Matrix,
}

struct In<'a, R: Read>(&'a mut R);

impl<R: Read> In<'_, R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.0.read_exact(&mut b).context("unexpected end of model file")?;
        Ok(b)
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.bytes()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.bytes()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.bytes()?))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }
    fn size(&mut self, what: &str, max: u64) -> Result<usize> {
        let v = self.i64()?;
        ensure!(v >= 0 && (v as u64) <= max, "{what} {v} out of range");
        Ok(v as usize)
    }
    fn f32s(&mut self, count: usize) -> Result<Vec<f32>> {
        let mut raw = vec![0u8; count * 4];
        self.0
            .read_exact(&mut raw)
            .context("unexpected end of model file in matrix data")?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    /// Like [`Self::f32s`], straight into a huge-page buffer (the input matrix can be gigabytes).
    fn f32s_huge(&mut self, count: usize) -> Result<HugeBuf<f32>> {
        let mut buf = HugeBuf::<f32>::zeroed(count).context("mapping memory for a matrix")?;
        // SAFETY: any byte pattern is a valid f32; the byte view covers exactly the buffer's elements.
        let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), count * 4) };
        self.0
            .read_exact(bytes)
            .context("unexpected end of model file in matrix data")?;
        #[cfg(target_endian = "big")]
        for v in buf.iter_mut() {
            *v = f32::from_bits(u32::from_le(v.to_bits()));
        }
        Ok(buf)
    }
    fn u8s(&mut self, count: usize) -> Result<Vec<u8>> {
        let mut raw = vec![0u8; count];
        self.0
            .read_exact(&mut raw)
            .context("unexpected end of model file in codes")?;
        Ok(raw)
    }
}

const MAX_ELEMENTS: u64 = 1 << 34;

impl ModelArgs {
    fn read<R: Read>(r: &mut In<R>) -> Result<ModelArgs> {
        Ok(ModelArgs {
            dim: r.i32()?,
            ws: r.i32()?,
            epoch: r.i32()?,
            min_count: r.i32()?,
            neg: r.i32()?,
            word_ngrams: r.i32()?,
            loss: Loss::from_i32(r.i32()?)?,
            model: r.i32()?,
            bucket: r.i32()?,
            minn: r.i32()?,
            maxn: r.i32()?,
            lr_update_rate: r.i32()?,
            t: r.f64()?,
        })
    }

    fn write<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        for v in [
            self.dim,
            self.ws,
            self.epoch,
            self.min_count,
            self.neg,
            self.word_ngrams,
            self.loss as i32,
            self.model,
            self.bucket,
            self.minn,
            self.maxn,
            self.lr_update_rate,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        w.write_all(&self.t.to_le_bytes())
    }
}

impl Dictionary {
    fn read<R: Read>(r: &mut In<R>) -> Result<Dictionary> {
        let size = r.i32()?;
        let nwords = r.i32()?;
        let nlabels = r.i32()?;
        ensure!(
            size >= 0 && nwords >= 0 && nlabels >= 0 && nwords + nlabels == size,
            "inconsistent dictionary sizes"
        );
        let ntokens = r.i64()?;
        let pruneidx_size = r.i64()?;
        let mut entries = Vec::with_capacity(size as usize);
        let mut word = Vec::new();
        for _ in 0..size {
            word.clear();
            loop {
                let b = r.u8()?;
                if b == 0 {
                    break;
                }
                word.push(b);
            }
            let count = r.i64()?;
            let kind = match r.u8()? {
                0 => EntryKind::Word,
                1 => EntryKind::Label,
                k => bail!("bad entry type {k}"),
            };
            // fastText stores raw bytes; invalid UTF-8 cannot match any input token, so lossy is harmless.
            entries.push(Entry {
                word: String::from_utf8_lossy(&word).into_owned(),
                count,
                kind,
            });
        }
        let mut pruneidx = HashMap::new();
        for _ in 0..pruneidx_size.max(0) {
            let first = r.i32()?;
            let second = r.i32()?;
            pruneidx.insert(first, second);
        }
        Ok(Dictionary {
            entries,
            nwords,
            nlabels,
            ntokens,
            pruneidx_size,
            pruneidx,
        })
    }

    fn write<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&(self.entries.len() as i32).to_le_bytes())?;
        w.write_all(&self.nwords.to_le_bytes())?;
        w.write_all(&self.nlabels.to_le_bytes())?;
        w.write_all(&self.ntokens.to_le_bytes())?;
        w.write_all(&self.pruneidx_size.to_le_bytes())?;
        for e in &self.entries {
            w.write_all(e.word.as_bytes())?;
            w.write_all(&[0])?;
            w.write_all(&e.count.to_le_bytes())?;
            w.write_all(&[e.kind as u8])?;
        }
        let mut pairs: Vec<_> = self.pruneidx.iter().collect();
        pairs.sort();
        for (a, b) in pairs {
            w.write_all(&a.to_le_bytes())?;
            w.write_all(&b.to_le_bytes())?;
        }
        Ok(())
    }

    /// Label `i` (0-based among labels).
    pub fn label(&self, i: usize) -> &str {
        &self.entries[self.nwords as usize + i].word
    }

    /// Training counts of the labels, in label order.
    pub fn label_counts(&self) -> Vec<i64> {
        self.entries[self.nwords as usize..].iter().map(|e| e.count).collect()
    }
}

impl ProductQuantizer {
    fn read<R: Read>(r: &mut In<R>) -> Result<ProductQuantizer> {
        let dim = r.i32()?;
        let nsubq = r.i32()?;
        let dsub = r.i32()?;
        let lastdsub = r.i32()?;
        ensure!(
            dim > 0 && nsubq > 0 && dsub > 0 && lastdsub > 0 && dim <= 1 << 16,
            "bad product quantizer shape"
        );
        ensure!(
            (nsubq - 1) * dsub + lastdsub == dim,
            "product quantizer slices do not cover the dimension"
        );
        let centroids = r.f32s(dim as usize * KSUB)?;
        Ok(ProductQuantizer {
            dim: dim as usize,
            nsubq: nsubq as usize,
            dsub: dsub as usize,
            lastdsub: lastdsub as usize,
            centroids,
        })
    }

    fn write<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        for v in [self.dim, self.nsubq, self.dsub, self.lastdsub] {
            w.write_all(&(v as i32).to_le_bytes())?;
        }
        write_f32s(w, &self.centroids)
    }
}

fn write_f32s<W: Write>(w: &mut W, values: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(values.len().min(1 << 20) * 4);
    for chunk in values.chunks(1 << 20) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

impl Matrix {
    fn read<R: Read>(r: &mut In<R>, quant: bool) -> Result<Matrix> {
        if !quant {
            let m = r.size("rows", MAX_ELEMENTS)?;
            let n = r.size("cols", 1 << 16)?;
            ensure!((m as u64) * (n as u64) <= MAX_ELEMENTS, "matrix too large");
            let data = r.f32s_huge(m * n)?;
            return Ok(Matrix::Dense(DenseMatrix { m, n, data }));
        }
        let qnorm = r.bool()?;
        let m = r.size("rows", MAX_ELEMENTS)?;
        let n = r.size("cols", 1 << 16)?;
        let codesize = r.i32()?;
        ensure!(codesize >= 0, "negative code size");
        let codes = r.u8s(codesize as usize)?;
        let pq = ProductQuantizer::read(r)?;
        ensure!(
            pq.dim == n && codes.len() == m * pq.nsubq,
            "quantized matrix shape mismatch"
        );
        let (norm_codes, npq) = if qnorm {
            (r.u8s(m)?, ProductQuantizer::read(r)?)
        } else {
            (Vec::new(), ProductQuantizer::default())
        };
        Ok(Matrix::Quant(QuantMatrix {
            qnorm,
            m,
            n,
            codes,
            pq,
            norm_codes,
            npq,
        }))
    }

    fn write<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        match self {
            Matrix::Dense(d) => {
                w.write_all(&(d.m as i64).to_le_bytes())?;
                w.write_all(&(d.n as i64).to_le_bytes())?;
                write_f32s(w, &d.data)
            }
            Matrix::Quant(q) => {
                w.write_all(&[q.qnorm as u8])?;
                w.write_all(&(q.m as i64).to_le_bytes())?;
                w.write_all(&(q.n as i64).to_le_bytes())?;
                w.write_all(&(q.codes.len() as i32).to_le_bytes())?;
                w.write_all(&q.codes)?;
                q.pq.write(w)?;
                if q.qnorm {
                    w.write_all(&q.norm_codes)?;
                    q.npq.write(w)?;
                }
                Ok(())
            }
        }
    }
}

impl ModelFile {
    /// Reads a `.bin` or `.ftz` model.
    pub fn read<R: Read>(reader: &mut R) -> Result<ModelFile> {
        let mut r = In(reader);
        let magic = r.i32()?;
        ensure!(magic == MAGIC, "not a fastText model (magic {magic})");
        let version = r.i32()?;
        ensure!(
            version == 11 || version == 12,
            "unsupported fastText model version {version}"
        );
        let mut args = ModelArgs::read(&mut r)?;
        if version == 11 && args.model == 3 {
            // Version 11 supervised models had no character n-grams.
            args.maxn = 0;
        }
        let dict = Dictionary::read(&mut r).context("reading dictionary")?;
        let quant_input = r.bool()?;
        let input = Matrix::read(&mut r, quant_input).context("reading input matrix")?;
        ensure!(
            quant_input || dict.pruneidx_size < 0,
            "pruned dictionary requires a quantized input matrix"
        );
        let qout = r.bool()?;
        let output = Matrix::read(&mut r, quant_input && qout).context("reading output matrix")?;
        ensure!(
            input.cols() == args.dim as usize && output.cols() == args.dim as usize,
            "matrix width differs from dim"
        );
        ensure!(
            input.rows() >= dict.nwords as usize,
            "input matrix has fewer rows than words"
        );
        Ok(ModelFile {
            args,
            dict,
            input,
            output,
        })
    }

    /// Writes the model in fastText's format.
    pub fn write<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(&MAGIC.to_le_bytes())?;
        w.write_all(&VERSION.to_le_bytes())?;
        self.args.write(w)?;
        self.dict.write(w)?;
        let quant_input = matches!(self.input, Matrix::Quant(_));
        w.write_all(&[quant_input as u8])?;
        self.input.write(w)?;
        let qout = matches!(self.output, Matrix::Quant(_));
        w.write_all(&[qout as u8])?;
        self.output.write(w)
    }
}
