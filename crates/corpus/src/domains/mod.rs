//! Domain discovery: the part of DeepSeekMath's loop that finds math sites the classifier only partly recalled.
//!
//! After an iteration, pages are grouped by domain; a domain where more than 10% of the crawled pages were
//! collected is considered math-related. Its URL path prefixes (e.g. `mathoverflow.net/questions`) are exported with
//! counts and sample URLs for a human to label; pages under prefixes labelled math that the classifier *missed*
//! become positive seeds for the next iteration's classifier.

pub mod annotate;
pub mod stats;

pub use annotate::{export_prefixes, import_annotations, seeds_under_prefixes, AnnotatedPrefix, PrefixRow};
pub use stats::{domain_stats, math_domains, path_prefix_stats, DomainConfig, DomainStat, PageRef};
