//! Extraction must accept any string (malformed tags, entities, deep nesting, formulas) without panicking, and
//! never invent text: every output word must come from the input or from LaTeX/markup conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seekmath_corpus::extract::{extract, ExtractOptions};

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    for remove_boilerplate in [true, false] {
        let options = ExtractOptions {
            remove_boilerplate,
            include_title: true,
            ..Default::default()
        };
        let out = extract(&html, &options);
        assert!(out.text.len() <= html.len() * 8 + 64, "output grew unboundedly");
    }
});
