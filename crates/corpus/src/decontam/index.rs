//! The benchmark n-gram index and the per-document scan.

use super::benchmarks::Benchmark;
use super::tokens::{for_each_token, for_each_token_hash, ngram_key, tokens, Token, TokenScratch, ROLL_BASE};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Decontamination parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecontamConfig {
    /// n-gram length in tokens (the paper: 10).
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
    tokens: Vec<Token>,
    hashes: Vec<u64>,
    starts: Vec<u32>,
    keys: Vec<u64>,
    candidates: Vec<u32>,
    token_scratch: TokenScratch,
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
        assert!(config.ngram >= 2, "decontamination n-grams need at least two tokens");
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
        let words = (ngrams.len() * filter_bits_per_key() / 64)
            .max(1024)
            .next_power_of_two();
        let filter_shift = 64 - words.trailing_zeros();
        let mut filter = crate::huge::HugeBuf::<u64>::zeroed(words).expect("mapping the n-gram filter");
        for &key in ngrams.keys() {
            let (w, mask) = filter_slot(key, filter_shift);
            filter[w] |= mask;
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

    /// The scan in three passes over reusable buffers: (1) one tokenising pass that keeps only each token's hash
    /// and start, rolls the window keys and prefetches each key's filter word; (2) the filter, in a tight loop of
    /// independent loads so that cache misses overlap; (3) exact lookups for the few windows that pass. Token end
    /// offsets and word flags are only needed to report a match, so the rare document with a hit is tokenised
    /// again in full instead of paying for them on every token.
    fn find_matches_with(&self, text: &str, scratch: &mut Scratch) -> Vec<Match> {
        let n = self.config.ngram;
        let Scratch {
            tokens: toks,
            hashes,
            starts,
            keys,
            candidates,
            token_scratch,
        } = scratch;
        hashes.clear();
        starts.clear();
        keys.clear();
        candidates.clear();
        let scan_ngrams = !self.ngrams.is_empty();
        let top = ROLL_BASE.wrapping_pow(n as u32);
        let mut rolling = 0u64;
        let (filter, shift) = (&self.filter[..], self.filter_shift);
        for_each_token_hash(text, token_scratch, |t| {
            let i = hashes.len();
            hashes.push(t.hash);
            starts.push(t.start);
            if scan_ngrams {
                rolling = rolling.wrapping_mul(ROLL_BASE).wrapping_add(t.hash);
                if i >= n {
                    rolling = rolling.wrapping_sub(hashes[i - n].wrapping_mul(top));
                }
                if i + 1 >= n {
                    let key = super::tokens::finish_key(rolling);
                    prefetch(&filter[filter_slot(key, shift).0]);
                    keys.push(key);
                }
            }
        });
        let mut matches = Vec::new();
        for (w, &key) in keys.iter().enumerate() {
            if filter_contains(filter, shift, key) {
                candidates.push(w as u32);
            }
        }
        candidates.retain(|&w| self.ngrams.contains_key(&keys[w as usize]));
        if !candidates.is_empty() {
            toks.clear();
            for_each_token(text, |t| toks.push(t));
            debug_assert_eq!(toks.len(), hashes.len());
            // Window `w` covers tokens w..w+n. Runs of consecutive matching windows count when anchored.
            let mut run: Option<(Match, bool, u32)> = None;
            let finish = |run: &mut Option<(Match, bool, u32)>, matches: &mut Vec<Match>| {
                if let Some((m, true, _)) = run.take() {
                    matches.push(m);
                }
            };
            for &w in candidates.iter() {
                let entry = self.ngrams[&keys[w as usize]];
                let end = toks[w as usize + n - 1].end as usize;
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
                            start: toks[w as usize].start as usize,
                            end,
                            source: entry.source,
                            short: false,
                        };
                        run = Some((m, !entry.guarded, w));
                    }
                }
            }
            finish(&mut run, &mut matches);
        }
        if !self.short.is_empty() {
            // Whole-line matches of short questions, reusing the hashes: a line's tokens are those starting in it.
            let mut ti = 0;
            let mut line_start = 0;
            for line in text.split_inclusive('\n') {
                let line_end = line_start + line.len();
                let first = ti;
                while ti < starts.len() && (starts[ti] as usize) < line_end {
                    ti += 1;
                }
                let count = ti - first;
                if count >= self.config.short_min_tokens && count < n {
                    if let Some(entry) = self.short.get(&ngram_key(hashes[first..ti].iter().copied())) {
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
        }
        matches
    }
}

/// Asks the CPU to start loading a filter word now; the check happens a pass later, by when it has arrived.
#[inline(always)]
fn prefetch(word: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults and `word` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((word as *const u64).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// Filter bits per indexed key before rounding the filter up to a power of two words (so 8–16 in effect); env
/// `SEEKMATH_DECONTAM_FILTER_BITS` overrides it for measurements. With three bits per key in one 64-bit word that
/// is a ~1-2% false-positive rate and, for the shipped benchmark sets (~635k keys), a 1 MB filter that fits the L2
/// of a server core. (On the shared dev machine 4–32 bits per key scanned at about the same speed; see
/// docs/benchmarks.md, Corpus II.)
fn filter_bits_per_key() -> usize {
    std::env::var("SEEKMATH_DECONTAM_FILTER_BITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// Bits of the filter word that `key` sets: three positions from the key's low 18 bits (the word index comes
/// from its high bits).
#[inline]
fn filter_slot(key: u64, shift: u32) -> (usize, u64) {
    let word = if shift >= 64 { 0 } else { (key >> shift) as usize };
    (
        word,
        (1u64 << (key & 63)) | (1u64 << ((key >> 6) & 63)) | (1u64 << ((key >> 12) & 63)),
    )
}

#[inline]
fn filter_contains(filter: &[u64], shift: u32, key: u64) -> bool {
    let (slot, mask) = filter_slot(key, shift);
    filter[slot] & mask == mask
}
