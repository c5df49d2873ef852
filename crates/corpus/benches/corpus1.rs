//! Corpus I benchmarks, side by side with the reference tools in one run:
//! extraction (F1 + docs/s/core vs trafilatura and resiliparse), classifier scoring (docs/s/core vs fastText
//! C++), training (words/s/thread vs fastText C++) and training parity (held-out accuracy/AUC over seeds).
//!
//! Run: `nice -n 10 cargo bench -p seekmath-corpus --bench corpus1` (needs shared data, the venv with
//! fasttext-wheel/trafilatura/resiliparse, and optionally Debian's `fasttext` CLI for the C++ timings).
//! Everything is single-threaded (one core), as the acceptance compares per-core speed.

#[path = "../tests/common/mod.rs"]
mod common;

use seekmath_corpus::classifier::{fasttext_line, Classifier, Scratch, TrainConfig};
use seekmath_corpus::extract::{extract, ExtractOptions};
use seekmath_corpus::readers::compress::open_decompressed;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn read_gz(path: &Path) -> String {
    let mut raw = Vec::new();
    open_decompressed(path).unwrap().read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
    tn: usize,
}

impl Counts {
    fn f1(&self) -> (f64, f64, f64) {
        let p = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let r = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        (p, r, if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) })
    }
}

fn bench_extraction(data: &Path, python: &Path) {
    let traf_dir = data.join("web/pages/trafilatura");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(traf_dir.join("evaldata.json")).unwrap()).unwrap();
    let mut traf_pages: Vec<(PathBuf, Vec<String>, Vec<String>)> = Vec::new();
    for entry in eval.as_object().unwrap().values() {
        let file = traf_dir
            .join("html")
            .join(format!("{}.gz", entry["file"].as_str().unwrap()));
        let list = |k: &str| {
            entry
                .get(k)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|s| s.as_str().map(normalize)).collect())
                .unwrap_or_default()
        };
        if file.exists() {
            traf_pages.push((file, list("with"), list("without")));
        }
    }
    traf_pages.sort_by(|a, b| a.0.cmp(&b.0));
    let sh_dir = data.join("web/pages/scrapinghub");
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sh_dir.join("ground-truth.json")).unwrap()).unwrap();
    let mut sh_pages: Vec<(PathBuf, String)> = gold
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                sh_dir.join("html").join(format!("{k}.html.gz")),
                v["articleBody"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(p, _)| p.exists())
        .collect();
    sh_pages.sort();

    let all_files: Vec<PathBuf> = traf_pages
        .iter()
        .map(|p| p.0.clone())
        .chain(sh_pages.iter().map(|p| p.0.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("files.txt");
    std::fs::write(
        &list,
        all_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let ref_out = dir.path().join("ref.jsonl");
    common::run(
        Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/extract_ref.py"))
            .arg(&list)
            .arg(&ref_out),
    );
    let mut outputs: HashMap<&str, Vec<String>> = HashMap::new();
    let mut timing: HashMap<String, f64> = HashMap::new();
    let mut cpu_timing: HashMap<String, f64> = HashMap::new();
    for line in std::fs::read_to_string(&ref_out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(t) = v.get("timing") {
            for (k, s) in t.as_object().unwrap() {
                timing.insert(k.clone(), s.as_f64().unwrap());
            }
            for (k, s) in v["cpu_timing"].as_object().into_iter().flatten() {
                cpu_timing.insert(k.clone(), s.as_f64().unwrap());
            }
            continue;
        }
        for sys in ["trafilatura", "resiliparse"] {
            outputs
                .entry(sys)
                .or_default()
                .push(v[sys].as_str().unwrap_or("").to_string());
        }
    }
    // Ours: decode like the Python side (UTF-8, lossy), time extraction only, best of 3 runs.
    let pages: Vec<String> = all_files.iter().map(|p| read_gz(p)).collect();
    let options = ExtractOptions::default();
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut ours = Vec::new();
    for _ in 0..3 {
        let (start, cpu) = (Instant::now(), thread_cpu_seconds());
        ours = pages.iter().map(|h| extract(h, &options).text).collect();
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(thread_cpu_seconds() - cpu);
    }
    timing.insert("seekmath".into(), best);
    cpu_timing.insert("seekmath".into(), best_cpu);
    outputs.insert("seekmath", ours);

    println!(
        "\n### Extraction ({} trafilatura-eval pages + {} scrapinghub pages, 1 thread)\n",
        traf_pages.len(),
        sh_pages.len()
    );
    println!("Split: `common::extraction_page_is_test` (FNV-1a of the file name, odd = test); extractor changes are made on dev pages only.\n");
    println!("| system | split | trafilatura eval P / R / F1 | scrapinghub token P / R / F1 | docs/s/core (wall) | docs per CPU-second |");
    println!("|---|---|---|---|---|---|");
    let traf_test: Vec<bool> = traf_pages
        .iter()
        .map(|p| common::extraction_page_is_test(&file_stem(&p.0)))
        .collect();
    let sh_test: Vec<bool> = sh_pages
        .iter()
        .map(|p| common::extraction_page_is_test(&file_stem(&p.0)))
        .collect();
    for sys in ["seekmath", "trafilatura", "resiliparse"] {
        let out = &outputs[sys];
        for (split, want) in [("test", Some(true)), ("dev", Some(false)), ("all", None)] {
            let mut c = Counts::default();
            for (i, (_, with, without)) in traf_pages.iter().enumerate() {
                if want.is_some_and(|w| w != traf_test[i]) {
                    continue;
                }
                let text = normalize(&out[i]);
                for s in with {
                    if text.contains(s.as_str()) {
                        c.tp += 1
                    } else {
                        c.fn_ += 1
                    }
                }
                for s in without {
                    if text.contains(s.as_str()) {
                        c.fp += 1
                    } else {
                        c.tn += 1
                    }
                }
            }
            let (p, r, f) = c.f1();
            let (mut sp, mut sr, mut k) = (0.0, 0.0, 0usize);
            for (j, (_, gold)) in sh_pages.iter().enumerate() {
                if want.is_some_and(|w| w != sh_test[j]) {
                    continue;
                }
                let (a, b) = common::token_precision_recall(&out[traf_pages.len() + j], gold);
                sp += a;
                sr += b;
                k += 1;
            }
            sp /= k.max(1) as f64;
            sr /= k.max(1) as f64;
            let sf = 2.0 * sp * sr / (sp + sr);
            println!(
                "| {sys} | {split} | {p:.3} / {r:.3} / **{f:.3}** | {sp:.3} / {sr:.3} / **{sf:.3}** | {:.0} | {} |",
                all_files.len() as f64 / timing[sys],
                cpu_timing
                    .get(sys)
                    .map_or("n/a".to_string(), |c| format!("{:.0}", all_files.len() as f64 / c))
            );
        }
    }
}

/// The page's file name without the `.gz` (and, for scrapinghub, `.html.gz`) suffix, as the split hashes it.
fn file_stem(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.strip_suffix(".gz").unwrap_or(&name).to_string()
}

/// CPU seconds used by the calling thread (wall time is meaningless on a loaded machine).
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the valid timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Pins the calling thread to CPU 0.
fn pin_to_core0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn fasttext_cli() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/fasttext");
    p.exists().then_some(p)
}

fn bench_classifier(data: &Path, python: &Path, score_only: bool) {
    let set = common::math_vs_web(data, 5000);
    let dir = tempfile::tempdir().unwrap();
    let train_path = dir.path().join("train.txt");
    let mut f = std::fs::File::create(&train_path).unwrap();
    let mut words = 0usize;
    for (label, text, test) in &set {
        if !test {
            let line = fasttext_line(label, text);
            words += line.split_whitespace().count() + 1;
            writeln!(f, "{line}").unwrap();
        }
    }
    drop(f);
    let bucket = 2_000_000;
    let config = TrainConfig {
        bucket,
        threads: 1,
        ..Default::default()
    };
    println!("\n### Classifier (math-vs-web from shared data: {} train / {} held-out docs, {} train tokens; dim 256, lr 0.1, wordNgrams 3, minCount 3, epoch 3, bucket {bucket}, softmax, 1 thread)\n",
        set.iter().filter(|s| !s.2).count(), set.iter().filter(|s| s.2).count(), words);

    // Training speed.
    let start = Instant::now();
    let ours = Classifier::train_file(&train_path, &config).unwrap();
    let ours_train = start.elapsed().as_secs_f64();
    let model_path = dir.path().join("ours.bin");
    ours.save(&model_path).unwrap();
    let mut cpp_train = None;
    if let Some(cli) = fasttext_cli().filter(|_| !score_only) {
        let start = Instant::now();
        common::run(
            Command::new("taskset")
                .args(["-c", "0"])
                .arg(&cli)
                .args(["supervised", "-input"])
                .arg(&train_path)
                .arg("-output")
                .arg(dir.path().join("cpp"))
                .args([
                    "-dim",
                    "256",
                    "-lr",
                    "0.1",
                    "-wordNgrams",
                    "3",
                    "-minCount",
                    "3",
                    "-epoch",
                    "3",
                    "-bucket",
                    &bucket.to_string(),
                    "-thread",
                    "1",
                    "-verbose",
                    "0",
                ]),
        );
        cpp_train = Some(start.elapsed().as_secs_f64());
    }
    let wps = |s: f64| (words * 3) as f64 / s;
    println!("| training | seconds | words/s/thread |\n|---|---|---|");
    println!(
        "| seekmath (fasttext crate 0.8) | {ours_train:.2} | {:.0} |",
        wps(ours_train)
    );
    if let Some(s) = cpp_train {
        println!("| fastText 0.9.2 C++ CLI | {s:.2} | {:.0} |", wps(s));
    }

    // Scoring speed: every document (train + held-out), flattened to one line, repeated to ~20k docs.
    let docs: Vec<String> = set.iter().map(|s| s.1.replace(['\n', '\r'], " ")).collect();
    let repeat = (20_000 / docs.len()).max(1);
    let docs_path = dir.path().join("docs.txt");
    std::fs::write(
        &docs_path,
        docs.iter()
            .cycle()
            .take(docs.len() * repeat)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )
    .unwrap();
    let n = docs.len() * repeat;
    // Pinned to core 0, like the C++ CLI below (`taskset -c 0`), so both sides run under the same conditions.
    pin_to_core0();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let start = Instant::now();
    let mut checksum = 0f64;
    for _ in 0..repeat {
        for d in &docs {
            ours.model().predict_into(d, 1, 0.0, &mut scratch, &mut out);
            checksum += out[0].prob as f64;
        }
    }
    let ours_score = start.elapsed().as_secs_f64();
    println!(
        "\n| scoring ({n} docs, avg {:.0} words) | seconds | docs/s/core | vs C++ |\n|---|---|---|---|",
        docs.iter().map(|d| d.split_whitespace().count()).sum::<usize>() as f64 / docs.len() as f64
    );
    let mut cpp_score = None;
    if let Some(cli) = fasttext_cli() {
        // Subtract model loading, measured on a one-line input.
        let one = dir.path().join("one.txt");
        std::fs::write(&one, "x\n").unwrap();
        let time = |input: &Path| {
            let start = Instant::now();
            let o = Command::new("taskset")
                .args(["-c", "0"])
                .arg(&cli)
                .arg("predict-prob")
                .arg(&model_path)
                .arg(input)
                .arg("1")
                .output()
                .unwrap();
            assert!(o.status.success());
            start.elapsed().as_secs_f64()
        };
        let load = (0..3).map(|_| time(&one)).fold(f64::INFINITY, f64::min);
        let total = time(&docs_path);
        cpp_score = Some(total - load);
        println!(
            "| fastText 0.9.2 C++ CLI predict-prob (minus {load:.2}s load) | {:.2} | {:.0} | 1.00× |",
            total - load,
            n as f64 / (total - load)
        );
    }
    let py = common::run(
        Command::new(python)
            .arg(common::fasttext_ref_script())
            .arg("bench")
            .arg(&model_path)
            .arg(&docs_path)
            .arg("1"),
    );
    let py: serde_json::Value = serde_json::from_str(py.trim()).unwrap();
    let py_s = py["seconds"].as_f64().unwrap();
    let rel = |s: f64| {
        cpp_score
            .map(|c| format!("{:.2}×", c / s))
            .unwrap_or_else(|| "n/a".into())
    };
    println!(
        "| fastText 0.9.2 via pip (C++ predict from Python) | {py_s:.2} | {:.0} | {} |",
        n as f64 / py_s,
        rel(py_s)
    );
    println!(
        "| **seekmath** | {ours_score:.2} | {:.0} | **{}** |",
        n as f64 / ours_score,
        rel(ours_score)
    );
    let _ = checksum;
    if score_only {
        return;
    }

    // Training parity over seeds: held-out accuracy/AUC of ours vs fastText C++ (pip), same settings.
    let test: Vec<&(String, String, bool)> = set.iter().filter(|s| s.2).collect();
    let truth: Vec<bool> = test.iter().map(|s| s.0 == "math").collect();
    let metrics = |m: &Classifier| {
        let scores: Vec<f32> = test.iter().map(|s| m.probability(&s.1, "math")).collect();
        let acc = scores.iter().zip(&truth).filter(|(s, t)| (**s >= 0.5) == **t).count() as f64 / truth.len() as f64;
        (acc, common::auc(&scores, &truth))
    };
    println!(
        "\n| training parity (held-out n={}) | seed | accuracy | AUC |\n|---|---|---|---|",
        truth.len()
    );
    let (mut sum_ours, mut sum_ref) = ((0.0, 0.0), (0.0, 0.0));
    let seeds = [0, 1, 2];
    for seed in seeds {
        let m = if seed == 0 {
            ours.clone()
        } else {
            Classifier::train_file(&train_path, &TrainConfig { seed, ..config.clone() }).unwrap()
        };
        let (a, u) = metrics(&m);
        let ref_path = dir.path().join(format!("ref{seed}.bin"));
        common::run(
            Command::new(python)
                .arg(common::fasttext_ref_script())
                .arg("train")
                .arg(&train_path)
                .arg(&ref_path)
                .args([
                    "dim=256",
                    "lr=0.1",
                    "wordNgrams=3",
                    "minCount=3",
                    "epoch=3",
                    &format!("bucket={bucket}"),
                    "thread=1",
                    "loss=softmax",
                    &format!("seed={seed}"),
                ]),
        );
        let (ra, ru) = metrics(&Classifier::load(&ref_path).unwrap());
        std::fs::remove_file(&ref_path).ok();
        println!("| seekmath | {seed} | {a:.4} | {u:.4} |\n| fastText C++ | {seed} | {ra:.4} | {ru:.4} |");
        sum_ours = (sum_ours.0 + a, sum_ours.1 + u);
        sum_ref = (sum_ref.0 + ra, sum_ref.1 + ru);
    }
    let k = seeds.len() as f64;
    println!(
        "| **mean** seekmath / fastText | | {:.4} / {:.4} | {:.4} / {:.4} |",
        sum_ours.0 / k,
        sum_ref.0 / k,
        sum_ours.1 / k,
        sum_ref.1 / k
    );
}

/// The evaluation behind building our own predictor: the `fasttext` crate 0.8 vs ours vs official fastText on the
/// shipped models (top-1 agreement, probability error, speed).
fn bench_fasttext_crate(data: &Path, python: &Path) {
    println!("\n### fastText prediction: `fasttext` crate 0.8 vs seekmath vs official fastText (1 thread)\n");
    println!("| model | lines | implementation | top-1 = fastText | max abs prob error | lines/s |\n|---|---|---|---|---|---|");
    let cooking_lines: Vec<String> = std::fs::read_to_string(data.join("models/fasttext/cooking.valid"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("web/pages/scrapinghub/ground-truth.json")).unwrap())
            .unwrap();
    let mut lid_lines: Vec<String> = gold
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| {
            v["articleBody"]
                .as_str()
                .unwrap_or("")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.len() > 20)
        .collect();
    lid_lines.truncate(5000);
    for (name, lines) in [("cooking.model.bin", cooking_lines), ("lid.176.ftz", lid_lines)] {
        let path = data.join("models/fasttext").join(name);
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("lines.txt");
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let reference: Vec<Vec<(String, f32)>> = common::run(
            Command::new(python)
                .arg(common::fasttext_ref_script())
                .arg("predict")
                .arg(&path)
                .arg(&input)
                .arg("1"),
        )
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let krate = fasttext::FastText::load_model(&path).unwrap();
        let ours = Classifier::load(&path).unwrap();
        let report = |label: &str, preds: Vec<(String, f32)>, secs: f64| {
            let same = preds
                .iter()
                .zip(&reference)
                .filter(|(p, r)| !r.is_empty() && p.0 == r[0].0)
                .count();
            let err = preds
                .iter()
                .zip(&reference)
                .filter(|(p, r)| !r.is_empty() && p.0 == r[0].0)
                .map(|(p, r)| (p.1 - r[0].1).abs())
                .fold(0f32, f32::max);
            println!(
                "| {name} | {} | {label} | {same}/{} | {err:.1e} | {:.0} |",
                lines.len(),
                reference.len(),
                lines.len() as f64 / secs
            );
        };
        let start = Instant::now();
        let preds: Vec<(String, f32)> = lines
            .iter()
            .map(|l| {
                krate
                    .predict(l, 1, 0.0)
                    .first()
                    .map(|p| (p.label.clone(), p.prob))
                    .unwrap_or_default()
            })
            .collect();
        report("fasttext crate 0.8", preds, start.elapsed().as_secs_f64());
        let start = Instant::now();
        let preds: Vec<(String, f32)> = lines
            .iter()
            .map(|l| ours.predict(l, 1).first().cloned().unwrap_or_default())
            .collect();
        report("seekmath", preds, start.elapsed().as_secs_f64());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let (Some(data), Some(python)) = (common::shared_data(), common::python_with("fasttext")) else {
        return;
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    println!(
        "## machine: {} ({} cores visible)",
        cpu.unwrap_or_default(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    if only.as_deref().is_none_or(|o| o == "crate") {
        bench_fasttext_crate(&data, &python);
    }
    if only.as_deref().is_none_or(|o| o == "extract") {
        bench_extraction(&data, &python);
    }
    if only.as_deref().is_none_or(|o| o == "classifier") {
        bench_classifier(&data, &python, false);
    }
    if only.as_deref() == Some("score") {
        bench_classifier(&data, &python, true);
    }
}
