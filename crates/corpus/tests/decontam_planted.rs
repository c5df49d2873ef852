//! Decontamination against the real benchmark files: planted copies are removed, formula-sharing pages are not.

mod common;

use seekmath_corpus::decontam::{build_index, clean_text, load_benchmark, DecontamConfig};

#[test]
fn planted_benchmark_questions_are_removed_and_formula_pages_kept() {
    let Some(data) = common::shared_data() else { return };
    let gsm = data.join("benchmarks/gsm8k/test.jsonl");
    let math = data.join("benchmarks/math/test.jsonl");
    let index = build_index(
        &[gsm.clone(), math.clone(), data.join("decontam")],
        DecontamConfig::default(),
    )
    .unwrap();
    let gsm_items = load_benchmark(&gsm).unwrap().items;
    let math_items = load_benchmark(&math).unwrap().items;
    let filler = "Welcome to our homework forum.\nPlease read the rules before posting.\n";
    let closing = "\nReply to this thread if you have questions.\n";
    let (mut checked, mut notation_only) = (0, 0);
    for (n, item) in gsm_items
        .iter()
        .step_by(40)
        .chain(math_items.iter().step_by(150))
        .enumerate()
    {
        let q = &item.questions[0];
        let words: Vec<&str> = q.split_whitespace().collect();
        // Asymptote diagram code is notation, which the formula guard deliberately leaves alone.
        if words.len() < 12 || q.contains("[asy]") {
            continue;
        }
        // Questions that are all notation (e.g. `If $\cos x + \cos 2x = 3$, find ...`) are left to the guard.
        if !index.has_anchor_ngram(q) {
            notation_only += 1;
            continue;
        }
        // Verbatim, re-wrapped every 7 words, and with changed case/whitespace.
        let rewrapped = words.chunks(7).map(|c| c.join(" ")).collect::<Vec<_>>().join("\n");
        let respaced = words
            .iter()
            .map(|w| if n % 2 == 0 { w.to_uppercase() } else { w.to_lowercase() })
            .collect::<Vec<_>>()
            .join("  \t ");
        for variant in [q.clone(), rewrapped, respaced] {
            let page = format!("{filler}{variant}{closing}");
            let cleaned = clean_text(&index, &page);
            assert!(!cleaned.matches.is_empty(), "not detected: {variant:?}");
            let left: Vec<&str> = cleaned.text.lines().filter(|l| !l.trim().is_empty()).collect();
            let expected: Vec<&str> = format!("{filler}{closing}")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|_| "")
                .collect();
            assert_eq!(left.len(), expected.len(), "left {left:?} for {variant:?}");
            assert!(
                cleaned.text.starts_with(filler) && cleaned.text.ends_with(closing),
                "filler touched for {variant:?}"
            );
            checked += 1;
        }
    }
    println!("checked {checked} planted copies; {notation_only} notation-only questions skipped");
    assert!(checked >= 60, "checked {checked} planted copies");
    assert!(
        notation_only * 10 < checked,
        "too many notation-only questions: {notation_only}"
    );

    // Pages that share only common formulas or phrasing with benchmark solutions are kept intact.
    let formula_pages = [
        "Quadratic formula\nThe roots of $ax^2+bx+c=0$ are $x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$.\nExample: $x^2-5x+6=0$ gives $x=2$ or $x=3$.",
        "Pythagoras\nIn a right triangle $a^2 + b^2 = c^2$. With legs 3 and 4, $c = \\sqrt{9+16} = 5$.",
        "Sum of an arithmetic series: $1+2+\\cdots+n = \\frac{n(n+1)}{2}$, so $1+2+\\cdots+100 = 5050$.",
        "Area of a circle is $\\pi r^2$ and its circumference $2\\pi r$; for $r = 3$ the area is $9\\pi$.",
        "Binomial theorem: $(x+y)^n = \\sum_{k=0}^{n} \\binom{n}{k} x^{n-k} y^k$.",
    ];
    for page in formula_pages {
        let cleaned = clean_text(&index, page);
        assert!(
            cleaned.matches.is_empty(),
            "formula page touched: {page:?} matched {:?}",
            &page[cleaned.matches[0].start..cleaned.matches[0].end]
        );
    }
}
