//! Mining a math corpus from the web, as DeepSeekMath §2.1 did.
//!
//! Data flows through one [`document::Document`] model: readers (WARC/WET/JSONL/Parquet) produce documents,
//! extraction fills their text, language identification and the fastText-style classifier score them, and the
//! later stages (ranking, dedup, decontamination, domain discovery) select among them.

pub mod classifier;
pub mod decontam;
pub mod dedup;
pub mod document;
pub mod domains;
pub mod extract;
pub mod huge;
pub mod langid;
pub mod pipeline;
pub mod rank;
pub mod readers;
