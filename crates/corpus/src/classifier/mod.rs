//! The fastText-compatible supervised text classifier that decides which pages are mathematical.
//!
//! DeepSeekMath trained fastText (dim 256, lr 0.1, word n-grams 3, min count 3, 3 epochs) on OpenWebMath
//! positives vs Common Crawl negatives and used its positive-class probability to rank 40B pages. We keep the
//! model *file-compatible* with fastText (`.bin`, and `.ftz` product-quantized) so users can bring their own
//! models and take ours back, and *prediction-compatible* (same tokenization, hashing and arithmetic; see
//! [`model`]). Training and quantization use the pure-Rust `fasttext` crate (evaluated in `docs/corpus.md`);
//! prediction, the hot path of mining, is our own.

pub mod format;
pub mod model;

use anyhow::{Context, Result};
use format::ModelFile;
pub use model::{FastTextModel, Prediction, Scratch, LABEL_PREFIX};
use std::cell::RefCell;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Training hyper-parameters; defaults are the paper's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Embedding dimension (paper: 256).
    pub dim: i32,
    /// Initial learning rate, decayed linearly to 0 (paper: 0.1).
    pub lr: f64,
    /// Longest word n-gram (paper: 3).
    pub word_ngrams: i32,
    /// Words rarer than this are dropped from the vocabulary (paper: 3).
    pub min_count: i32,
    /// Passes over the data (paper: 3).
    pub epoch: i32,
    /// Hashing buckets for n-grams (fastText default 2,000,000).
    pub bucket: i32,
    /// `softmax`, `ns` (negative sampling), `hs` or `ova`.
    pub loss: String,
    /// Negatives per positive for `ns`.
    pub neg: i32,
    /// Training threads (Hogwild SGD; more than one is not deterministic, as in fastText).
    pub threads: i32,
    /// Random seed for initialisation and sampling.
    pub seed: i32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            dim: 256,
            lr: 0.1,
            word_ngrams: 3,
            min_count: 3,
            epoch: 3,
            bucket: 2_000_000,
            loss: "softmax".into(),
            neg: 5,
            threads: 1,
            seed: 0,
        }
    }
}

impl TrainConfig {
    fn to_fasttext_args(&self, input: &Path) -> Result<fasttext::args::Args> {
        use fasttext::args::{Args, LossName, ModelName};
        let mut args = Args::default();
        args.input = input.to_path_buf();
        args.model = ModelName::Supervised;
        args.loss = match self.loss.as_str() {
            "softmax" => LossName::Softmax,
            "ns" => LossName::NegativeSampling,
            "hs" => LossName::HierarchicalSoftmax,
            "ova" | "one-vs-all" => LossName::OneVsAll,
            other => anyhow::bail!("unknown loss `{other}` (softmax, ns, hs, ova)"),
        };
        args.dim = self.dim;
        args.lr = self.lr;
        args.word_ngrams = self.word_ngrams;
        args.min_count = self.min_count;
        args.min_count_label = 1;
        args.epoch = self.epoch;
        args.neg = self.neg;
        args.minn = 0;
        args.maxn = 0;
        args.bucket = if self.word_ngrams <= 1 { 0 } else { self.bucket };
        args.thread = self.threads.max(1);
        args.seed = self.seed;
        args.verbose = 0;
        Ok(args)
    }
}

/// Product-quantization settings for saving a compact `.ftz` model (fastText `quantize`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeConfig {
    /// Keep only this many input rows (words + n-grams) by norm; 0 keeps all.
    pub cutoff: usize,
    /// Sub-vector width of the product quantizer.
    pub dsub: usize,
    /// Quantize row norms separately.
    pub qnorm: bool,
    /// Quantize the output matrix too.
    pub qout: bool,
}

impl Default for QuantizeConfig {
    fn default() -> Self {
        QuantizeConfig {
            cutoff: 0,
            dsub: 2,
            qnorm: true,
            qout: false,
        }
    }
}

/// One line of fastText supervised input: `__label__<label> <text>`, with newlines flattened.
pub fn fasttext_line(label: &str, text: &str) -> String {
    let label = label.strip_prefix(LABEL_PREFIX).unwrap_or(label);
    let mut line = String::with_capacity(text.len() + label.len() + 12);
    line.push_str(LABEL_PREFIX);
    line.push_str(label);
    line.push(' ');
    for c in text.chars() {
        line.push(if matches!(c, '\n' | '\r') { ' ' } else { c });
    }
    line
}

/// A supervised fastText classifier.
#[derive(Debug, Clone)]
pub struct Classifier {
    model: FastTextModel,
}

thread_local! {
    static SCRATCH: RefCell<(Scratch, Vec<Prediction>)> = RefCell::new(Default::default());
}

impl Classifier {
    /// Wraps a loaded model file.
    pub fn from_file(file: ModelFile) -> Classifier {
        Classifier {
            model: FastTextModel::new(file),
        }
    }

    /// Loads a fastText `.bin` or `.ftz` model.
    pub fn load(path: impl AsRef<Path>) -> Result<Classifier> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).with_context(|| format!("cannot open model {}", path.display()))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let model =
            ModelFile::read(&mut reader).with_context(|| format!("reading fastText model {}", path.display()))?;
        Ok(Classifier::from_file(model))
    }

    /// Saves in fastText's format (`.bin`, or `.ftz` if the model is quantized).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        self.model
            .file()
            .write(&mut w)
            .and_then(|_| w.flush())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Trains on `(label, text)` pairs (labels with or without `__label__`).
    pub fn train(samples: &[(String, String)], config: &TrainConfig) -> Result<Classifier> {
        let dir = tempfile::tempdir().context("creating a temporary training directory")?;
        let path = dir.path().join("train.txt");
        let mut w = BufWriter::new(std::fs::File::create(&path)?);
        for (label, text) in samples {
            writeln!(w, "{}", fasttext_line(label, text))?;
        }
        w.flush()?;
        drop(w);
        Classifier::train_file(&path, config)
    }

    /// Trains on a file in fastText's supervised format (`__label__x text` per line).
    pub fn train_file(path: impl AsRef<Path>, config: &TrainConfig) -> Result<Classifier> {
        let path = path.as_ref();
        let args = config.to_fasttext_args(path)?;
        tracing::info!(?config, input = %path.display(), "training fastText classifier");
        let trained =
            fasttext::FastText::train(args).map_err(|e| anyhow::anyhow!("training on {}: {e}", path.display()))?;
        Classifier::from_fasttext(&trained)
    }

    /// Converts a crate model through a temporary file (not a buffer: a paper-sized model is ~2 GB).
    fn from_fasttext(model: &fasttext::FastText) -> Result<Classifier> {
        let file = tempfile::NamedTempFile::new().context("creating a temporary model file")?;
        model
            .save_model(file.path())
            .map_err(|e| anyhow::anyhow!("serialising trained model: {e}"))?;
        Classifier::load(file.path())
    }

    /// A product-quantized copy of this model (fastText `quantize`), saved as `.ftz`.
    pub fn quantize(&self, config: &QuantizeConfig) -> Result<Classifier> {
        let file = tempfile::NamedTempFile::new().context("creating a temporary model file")?;
        self.save(file.path())?;
        let mut ft = fasttext::FastText::load_model(file.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let qargs = fasttext::args::Args {
            cutoff: config.cutoff,
            dsub: config.dsub,
            qnorm: config.qnorm,
            qout: config.qout,
            retrain: false,
            verbose: 0,
            ..Default::default()
        };
        ft.quantize(&qargs).map_err(|e| anyhow::anyhow!("quantizing: {e}"))?;
        Classifier::from_fasttext(&ft)
    }

    /// The prediction engine.
    pub fn model(&self) -> &FastTextModel {
        &self.model
    }

    /// Label names with the `__label__` prefix, in model order.
    pub fn labels(&self) -> Vec<String> {
        (0..self.model.num_labels())
            .map(|i| self.model.label(i).to_string())
            .collect()
    }

    /// Top-`k` `(label, probability)` pairs, best first, as fastText's `predict` (labels keep `__label__`).
    /// Newlines in `text` are treated as spaces: the whole text is one example.
    pub fn predict(&self, text: &str, k: usize) -> Vec<(String, f32)> {
        self.predict_threshold(text, k, 0.0)
    }

    /// [`Self::predict`] keeping only probabilities ≥ `threshold`.
    pub fn predict_threshold(&self, text: &str, k: usize, threshold: f32) -> Vec<(String, f32)> {
        SCRATCH.with(|cell| {
            let (scratch, out) = &mut *cell.borrow_mut();
            self.model.predict_into(text, k, threshold, scratch, out);
            out.iter()
                .map(|p| (self.model.label(p.label).to_string(), p.prob))
                .collect()
        })
    }

    /// Probability of one label (name with or without `__label__`); 0 for an unknown label or one that
    /// hierarchical softmax pruned below 1e-5.
    pub fn probability(&self, text: &str, label: &str) -> f32 {
        let Some(index) = self.model.label_index(label) else {
            return 0.0;
        };
        SCRATCH.with(|cell| {
            let (scratch, out) = &mut *cell.borrow_mut();
            self.model
                .predict_into(text, self.model.num_labels(), 0.0, scratch, out);
            out.iter().find(|p| p.label == index).map_or(0.0, |p| p.prob)
        })
    }
}

/// Reads `(label, text)` pairs from a fastText-format file (lines starting with `__label__`), for training
/// inputs given that way. Lines without a label are reported as errors naming the line.
pub fn read_fasttext_lines(path: &Path) -> Result<Vec<(String, String)>> {
    use std::io::BufRead;
    let reader =
        crate::readers::compress::open_decompressed(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        let mut labels = Vec::new();
        let mut rest = line.as_str();
        while let Some(stripped) = rest.trim_start().strip_prefix(LABEL_PREFIX) {
            let end = stripped.find(char::is_whitespace).unwrap_or(stripped.len());
            labels.push(stripped[..end].to_string());
            rest = &stripped[end..];
        }
        anyhow::ensure!(
            !labels.is_empty() || line.trim().is_empty(),
            "{}: line {}: no __label__",
            path.display(),
            i + 1
        );
        for label in labels {
            out.push((label, rest.trim().to_string()));
        }
    }
    Ok(out)
}

/// Where a trained model is written by default.
pub fn default_model_path(dir: &Path) -> PathBuf {
    dir.join("classifier.bin")
}
