//! `corpus mine` without the CLI (and without building libtorch):
//! `cargo run --release -p seekmath-corpus --example mine -- CONFIG.toml [--resume] [--tokenizer T.json] [--lid lid.176.ftz]`.
//! Uses the same components as `seekmath corpus mine`, so it writes the same bytes.

use anyhow::{bail, Result};
use seekmath_corpus::pipeline::{adapters, run_mine, Components, LanguageIdentifier, MineConfig, WordCounter};
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut resume, mut tokenizer, mut lid, mut sets) = (None, false, None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--resume" => resume = true,
            "--tokenizer" => tokenizer = args.next().map(PathBuf::from),
            "--lid" => lid = args.next().map(PathBuf::from),
            "--set" => sets.extend(args.next()),
            _ if config.is_none() => config = Some(PathBuf::from(a)),
            other => bail!("unexpected argument {other}"),
        }
    }
    let Some(config) = config else {
        bail!("usage: mine CONFIG.toml [--resume] [--tokenizer T] [--lid M] [--set k=v]")
    };
    let config = MineConfig::load(&config, &sets)?;
    let counter = tokenizer
        .map(seekmath_corpus::rank::TokenCounter::from_file)
        .transpose()?;
    let lid = lid.map(seekmath_corpus::langid::LanguageIdentifier::load).transpose()?;
    let extractor = adapters::HtmlExtractor::default();
    let components = Components {
        extractor: Some(&extractor),
        language: lid.as_ref().map(|l| l as &dyn LanguageIdentifier),
        tokens: match &counter {
            Some(c) => c,
            None => &WordCounter,
        },
        token_unit: if counter.is_some() { "tokens" } else { "words" },
        trainer: &adapters::FastTextTrainer,
    };
    let outcome = run_mine(&config, &components, resume)?;
    println!("report: {}", outcome.report.display());
    Ok(())
}
