//! The benchmark n-gram index and the per-document scan.

use super::benchmarks::Benchmark;
use super::tokens::{for_each_token_hash, ngram_key, tokens, Token, TokenScratch, ROLL_BASE};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Decontamination parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecontamConfig {
    /// n-gram length in tokens (the paper: 10; at most [`MAX_NGRAM`]).
    pub ngram: usize,
    /// Formula guard for n-grams: an n-gram with fewer than this many content words (three or more letters, not a
    /// function word like `the`/`of`, not a LaTeX command; or a CJK character) never matches on its own. Pure formulas such as `a^2 + b^2 = c^2` or
    /// `\frac{n(n+1)}{2}` occur in benchmark solutions *and* on every math page; matching them alone would remove
    /// ordinary math text. Such n-grams only extend a match: a run of consecutive matching n-grams counts when at
    /// least one of them passes the guard, so the formula tail of a copied problem goes with its prose.
    pub min_words_per_ngram: usize,
    /// Benchmark questions shorter than `ngram` tokens but at least this long are matched exactly: a segment (line)
    /// of a page whose normalised tokens equal the whole question is removed (the paper's 3–9 word rule).
    pub short_min_tokens: usize,
    /// Formula guard for short questions: at least this many content words, and content words must be at least
    /// half the tokens.
    pub short_min_words: usize,
    /// Examples kept per benchmark in the report.
    pub max_examples: usize,
}

impl Default for DecontamConfig {
    fn default() -> Self {
        Self {
            ngram: 10,
            min_words_per_ngram: 3,
            short_min_tokens: 3,
            short_min_words: 3,
            max_examples: 5,
        }
    }
}

/// Where an indexed n-gram came from: benchmark and item index (the first occurrence when several share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Index into [`DecontamIndex::benchmarks`].
    pub benchmark: u32,
    /// Item index within that benchmark.
    pub item: u32,
}

/// Keys are already mixed 64-bit hashes; hashing them again would only cost time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// English function words: they occur in every sentence, so they do not make an n-gram distinctive.
const STOPWORDS: &[&str] = &[
    "the", "and", "are", "for", "was", "were", "has", "have", "had", "but", "not", "you", "your", "its", "our", "this",
    "that", "these", "those", "with", "from", "into", "than", "then", "there", "their", "they", "them", "what",
    "which", "who", "whom", "when", "where", "why", "how", "all", "any", "each", "can", "could", "would", "should",
    "will", "shall", "may", "might", "must", "does", "did", "also", "such", "some", "let", "per", "over", "under",
    "about", "both", "only", "more", "most", "other", "same", "very", "one", "two", "three", "if", "of", "is", "be",
    "to", "in", "on", "at", "by", "as", "it", "we", "an", "or", "so", "do", "no", "up",
];

/// A token that makes an n-gram distinctive: a word of three or more letters that is not a function word or a
/// LaTeX command, or a CJK character. Variables (`x`, `ab`), numbers and operators are notation.
fn is_content_word(tok: &Token, text: &str) -> bool {
    let s = &text[tok.start as usize..tok.end as usize];
    if !tok.is_word {
        return false;
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or(' ');
    if !first.is_ascii() && s.chars().count() == 1 {
        return true; // CJK character (the tokenizer emits those one by one)
    }
    s.chars().count() >= 3 && !STOPWORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// An indexed n-gram: where it came from, and whether the formula guard stops it from matching alone.
#[derive(Debug, Clone, Copy)]
struct Entry {
    source: Source,
    guarded: bool,
}

type KeyMap = HashMap<u64, Entry, BuildHasherDefault<IdentityHasher>>;

/// Summary of one indexed benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedBenchmark {
    /// Benchmark name.
    pub name: String,
    /// Item ids, for reports.
    pub item_ids: Vec<String>,
    /// Distinct n-grams indexed from it that match on their own.
    pub ngrams: usize,
    /// Distinct n-grams held back by the formula guard (they only extend matches).
    pub ngrams_guarded: usize,
    /// Short questions matched exactly.
    pub short_questions: usize,
    /// Short questions dropped by the formula guard.
    pub short_guarded: usize,
}

/// An index of benchmark n-grams, with a cache-resident filter in front of the hash map so that the common case,
/// a page n-gram that is in no benchmark, costs one L2/L3 access instead of a random access into a large table.
pub struct DecontamIndex {
    config: DecontamConfig,
    benchmarks: Vec<IndexedBenchmark>,
    ngrams: KeyMap,
    short: KeyMap,
    filter: crate::huge::HugeBuf<u64>,
    filter_shift: u32,
}

/// Per-thread buffers of the scan, reused across documents.
#[derive(Default)]
struct Scratch {
    /// Windows whose n-gram is indexed, in token order.
    hits: Vec<Hit>,
    token_scratch: TokenScratch,
}

/// A window whose n-gram is in the index: its number (the token it starts at), byte span and index entry.
#[derive(Clone, Copy)]
struct Hit {
    window: u32,
    start: u32,
    end: u32,
    entry: Entry,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// One contaminated span found in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Byte range of the matching tokens in the document.
    pub start: usize,
    /// End of that range.
    pub end: usize,
    /// The benchmark item it matches.
    pub source: Source,
    /// True for an exact short-question match, false for an n-gram match.
    pub short: bool,
}

impl DecontamIndex {
    /// Indexes the question and answer texts of `benchmarks`.
    pub fn build(benchmarks: &[Benchmark], config: DecontamConfig) -> Self {
        assert!(
            (2..=MAX_NGRAM).contains(&config.ngram),
            "decontamination n-grams need 2 to {MAX_NGRAM} tokens, not {}",
            config.ngram
        );
        let mut ngrams = KeyMap::default();
        let mut short = KeyMap::default();
        let mut summaries = Vec::new();
        for (b, bench) in benchmarks.iter().enumerate() {
            let mut summary = IndexedBenchmark {
                name: bench.name.clone(),
                item_ids: bench.items.iter().map(|i| i.id.clone()).collect(),
                ngrams: 0,
                ngrams_guarded: 0,
                short_questions: 0,
                short_guarded: 0,
            };
            for (i, item) in bench.items.iter().enumerate() {
                let source = Source {
                    benchmark: b as u32,
                    item: i as u32,
                };
                for (text, is_question) in item
                    .questions
                    .iter()
                    .map(|q| (q, true))
                    .chain(item.answers.iter().map(|a| (a, false)))
                {
                    let toks = tokens(text);
                    let n = config.ngram;
                    if toks.len() >= n {
                        for w in toks.windows(n) {
                            let guarded =
                                w.iter().filter(|t| is_content_word(t, text)).count() < config.min_words_per_ngram;
                            let key = ngram_key(w.iter().map(|t| t.hash));
                            if let std::collections::hash_map::Entry::Vacant(e) = ngrams.entry(key) {
                                e.insert(Entry { source, guarded });
                                if guarded {
                                    summary.ngrams_guarded += 1;
                                } else {
                                    summary.ngrams += 1;
                                }
                            }
                        }
                    } else if is_question && toks.len() >= config.short_min_tokens {
                        let words = toks.iter().filter(|t| is_content_word(t, text)).count();
                        if words < config.short_min_words || words * 2 < toks.len() {
                            summary.short_guarded += 1;
                            continue;
                        }
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            short.entry(ngram_key(toks.iter().map(|t| t.hash)))
                        {
                            e.insert(Entry { source, guarded: false });
                            summary.short_questions += 1;
                        }
                    }
                }
            }
            summaries.push(summary);
        }
        let bits = (ngrams.len() * filter_bits_per_key()).max(1 << 16).next_power_of_two();
        // The filter has exactly `1 << (64 - filter_shift)` bits; the scan relies on it (`filter_bit`).
        let filter_shift = 64 - bits.trailing_zeros();
        let mut filter = crate::huge::HugeBuf::<u64>::zeroed(bits / 64).expect("mapping the n-gram filter");
        for &key in ngrams.keys() {
            let bit = filter_bit(key, filter_shift);
            filter[bit / 64] |= 1 << (bit % 64);
        }
        Self {
            config,
            benchmarks: summaries,
            ngrams,
            short,
            filter,
            filter_shift,
        }
    }

    /// Whether `text` has an n-gram passing the formula guard, i.e. whether a copy of it can be detected on its own.
    pub fn has_anchor_ngram(&self, text: &str) -> bool {
        tokens(text)
            .windows(self.config.ngram)
            .any(|w| w.iter().filter(|t| is_content_word(t, text)).count() >= self.config.min_words_per_ngram)
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> &DecontamConfig {
        &self.config
    }

    /// The indexed benchmarks, in the order sources refer to them.
    pub fn benchmarks(&self) -> &[IndexedBenchmark] {
        &self.benchmarks
    }

    /// Every contaminated span of `text`: maximal runs of consecutive matching n-grams that contain at least one
    /// n-gram passing the formula guard, in token order; then short-question line matches.
    pub fn find_matches(&self, text: &str) -> Vec<Match> {
        SCRATCH.with(|scratch| self.find_matches_with(text, &mut scratch.borrow_mut()))
    }

    /// The scan, in one tokenising pass: each token's hash goes into a ring of the last few, the window key rolls
    /// forward in O(1) (add the new token, subtract the one leaving), and the key's filter word is prefetched; the
    /// filter is checked [`PROBE_DELAY`] windows later, when the word has arrived, and only the rare window that
    /// passes it touches the hash map. Short questions are checked line by line in the same pass, from the ring,
    /// when a token starts past the current line.
    fn find_matches_with(&self, text: &str, scratch: &mut Scratch) -> Vec<Match> {
        // Fixed-size rings (a power of two) keep the ring indexing free of bounds checks.
        if self.config.ngram + PROBE_DELAY < SMALL_RING {
            self.scan::<SMALL_RING>(text, scratch)
        } else {
            self.scan::<LARGE_RING>(text, scratch)
        }
    }

    /// One instance per ring size, each with its own constant mask (not inlined into one body, where the two
    /// could be merged with a variable mask and bounds checks).
    #[inline(never)]
    fn scan<const RING: usize>(&self, text: &str, scratch: &mut Scratch) -> Vec<Match> {
        let n = self.config.ngram;
        let Scratch { hits, token_scratch } = scratch;
        // `slot` masks with a constant (a `mask` variable captured by the closures below ended up on the stack and
        // brought back the bounds checks).
        let slot = |i: usize| i & (RING - 1);
        // Zeros stand for the tokens before the first: subtracting them from the rolling key is a no-op.
        let mut ring_hashes = [0u64; RING];
        let mut ring_keys = [0u64; RING];
        let mut ring_starts = [0u32; RING];
        let mut ring_ends = [0u32; RING];
        hits.clear();
        let bytes = text.as_bytes();
        let top = ROLL_BASE.wrapping_pow(n as u32);
        let (filter, shift) = (&self.filter[..], self.filter_shift);
        // Checks window `w` (tokens w..w+n) against the filter, then the map. (A macro, not a closure: a closure
        // was not inlined into the token loop.)
        macro_rules! probe {
            ($w:expr) => {{
                let w: usize = $w;
                let key = ring_keys[slot(w)];
                let bit = filter_bit(key, shift);
                debug_assert!(bit / 64 < filter.len());
                // SAFETY: `filter_bit` is the key's top `64 - shift` bits and the filter has exactly
                // `1 << (64 - shift)` bits (`build`), so the word is in bounds. Without the bounds check the scan
                // ran 2.3% fewer instructions (callgrind, bench corpus).
                if unsafe { *filter.get_unchecked(bit / 64) } >> (bit % 64) & 1 != 0 {
                    if let Some(&entry) = self.ngrams.get(&key) {
                        hits.push(Hit {
                            window: w as u32,
                            start: ring_starts[slot(w)],
                            end: ring_ends[slot(w + n - 1)],
                            entry,
                        });
                    }
                }
            }};
        }
        let mut short_matches = Vec::new();
        // The line holding the tokens seen so far: its byte range and its first token. Without short questions
        // the line never ends, so the token loop needs no flag for that case.
        let no_lines = if self.short.is_empty() { usize::MAX } else { 0 };
        let (mut line_start, mut line_end, mut line_first) = (0usize, no_lines, 0usize);
        let mut check_line = |line_start: usize, line_end: usize, first: usize, last: usize, ring: &[u64; RING]| {
            let count = last - first;
            if count >= self.config.short_min_tokens && count < n {
                let key = ngram_key((first..last).map(|t| ring[slot(t)]));
                if let Some(entry) = self.short.get(&key) {
                    short_matches.push(Match {
                        start: line_start,
                        end: line_end,
                        source: entry.source,
                        short: true,
                    });
                }
            }
        };
        let mut count = 0usize;
        let mut rolling = 0u64;
        for_each_token_hash(text, token_scratch, |t| {
            let i = count;
            count += 1;
            if t.start as usize >= line_end {
                check_line(line_start, line_end, line_first, i, &ring_hashes);
                // Tokens never contain a newline, so the token's line is bounded by the newlines around it.
                let from = t.start as usize;
                // The gap before the token holds no token, usually just a newline or two: a plain loop beats the
                // call into `memrchr` there (1.3% of the scan's instructions, callgrind).
                line_start = bytes[line_end..from]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(line_end, |p| line_end + p + 1);
                line_end = memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |p| from + p + 1);
                line_first = i;
            }
            let leaving = ring_hashes[slot(i.wrapping_sub(n))];
            ring_hashes[slot(i)] = t.hash;
            ring_starts[slot(i)] = t.start;
            ring_ends[slot(i)] = t.end;
            // (Without n-grams the filter is all zeros and no window passes it.)
            rolling = rolling
                .wrapping_mul(ROLL_BASE)
                .wrapping_add(t.hash)
                .wrapping_sub(leaving.wrapping_mul(top));
            if i + 1 >= n {
                let w = i + 1 - n;
                let key = super::tokens::finish_key(rolling);
                ring_keys[slot(w)] = key;
                prefetch(filter.as_ptr().wrapping_add(filter_bit(key, shift) / 64));
                if w >= PROBE_DELAY {
                    probe!(w - PROBE_DELAY);
                }
            }
        });
        if line_end != usize::MAX {
            check_line(line_start, line_end, line_first, count, &ring_hashes);
        }
        if count >= n {
            let windows = count + 1 - n;
            for w in windows.saturating_sub(PROBE_DELAY)..windows {
                probe!(w);
            }
        }
        // Runs of consecutive matching windows count when anchored by a window that passes the formula guard.
        let mut matches = Vec::new();
        let mut run: Option<(Match, bool, u32)> = None;
        let finish = |run: &mut Option<(Match, bool, u32)>, matches: &mut Vec<Match>| {
            if let Some((m, true, _)) = run.take() {
                matches.push(m);
            }
        };
        for hit in hits.iter() {
            let (w, entry, end) = (hit.window, hit.entry, hit.end as usize);
            match &mut run {
                Some((m, anchored, last)) if *last + 1 == w => {
                    m.end = end;
                    if !entry.guarded && !*anchored {
                        *anchored = true;
                        m.source = entry.source;
                    }
                    *last = w;
                }
                _ => {
                    finish(&mut run, &mut matches);
                    let m = Match {
                        start: hit.start as usize,
                        end,
                        source: entry.source,
                        short: false,
                    };
                    run = Some((m, !entry.guarded, w));
                }
            }
        }
        finish(&mut run, &mut matches);
        matches.append(&mut short_matches);
        matches
    }
}

/// Windows between computing a key (and prefetching its filter word) and checking the filter: enough for a load
/// from L3 or memory to arrive, few enough that the rings stay in L1.
const PROBE_DELAY: usize = 16;

/// Ring sizes of the scan: the small one for the usual n-grams, the large one up to [`MAX_NGRAM`].
const SMALL_RING: usize = 32;
const LARGE_RING: usize = 512;

/// Longest n-gram the scan supports.
pub const MAX_NGRAM: usize = LARGE_RING - PROBE_DELAY - 1;

/// Asks the CPU to start loading a filter word now; the check happens [`PROBE_DELAY`] windows later. Measured
/// (2026-11-29, alternating runs on the shared dev machine): checking each key at once, without the prefetch, ran
/// the fused scan at 57 MB/s per CPU-second; prefetch and delayed check, 96.
#[inline(always)]
fn prefetch(word: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults, whatever the address (it is not even dereferenced).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(word.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// Filter bits per indexed key before rounding the filter up to a power of two bits (so 32–64 in effect); env
/// `SEEKMATH_DECONTAM_FILTER_BITS` overrides it for measurements. One bit per key: a ~2% false-positive rate and,
/// for the shipped benchmark sets (1.27M keys: 635k anchoring, 635k held back by the formula guard), an 8 MB
/// filter on huge pages (L3; the prefetch hides its latency). Checking one bit costs half the instructions of the
/// earlier three-bits-in-a-word filter (2 MB, 1.4% false positives): 3% fewer instructions for the whole scan
/// (callgrind, bench corpus; docs/benchmarks.md, Corpus II).
fn filter_bits_per_key() -> usize {
    std::env::var("SEEKMATH_DECONTAM_FILTER_BITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

/// The filter bit of `key`: its top `64 - shift` bits (the key's best-mixed bits, see `finish_key`).
#[inline]
fn filter_bit(key: u64, shift: u32) -> usize {
    // `shift` is at most 48: the filter has at least 2^16 bits.
    (key >> shift) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decontam::benchmarks::BenchmarkItem;
    use crate::decontam::tokens::tokens;

    /// The scan written the direct way, as the oracle for the fused one: tokenise in full, look every window up
    /// in the map, then check every line for a short question.
    fn reference_matches(index: &DecontamIndex, text: &str) -> Vec<Match> {
        let n = index.config.ngram;
        let toks = tokens(text);
        let mut matches = Vec::new();
        let mut run: Option<(Match, bool, usize)> = None;
        for w in 0..toks.len().saturating_sub(n - 1) {
            let Some(entry) = index.ngrams.get(&ngram_key(toks[w..w + n].iter().map(|t| t.hash))) else {
                continue;
            };
            let end = toks[w + n - 1].end as usize;
            match &mut run {
                Some((m, anchored, last)) if *last + 1 == w => {
                    m.end = end;
                    if !entry.guarded && !*anchored {
                        *anchored = true;
                        m.source = entry.source;
                    }
                    *last = w;
                }
                _ => {
                    if let Some((m, true, _)) = run.take() {
                        matches.push(m);
                    }
                    let m = Match {
                        start: toks[w].start as usize,
                        end,
                        source: entry.source,
                        short: false,
                    };
                    run = Some((m, !entry.guarded, w));
                }
            }
        }
        if let Some((m, true, _)) = run.take() {
            matches.push(m);
        }
        let mut line_start = 0;
        for line in text.split_inclusive('\n') {
            let line_end = line_start + line.len();
            let hashes: Vec<u64> = toks
                .iter()
                .filter(|t| (line_start..line_end).contains(&(t.start as usize)))
                .map(|t| t.hash)
                .collect();
            if hashes.len() >= index.config.short_min_tokens && hashes.len() < n {
                if let Some(entry) = index.short.get(&ngram_key(hashes)) {
                    matches.push(Match {
                        start: line_start,
                        end: line_end,
                        source: entry.source,
                        short: true,
                    });
                }
            }
            line_start = line_end;
        }
        matches
    }

    const QUESTIONS: &[&str] = &[
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
        "Let $f(x) = x^2 + 3x - 4$. Find the sum of all values of $x$ such that $f(f(x)) = 0$ and $x > -10$.",
        "What is the smallest prime number?",
        "Compute the number of ordered pairs of integers",
        "已知函数 f(x)=x^2+2x，求 f(x) 在区间 [0,1] 上的最大值和最小值。",
        "If $a^2 + b^2 = c^2$ and $a = 3$, $b = 4$, then $c = 5$ because $\\sqrt{9+16} = 5$.",
    ];

    fn toy_index(ngram: usize) -> DecontamIndex {
        let bench = Benchmark {
            name: "toy/test".into(),
            path: "toy/test.jsonl".into(),
            items: QUESTIONS
                .iter()
                .enumerate()
                .map(|(i, q)| BenchmarkItem {
                    id: format!("q{i}"),
                    questions: vec![q.to_string()],
                    answers: vec![format!(
                        "The answer is {i} since we count carefully each of the cases above."
                    )],
                })
                .collect(),
            skipped: 0,
        };
        DecontamIndex::build(
            &[bench],
            DecontamConfig {
                ngram,
                ..DecontamConfig::default()
            },
        )
    }

    #[test]
    fn fused_scan_matches_the_direct_scan() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let fillers = [
            "the",
            "answer",
            "is",
            "$x^2$",
            "+",
            "12",
            "\n",
            "\n\n",
            "  ",
            "Let",
            "we",
            "count",
            "中",
            "Ünïcode",
            "\\alpha",
            "cases",
            "carefully",
            "=",
            "-",
            "since",
        ];
        for ngram in [10, 4, 16] {
            let index = toy_index(ngram);
            let mut hit_docs = 0;
            for _ in 0..2000 {
                let mut doc = String::new();
                for _ in 0..(next() % 12) {
                    match next() % 4 {
                        0 => {
                            // A planted question or answer, whole or in part, re-wrapped and re-cased at random.
                            let q = QUESTIONS[(next() % QUESTIONS.len() as u64) as usize];
                            let words: Vec<&str> = q.split(' ').collect();
                            let from = (next() % words.len() as u64) as usize / 2;
                            let to = words.len() - (next() % 3) as usize;
                            for (k, w) in words[from..to.max(from)].iter().enumerate() {
                                let sep = if next() % 7 == 0 { "\n" } else { " " };
                                let w = if k % 3 == 0 && next() % 2 == 0 {
                                    w.to_uppercase()
                                } else {
                                    w.to_string()
                                };
                                doc.push_str(&w);
                                doc.push_str(sep);
                            }
                        }
                        1 => doc.push_str("\nWhat is the smallest prime number?\n"),
                        _ => {
                            for _ in 0..(next() % 30) {
                                doc.push_str(fillers[(next() % fillers.len() as u64) as usize]);
                                doc.push(' ');
                            }
                        }
                    }
                }
                let got = index.find_matches(&doc);
                assert_eq!(got, reference_matches(&index, &doc), "ngram {ngram}: {doc:?}");
                hit_docs += !got.is_empty() as usize;
            }
            assert!(hit_docs > 200, "ngram {ngram}: only {hit_docs} documents with matches");
        }
    }
}
