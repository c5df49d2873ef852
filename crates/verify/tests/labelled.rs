//! Accuracy on the hand-labelled gold/pred pairs (`tests/data/labelled_pairs.jsonl`, every label with its reason).

use seekmath_verify::{Mode, Verifier};
use std::path::PathBuf;

/// One labelled pair.
struct Pair {
    category: String,
    gold: String,
    pred: String,
    label: bool,
    reason: String,
}

fn load() -> Vec<Pair> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/labelled_pairs.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("line {}: missing {k}", i + 1))
                    .to_string()
            };
            Pair {
                category: s("category"),
                gold: s("gold"),
                pred: s("pred"),
                label: v["label"].as_bool().expect("label"),
                reason: s("reason"),
            }
        })
        .collect()
}

#[test]
fn strict_accuracy_at_least_99_percent() {
    let pairs = load();
    assert!(
        pairs.len() >= 500,
        "need at least 500 labelled pairs, have {}",
        pairs.len()
    );
    assert!(pairs.iter().all(|p| !p.reason.is_empty()), "every label needs a reason");
    let v = Verifier::new(Mode::Strict);
    let mut wrong = Vec::new();
    for p in &pairs {
        if v.is_equivalent(&p.pred, &p.gold) != p.label {
            wrong.push(p);
        }
    }
    for p in &wrong {
        eprintln!(
            "MISMATCH [{}] gold={:?} pred={:?} label={} ({})",
            p.category, p.gold, p.pred, p.label, p.reason
        );
    }
    let acc = 1.0 - wrong.len() as f64 / pairs.len() as f64;
    eprintln!(
        "strict accuracy {:.4} on {} pairs ({} wrong)",
        acc,
        pairs.len(),
        wrong.len()
    );
    assert!(acc >= 0.99, "strict accuracy {acc:.4} < 0.99");
}

#[test]
fn verdicts_are_symmetric_on_scalars() {
    // Swapping gold and pred must not change a verdict for plain numbers (the comparison is an equivalence).
    let v = Verifier::new(Mode::Strict);
    for p in load().iter().filter(|p| p.category.starts_with("family-fraction")) {
        assert_eq!(
            v.is_equivalent(&p.pred, &p.gold),
            v.is_equivalent(&p.gold, &p.pred),
            "{} vs {}",
            p.gold,
            p.pred
        );
    }
}

#[test]
fn verdicts_identical_across_threads() {
    // No global state: four threads sharing one verifier reproduce the single-threaded verdicts exactly.
    let pairs = load();
    let v = std::sync::Arc::new(Verifier::new(Mode::Strict));
    let serial: Vec<bool> = pairs.iter().map(|p| v.is_equivalent(&p.pred, &p.gold)).collect();
    let pairs = std::sync::Arc::new(pairs);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (v, pairs) = (v.clone(), pairs.clone());
            std::thread::spawn(move || {
                pairs
                    .iter()
                    .skip(t)
                    .step_by(4)
                    .map(|p| v.is_equivalent(&p.pred, &p.gold))
                    .collect::<Vec<bool>>()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let got = h.join().expect("verifier thread panicked");
        let want: Vec<bool> = serial.iter().skip(t).step_by(4).copied().collect();
        assert_eq!(got, want, "thread {t} disagrees with the serial run");
    }
}
