//! The decontamination tokenizer: one pass over bytes, no allocation per token.
//!
//! Normalisation is chosen so that re-wrapped, re-spaced or re-cased copies of a benchmark problem produce the same
//! tokens, while the *numbers and operators* of math text survive: `x^2+1` and `x^2-1`, or `12 apples` and
//! `13 apples`, stay different. Rules:
//! - runs of letters and digits (any script) are tokens, lower-cased; digits are never folded;
//! - each Han/Kana/Hangul character is a token of its own (Chinese and Japanese have no spaces);
//! - the operators `+ - * / = < > ^ %` (and `− × ÷ ≤ ≥ ≠ ±`, folded to ASCII where one exists) are tokens;
//! - all other punctuation, LaTeX `$`, braces and whitespace only separate tokens;
//! - a run directly after `\` is a LaTeX command; it is a token but not a *word* for the formula guard.

/// One token's hash and whether it counts as a natural-language word for the formula guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// 64-bit hash of the normalised token.
    pub hash: u64,
    /// Byte offset of the token's first byte in the text.
    pub start: u32,
    /// Byte offset just past the token.
    pub end: u32,
    /// True for a letter word of two or more characters (or a CJK character) that is not a LaTeX command.
    pub is_word: bool,
}

const OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
/// Multiplier of the word-at-a-time token hash (odd, so each step is invertible).
const WORD_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Byte classes of ASCII; every byte ≥ 0x80 starts or continues a multi-byte character.
const SEP: u8 = 0;
const ALNUM: u8 = 1;
const OP: u8 = 2;
const BACKSLASH: u8 = 3;
const NON_ASCII: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [NON_ASCII; 256];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() {
            ALNUM
        } else if matches!(b, b'+' | b'-' | b'*' | b'/' | b'=' | b'<' | b'>' | b'^' | b'%') {
            OP
        } else if b == b'\\' {
            BACKSLASH
        } else {
            SEP
        };
        i += 1;
    }
    t
};

#[inline]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^ (h >> 29)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

fn fold_operator(c: char) -> Option<u8> {
    Some(match c {
        '−' | '–' => b'-',
        '×' | '·' | '⋅' => b'*',
        '÷' => b'/',
        '≤' => 0xF0,
        '≥' => 0xF1,
        '≠' => 0xF2,
        '±' => 0xF3,
        _ => return None,
    })
}

#[inline]
fn operator_hash(op: u8) -> u64 {
    mix(OFFSET ^ (op as u64) << 8)
}

/// Up to 8 bytes of `bytes` from `at` as a little-endian word, zero-padded past `len` bytes.
#[inline(always)]
fn load_word(bytes: &[u8], at: usize, len: usize) -> u64 {
    let take = len.min(8);
    let word = match bytes.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
        None => {
            let mut buf = [0u8; 8];
            buf[..take].copy_from_slice(&bytes[at..at + take]);
            u64::from_le_bytes(buf)
        }
    };
    if take == 8 {
        word
    } else {
        word & ((1u64 << (8 * take)) - 1)
    }
}

/// Hash of a word token: its lower-cased UTF-8 bytes, eight at a time. `fold` is OR-ed into every word; it is
/// `0x20…20` for ASCII letters and digits read straight from the text (which lower-cases letters and leaves digits
/// alone) and 0 for bytes that are already normalised.
#[inline(always)]
fn word_hash(bytes: &[u8], start: usize, len: usize, fold: u64) -> u64 {
    // Most words are at most 8 bytes and not at the very end of the text: one load, one multiply.
    if len.wrapping_sub(1) < 8 && bytes.len() >= 8 && start <= bytes.len() - 8 {
        // SAFETY: the 8 bytes from `start` are inside `bytes` (checked just above). This replaces a slice-bounds
        // check that cost 3% of the scan's instructions (callgrind, bench corpus).
        let raw = unsafe { bytes.as_ptr().add(start).cast::<u64>().read_unaligned() };
        let mask = u64::MAX >> (64 - 8 * len as u32);
        let w = (u64::from_le(raw) | fold) & mask;
        return ((OFFSET ^ len as u64) ^ w).wrapping_mul(WORD_MUL).rotate_left(31);
    }
    let mut h = OFFSET ^ len as u64;
    let mut off = 0;
    while off < len {
        let rem = len - off;
        let mask = if rem >= 8 { u64::MAX } else { (1u64 << (8 * rem)) - 1 };
        let w = load_word(bytes, start + off, rem) | (fold & mask);
        h = (h ^ w).wrapping_mul(WORD_MUL).rotate_left(31);
        off += 8;
    }
    h
}

/// The character at byte `i` (which starts a multi-byte character) and its length.
#[inline]
fn char_at(text: &str, i: usize) -> (char, usize) {
    let c = text[i..].chars().next().expect("char boundary");
    (c, c.len_utf8())
}

/// Whether `c` continues (or starts) a word run: alphanumeric and not a CJK character (those are tokens alone).
#[inline]
fn is_run_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Letters and whether a non-letter occurs, for the word flag; only computed when callers need it.
fn letters_and_digits(run: &str) -> (u32, bool) {
    let (mut letters, mut digit) = (0u32, false);
    for c in run.chars() {
        if c.is_alphabetic() {
            letters += c.to_lowercase().count() as u32;
        } else {
            digit = true;
        }
    }
    (letters, digit)
}

/// Reusable buffers of the tokenizer: byte-class bitmaps of the text and a buffer for non-ASCII words.
#[derive(Debug, Default, Clone)]
pub struct TokenScratch {
    /// Bit `i` set: byte `i` is an ASCII letter or digit.
    alnum: Vec<u64>,
    /// Bit `i` set: byte `i` is an operator, a backslash, or part of a non-ASCII character.
    special: Vec<u64>,
    /// Bit `i` set: byte `i` is part of a non-ASCII character.
    high: Vec<u64>,
    /// Bit `i` set: a token may start at byte `i` (an ASCII letter/digit run starts there, or the byte is special).
    events: Vec<u64>,
    /// Bit `i` set: an ASCII letter/digit run ends just before byte `i` (one extra zero word past the text).
    ends: Vec<u64>,
    /// Lower-cased bytes of a word with non-ASCII letters.
    word: Vec<u8>,
}

/// Fills the class bitmaps of `bytes`: 64 bytes per step with AVX2 where the CPU has it, else 16 with SSE2 (the
/// x86-64 baseline), the class table for the tail and on other architectures. The bitmaps cover one bit past the
/// end, set in `special` and clear in `alnum`, so that the bit scans below always stop by the end of the text
/// without checking for it. `high` marks the bytes of non-ASCII characters (a subset of `special`).
fn classify(bytes: &[u8], alnum: &mut Vec<u64>, special: &mut Vec<u64>, high: &mut Vec<u64>) {
    let words = bytes.len() / 64 + 1;
    for map in [&mut *alnum, &mut *special, &mut *high] {
        map.clear();
        map.resize(words, 0);
    }
    #[cfg(target_arch = "x86_64")]
    let done = {
        let wide = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { classify_avx2(bytes, alnum, special, high) }
        } else {
            0
        };
        classify_sse2(bytes, wide, alnum, special, high)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    classify_scalar(bytes, done, alnum, special, high);
}

/// The class table from byte `from` on (bitmaps zeroed from there).
fn classify_scalar(bytes: &[u8], from: usize, alnum: &mut [u64], special: &mut [u64], high: &mut [u64]) {
    for (j, &b) in bytes.iter().enumerate().skip(from) {
        match CLASS[b as usize] {
            ALNUM => alnum[j / 64] |= 1 << (j % 64),
            SEP => {}
            _ => special[j / 64] |= 1 << (j % 64),
        }
        high[j / 64] |= ((b >> 7) as u64) << (j % 64);
    }
    let end = bytes.len();
    special[end / 64] |= 1 << (end % 64);
}

/// 16 bytes per step from byte `from` on (a multiple of 16) with SSE2 range and equality compares; returns how
/// far it classified.
#[cfg(target_arch = "x86_64")]
fn classify_sse2(bytes: &[u8], from: usize, alnum: &mut [u64], special: &mut [u64], high: &mut [u64]) -> usize {
    let mut i = from;
    // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes inside `bytes`.
    unsafe {
        use std::arch::x86_64::*;
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        let (zero_lo, nine_hi) = (splat(b'0' - 1), splat(b'9' + 1));
        let (a_lo, z_hi, case) = (splat(b'a' - 1), splat(b'z' + 1), splat(0x20));
        let ops = [b'+', b'-', b'*', b'/', b'=', b'<', b'>', b'^', b'%', b'\\'].map(splat);
        while i + 16 <= bytes.len() {
            let v = _mm_loadu_si128(bytes.as_ptr().add(i).cast());
            let digit = _mm_and_si128(_mm_cmpgt_epi8(v, zero_lo), _mm_cmpgt_epi8(nine_hi, v));
            let lower = _mm_or_si128(v, case);
            let letter = _mm_and_si128(_mm_cmpgt_epi8(lower, a_lo), _mm_cmpgt_epi8(z_hi, lower));
            let mut op = _mm_cmpeq_epi8(v, ops[0]);
            for &o in &ops[1..] {
                op = _mm_or_si128(op, _mm_cmpeq_epi8(v, o));
            }
            let a = _mm_movemask_epi8(_mm_or_si128(digit, letter)) as u32 as u64;
            let h = _mm_movemask_epi8(v) as u32 as u64;
            let sp = _mm_movemask_epi8(op) as u32 as u64 | h;
            alnum[i / 64] |= a << (i % 64);
            special[i / 64] |= sp << (i % 64);
            high[i / 64] |= h << (i % 64);
            i += 16;
        }
    }
    i
}

/// 32 bytes per instruction with AVX2: each byte's class comes from two 16-entry nibble tables (`vpshufb`), the
/// byte is in a class when the entries for its high and low nibble share a bit. Six bits cover the classes as
/// rectangles in nibble space: digits `3×0-9`, letters `4,6×1-F` and `5,7×0-A` (alnum, bits 0-2), operators
/// `2×{5,A,B,D,F}` (`% * + - /`), `3×C-E` (`< = >`) and `5×{C,E}` (`\ ^`) (bits 3-5); non-ASCII bytes are the sign bit.
/// Returns how many bytes it classified (whole 64-byte words). Measured on the shared dev machine (callgrind,
/// bench corpus): classifying went from 3.5 instructions per byte (SSE2) to 0.8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn classify_avx2(bytes: &[u8], alnum: &mut [u64], special: &mut [u64], high: &mut [u64]) -> usize {
    use std::arch::x86_64::*;
    #[rustfmt::skip]
    let lo_table = _mm256_setr_epi8(
        0x05, 0x07, 0x07, 0x07, 0x07, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x0e, 0x0a, 0x32, 0x1a, 0x32, 0x0a,
        0x05, 0x07, 0x07, 0x07, 0x07, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x0e, 0x0a, 0x32, 0x1a, 0x32, 0x0a,
    );
    #[rustfmt::skip]
    let hi_table = _mm256_setr_epi8(
        0, 0, 0x08, 0x11, 0x02, 0x24, 0x02, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0x08, 0x11, 0x02, 0x24, 0x02, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,
    );
    let mut i = 0;
    while i + 64 <= bytes.len() {
        // SAFETY: bytes i..i+64 are inside `bytes`.
        let (p0, p1) = unsafe { (bytes.as_ptr().add(i), bytes.as_ptr().add(i + 32)) };
        // SAFETY: 32 readable bytes at each pointer; AVX2 is enabled in this function.
        let ((a0, s0, h0), (a1, s1, h1)) = unsafe {
            (
                classify_avx2_32(p0, lo_table, hi_table),
                classify_avx2_32(p1, lo_table, hi_table),
            )
        };
        alnum[i / 64] = a0 | a1 << 32;
        special[i / 64] = s0 | s1 << 32;
        high[i / 64] = h0 | h1 << 32;
        i += 64;
    }
    i
}

/// (alnum, special, high) masks of the 32 bytes at `p` (see [`classify_avx2`]; a function, not a closure, so that it is
/// compiled with AVX2 too).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn classify_avx2_32(
    p: *const u8,
    lo_table: std::arch::x86_64::__m256i,
    hi_table: std::arch::x86_64::__m256i,
) -> (u64, u64, u64) {
    use std::arch::x86_64::*;
    let nibble = _mm256_set1_epi8(0x0f);
    // SAFETY: callers pass a pointer with 32 readable bytes.
    let v = unsafe { _mm256_loadu_si256(p.cast()) };
    let lo = _mm256_and_si256(v, nibble);
    let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    let class = _mm256_and_si256(_mm256_shuffle_epi8(lo_table, lo), _mm256_shuffle_epi8(hi_table, hi));
    let zero = _mm256_setzero_si256();
    let not_alnum = _mm256_cmpeq_epi8(_mm256_and_si256(class, _mm256_set1_epi8(0x07)), zero);
    let not_special = _mm256_cmpeq_epi8(_mm256_and_si256(class, _mm256_set1_epi8(0x38)), zero);
    let a = !(_mm256_movemask_epi8(not_alnum) as u32);
    let h = _mm256_movemask_epi8(v) as u32;
    let s = !(_mm256_movemask_epi8(not_special) as u32) | h;
    (a as u64, s as u64, h as u64)
}

/// First position ≥ `from` whose bit is set in `a | b` (the end sentinel when no token is left).
#[inline(always)]
fn next_set(a: &[u64], b: &[u64], from: usize) -> usize {
    let mut w = from / 64;
    // Shifting the word down (rather than masking it) gives the distance directly; usually the bit is in it.
    let bits = (a[w] | b[w]) >> (from % 64);
    if bits != 0 {
        return from + bits.trailing_zeros() as usize;
    }
    loop {
        w += 1;
        let bits = a[w] | b[w];
        if bits != 0 {
            return w * 64 + bits.trailing_zeros() as usize;
        }
    }
}

/// First position ≥ `from` whose bit is clear in `a` (at most the end of the text, whose bit is clear).
#[inline(always)]
fn next_clear(a: &[u64], from: usize) -> usize {
    let mut w = from / 64;
    let bits = !a[w] >> (from % 64);
    if bits != 0 {
        return from + bits.trailing_zeros() as usize;
    }
    loop {
        w += 1;
        let bits = !a[w];
        if bits != 0 {
            return w * 64 + bits.trailing_zeros() as usize;
        }
    }
}

/// The full tokenizer, with word flags (the scan uses [`scan_hashes`]). A vectorised pass first marks ASCII
/// letters/digits and "special" bytes (operators, backslash, non-ASCII); the token loop then jumps between marked
/// positions with bit scans instead of branching on every byte. ASCII words, by far the common case, are hashed
/// eight bytes at a time straight from the text; a word holding a non-ASCII letter is lower-cased into a buffer
/// first, so both paths hash the same lower-cased bytes.
#[inline(always)]
fn scan(text: &str, scratch: &mut TokenScratch, mut emit: impl FnMut(Token)) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let TokenScratch {
        alnum,
        special,
        high,
        word,
        ..
    } = scratch;
    classify(bytes, alnum, special, high);
    // Plain slices from here on, so that the loop keeps their pointers in registers.
    let (alnum, special): (&[u64], &[u64]) = (alnum, special);
    let mut i = 0;
    let mut after_backslash = false;
    loop {
        let next = next_set(alnum, special, i);
        if next > i {
            after_backslash = false; // only separators in between
        }
        i = next;
        if i >= n {
            break;
        }
        // One call site for `emit`, so that it is inlined into the loop.
        // The alnum bitmap answers the common case without a table lookup.
        let class = if alnum[i / 64] & (1 << (i % 64)) != 0 {
            ALNUM
        } else {
            CLASS[bytes[i] as usize]
        };
        let token = match class {
            ALNUM => {
                let start = i;
                i = next_clear(alnum, i);
                let hash = if i < n && bytes[i] >= 0x80 && is_run_char(char_at(text, i).0) {
                    i = word_slow(text, start, i, word);
                    word_hash(word, 0, word.len(), 0)
                } else {
                    word_hash(bytes, start, i - start, 0x2020_2020_2020_2020)
                };
                word_token(text, hash, start, i, after_backslash)
            }
            OP => {
                after_backslash = false;
                i += 1;
                Token {
                    hash: operator_hash(bytes[i - 1]),
                    start: i as u32 - 1,
                    end: i as u32,
                    is_word: false,
                }
            }
            BACKSLASH => {
                after_backslash = true;
                i += 1;
                continue;
            }
            _ => {
                let (c, len) = char_at(text, i);
                let start = i;
                if is_cjk(c) {
                    after_backslash = false;
                    i += len;
                    Token {
                        hash: mix(OFFSET ^ ((c as u64) << 16)),
                        start: start as u32,
                        end: i as u32,
                        is_word: true,
                    }
                } else if c.is_alphanumeric() {
                    i = word_slow(text, start, start, word);
                    let hash = word_hash(word, 0, word.len(), 0);
                    word_token(text, hash, start, i, after_backslash)
                } else if let Some(op) = fold_operator(c) {
                    after_backslash = false;
                    i += len;
                    Token {
                        hash: operator_hash(op),
                        start: start as u32,
                        end: i as u32,
                        is_word: false,
                    }
                } else {
                    after_backslash = false;
                    i += len;
                    continue;
                }
            }
        };
        emit(token);
    }
}

/// Lower-cases the word that starts at `start` into `buf` (its ASCII prefix up to `ascii_end` is already known)
/// and returns where the word ends.
#[cold]
fn word_slow(text: &str, start: usize, ascii_end: usize, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.extend(text.as_bytes()[start..ascii_end].iter().map(u8::to_ascii_lowercase));
    let mut i = ascii_end;
    let mut utf8 = [0u8; 4];
    for c in text[ascii_end..].chars() {
        if !is_run_char(c) {
            break;
        }
        for lc in c.to_lowercase() {
            buf.extend_from_slice(lc.encode_utf8(&mut utf8).as_bytes());
        }
        i += c.len_utf8();
    }
    i
}

#[inline(always)]
fn word_token(text: &str, hash: u64, start: usize, end: usize, after_backslash: bool) -> Token {
    let is_word = !after_backslash && {
        let (letters, has_digit) = letters_and_digits(&text[start..end]);
        letters >= 2 && !has_digit
    };
    Token {
        hash,
        start: start as u32,
        end: end as u32,
        is_word,
    }
}

/// Calls `emit` for every token of `text`, in order.
#[inline]
pub fn for_each_token(text: &str, emit: impl FnMut(Token)) {
    scan(text, &mut TokenScratch::default(), emit);
}

/// [`for_each_token`] without the word flag (`is_word` is always false), for scans that only need hashes and
/// offsets, with reusable buffers.
#[inline]
pub fn for_each_token_hash(text: &str, scratch: &mut TokenScratch, emit: impl FnMut(Token)) {
    scan_hashes(text, scratch, emit);
}

/// Token starts (`events`: starts of ASCII letter/digit runs and special bytes) and run ends (`ends`: the byte
/// after each run) from the class bitmaps, a few instructions per 64 bytes.
fn mark_runs(alnum: &[u64], special: &[u64], events: &mut Vec<u64>, ends: &mut Vec<u64>) {
    events.clear();
    ends.clear();
    let mut carry = 0;
    for (&a, &s) in alnum.iter().zip(special) {
        // Bit i of `before`: byte i - 1 is a letter or digit.
        let before = a << 1 | carry;
        carry = a >> 63;
        events.push(a & !before | s);
        ends.push(!a & before);
    }
    // Lets a resynchronisation at the end of the text read one word past it.
    ends.push(0);
}

/// The scan's tokenizer (no word flags). Token starts and ASCII run ends are two bitmaps, read as two streams of
/// set bits: each ASCII word takes its start from one stream and its end from the other, so finding a word costs
/// two bit pops whose loop-carried dependency is one instruction (`x & (x - 1)`), not a chain of dependent bit
/// scans through the text position (about the same instruction count, a shorter dependency chain; see
/// docs/benchmarks.md, Decontamination throughput). Tokens, offsets and hashes equal those of [`scan`].
#[inline(always)]
fn scan_hashes(text: &str, scratch: &mut TokenScratch, mut emit: impl FnMut(Token)) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let TokenScratch {
        alnum,
        special,
        high,
        events,
        ends,
        word,
    } = scratch;
    classify(bytes, alnum, special, high);
    mark_runs(alnum, special, events, ends);
    let (alnum, high, events, ends): (&[u64], &[u64], &[u64], &[u64]) = (alnum, high, events, ends);
    // Each stream: the bit position of its current word and the bits not yet taken.
    let (mut event_base, mut event_bits) = (0usize, events[0]);
    let (mut end_base, mut end_bits) = (0usize, ends[0]);
    // Moves both streams past a token that the bitmaps do not describe (one with non-ASCII characters), which
    // ends at `next`: token starts from `next` on, run ends after it (a run end at `next` belongs to an ASCII run
    // inside that token).
    macro_rules! resync {
        ($next:expr) => {{
            let next: usize = $next;
            event_base = next & !63;
            event_bits = events[next / 64] & (u64::MAX << (next % 64));
            let after = next + 1;
            end_base = after & !63;
            end_bits = ends[after / 64] & (u64::MAX << (after % 64));
        }};
    }
    loop {
        // The start sentinel at `n` ends this loop before the events run out.
        while event_bits == 0 {
            event_base += 64;
            event_bits = events[event_base / 64];
        }
        let start = event_base + event_bits.trailing_zeros() as usize;
        event_bits &= event_bits - 1;
        if start >= n {
            break;
        }
        // One call site for `emit`, so that it is inlined into the loop.
        let token = if alnum[start / 64] >> (start % 64) & 1 != 0 {
            // Every ASCII run has an end (at most `n`), taken in order.
            while end_bits == 0 {
                end_base += 64;
                end_bits = ends[end_base / 64];
            }
            let end = end_base + end_bits.trailing_zeros() as usize;
            end_bits &= end_bits - 1;
            if high[end / 64] >> (end % 64) & 1 != 0 && is_run_char(char_at(text, end).0) {
                // The word goes on with a non-ASCII letter.
                let end = word_slow(text, start, end, word);
                resync!(end);
                Token {
                    hash: word_hash(word, 0, word.len(), 0),
                    start: start as u32,
                    end: end as u32,
                    is_word: false,
                }
            } else {
                Token {
                    hash: word_hash(bytes, start, end - start, 0x2020_2020_2020_2020),
                    start: start as u32,
                    end: end as u32,
                    is_word: false,
                }
            }
        } else if bytes[start] < 0x80 {
            // An ASCII operator is a token; a backslash only separates here (it matters for word flags only).
            let b = bytes[start];
            if CLASS[b as usize] != OP {
                continue;
            }
            Token {
                hash: operator_hash(b),
                start: start as u32,
                end: start as u32 + 1,
                is_word: false,
            }
        } else {
            let (c, len) = char_at(text, start);
            let (hash, end) = if is_cjk(c) {
                (Some(mix(OFFSET ^ ((c as u64) << 16))), start + len)
            } else if c.is_alphanumeric() {
                let end = word_slow(text, start, start, word);
                (Some(word_hash(word, 0, word.len(), 0)), end)
            } else {
                (fold_operator(c).map(operator_hash), start + len)
            };
            resync!(end);
            let Some(hash) = hash else { continue };
            Token {
                hash,
                start: start as u32,
                end: end as u32,
                is_word: false,
            }
        };
        emit(token);
    }
}

/// All tokens of `text` (convenience for building indexes and tests).
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for_each_token(text, |t| out.push(t));
    out
}

/// Combines token hashes into one n-gram key (order-sensitive).
#[inline]
pub fn ngram_key(hashes: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = 0u64;
    for x in hashes {
        h = h.wrapping_mul(ROLL_BASE).wrapping_add(x);
    }
    finish_key(h)
}

/// Final mixing of a rolling polynomial value into an n-gram key (see [`ngram_key`]). The polynomial's high bits
/// are well mixed, its low bits only depend on the low bits of the token hashes; folding the high half down (a
/// bijection, so equal keys stay exactly as rare) is enough for the filter, which takes its bit positions from the
/// low bits, and costs two instructions per window instead of a full finaliser.
#[inline]
pub fn finish_key(rolling: u64) -> u64 {
    rolling ^ (rolling >> 32)
}

/// Base of the rolling polynomial hash used for n-gram keys (odd, so multiplication is invertible mod 2⁶⁴).
pub const ROLL_BASE: u64 = 0x100_0000_01B3_u64 | 1;

/// The first, byte-at-a-time tokenizer, kept as the oracle for the word-at-a-time one: same tokens, same offsets
/// and word flags, and equal hashes exactly where its hashes are equal.
#[cfg(test)]
mod reference {
    use super::{fold_operator, is_cjk, mix, Token, OFFSET};
    const PRIME: u64 = 0x0000_0100_0000_01B3;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Class {
        Sep,
        Alnum,
        Op,
        Backslash,
    }

    const fn class_table() -> [Class; 128] {
        let mut t = [Class::Sep; 128];
        let mut i = 0;
        while i < 128 {
            let b = i as u8;
            t[i] = if b.is_ascii_alphanumeric() {
                Class::Alnum
            } else if matches!(b, b'+' | b'-' | b'*' | b'/' | b'=' | b'<' | b'>' | b'^' | b'%') {
                Class::Op
            } else if b == b'\\' {
                Class::Backslash
            } else {
                Class::Sep
            };
            i += 1;
        }
        t
    }

    static CLASS: [Class; 128] = class_table();

    /// Lower-cased byte for ASCII letters and digits, 0 for every other byte.
    static LOWER_ALNUM: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut i = 0;
        while i < 128 {
            let b = i as u8;
            if b.is_ascii_alphanumeric() {
                t[i] = b.to_ascii_lowercase();
            }
            i += 1;
        }
        t
    };

    /// Calls `emit` for every token of `text`, in order.
    pub fn reference_tokens(text: &str, mut emit: impl FnMut(Token)) {
        let bytes = text.as_bytes();
        let n = bytes.len();
        let mut i = 0;
        let mut after_backslash = false;
        // Pending alphanumeric run: hash, start, letters seen, whether it holds a non-letter.
        let mut run: Option<(u64, usize, u32, bool)> = None;
        macro_rules! flush {
            ($end:expr) => {
                if let Some((h, start, letters, has_digit)) = run.take() {
                    let is_word = !after_backslash && letters >= 2 && !has_digit;
                    emit(Token {
                        hash: mix(h),
                        start: start as u32,
                        end: $end as u32,
                        is_word,
                    });
                }
            };
        }
        while i < n {
            let b = bytes[i];
            if b < 128 {
                match CLASS[b as usize] {
                    Class::Alnum => {
                        // Hot loop: consume the whole ASCII run at once.
                        let (mut h, start, mut letters, mut has_digit) = run.take().unwrap_or((OFFSET, i, 0, false));
                        while i < n {
                            let c = bytes[i];
                            let lower = LOWER_ALNUM[c as usize];
                            if lower == 0 {
                                break;
                            }
                            h = (h ^ lower as u64).wrapping_mul(PRIME);
                            let letter = c.is_ascii_alphabetic();
                            letters += letter as u32;
                            has_digit |= !letter;
                            i += 1;
                        }
                        run = Some((h, start, letters, has_digit));
                        continue;
                    }
                    Class::Sep => {
                        flush!(i);
                        after_backslash = false;
                    }
                    Class::Op => {
                        flush!(i);
                        after_backslash = false;
                        emit(Token {
                            hash: mix(OFFSET ^ (b as u64) << 8),
                            start: i as u32,
                            end: i as u32 + 1,
                            is_word: false,
                        });
                    }
                    Class::Backslash => {
                        flush!(i);
                        after_backslash = true;
                    }
                }
                i += 1;
                continue;
            }
            let c = text[i..].chars().next().expect("char boundary");
            let len = c.len_utf8();
            if is_cjk(c) {
                flush!(i);
                after_backslash = false;
                emit(Token {
                    hash: mix(OFFSET ^ ((c as u64) << 16)),
                    start: i as u32,
                    end: (i + len) as u32,
                    is_word: true,
                });
            } else if c.is_alphanumeric() {
                let letter = c.is_alphabetic() as u32;
                for lc in c.to_lowercase() {
                    let v = lc as u64;
                    match &mut run {
                        Some((h, _, letters, has_digit)) => {
                            *h = (*h ^ v).wrapping_mul(PRIME);
                            *letters += letter;
                            *has_digit |= letter == 0;
                        }
                        None => run = Some(((OFFSET ^ v).wrapping_mul(PRIME), i, letter, letter == 0)),
                    }
                }
            } else if let Some(op) = fold_operator(c) {
                flush!(i);
                after_backslash = false;
                emit(Token {
                    hash: mix(OFFSET ^ (op as u64) << 8),
                    start: i as u32,
                    end: (i + len) as u32,
                    is_word: false,
                });
            } else {
                flush!(i);
                after_backslash = false;
            }
            i += len;
        }
        flush!(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(t: &str) -> Vec<u64> {
        tokens(t).iter().map(|t| t.hash).collect()
    }

    #[test]
    fn vector_classifiers_agree_with_the_class_table() {
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        for len in (0..300).chain([1000, 4096 + 17]) {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let fresh = || [0; 3].map(|_| vec![0u64; len / 64 + 1]);
            let [mut a, mut s, mut h] = fresh();
            classify_scalar(&bytes, 0, &mut a, &mut s, &mut h);
            let [mut va, mut vs, mut vh] = [0; 3].map(|_| Vec::new());
            classify(&bytes, &mut va, &mut vs, &mut vh);
            assert_eq!((&va, &vs, &vh), (&a, &s, &h), "len {len}");
            #[cfg(target_arch = "x86_64")]
            {
                let [mut sa, mut ss, mut sh] = fresh();
                let done = classify_sse2(&bytes, 0, &mut sa, &mut ss, &mut sh);
                classify_scalar(&bytes, done, &mut sa, &mut ss, &mut sh);
                assert_eq!((&sa, &ss, &sh), (&a, &s, &h), "sse2, len {len}");
                if std::arch::is_x86_feature_detected!("avx2") {
                    let [mut xa, mut xs, mut xh] = fresh();
                    // SAFETY: the CPU has AVX2.
                    let done = unsafe { classify_avx2(&bytes, &mut xa, &mut xs, &mut xh) };
                    classify_scalar(&bytes, done, &mut xa, &mut xs, &mut xh);
                    assert_eq!((&xa, &xs, &xh), (&a, &s, &h), "avx2, len {len}");
                }
            }
        }
    }

    #[test]
    fn case_spacing_and_wrapping_do_not_matter() {
        assert_eq!(
            hashes("Natalia sold clips to 48 of her friends."),
            hashes("natalia  SOLD\nclips to\t48 of her friends")
        );
    }

    #[test]
    fn numbers_and_operators_are_kept() {
        assert_ne!(hashes("x^2+1"), hashes("x^2-1"));
        assert_ne!(hashes("12 apples"), hashes("13 apples"));
        assert_eq!(hashes("x − 1"), hashes("x-1"));
        assert_eq!(tokens("$\\frac{a}{b}$ = 3.5").len(), 6); // frac a b = 3 5
    }

    #[test]
    fn words_exclude_commands_numbers_and_single_letters() {
        let w: Vec<bool> = tokens("Let \\alpha be x 12 3a 已知")
            .iter()
            .map(|t| t.is_word)
            .collect();
        assert_eq!(w, vec![true, false, true, false, false, false, true, true]);
    }

    #[test]
    fn offsets_point_at_the_token() {
        let text = "Héllo, wörld + 2";
        let got: Vec<&str> = tokens(text)
            .iter()
            .map(|t| &text[t.start as usize..t.end as usize])
            .collect();
        assert_eq!(got, vec!["Héllo", "wörld", "+", "2"]);
    }

    #[test]
    fn matches_the_reference_tokenizer() {
        use std::collections::HashMap;
        let texts = [
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
            "Héllo, WÖRLD + 2 − 3 ≤ 4; İstanbul ΣΊΣΥΦΟΣ straße STRASSE x² ½ \\alpha\\beta2 \\frac{a}{b}",
            "已知 a+b=3，求 ab 的最大值。日本語のテキスト 한국어 mixedİcase ǅemal",
            "averyveryverylongwordthatspansmorethaneightbytes AVERYVERYVERYLONGWORDTHATSPANSMORETHANEIGHTBYTES",
            "1234567 12345678 123456789 a1 1a ab Ab aB \\x2 x_1^{10} $$\\int_0^1 f(x)\\,dx$$ end",
            "trailing ascii run at the very end z",
            "ünïcödé at start and ÅNGSTRÖM, ﬁne ligature, Ⅻ roman, ٣ arabic digit, ä",
        ];
        let mut new_of_old: HashMap<u64, u64> = HashMap::new();
        let mut old_of_new: HashMap<u64, u64> = HashMap::new();
        for text in texts {
            let mut old = Vec::new();
            reference::reference_tokens(text, |t| old.push(t));
            let new = tokens(text);
            assert_eq!(old.len(), new.len(), "{text}");
            for (o, n) in old.iter().zip(&new) {
                assert_eq!((o.start, o.end, o.is_word), (n.start, n.end, n.is_word), "{text}");
                assert_eq!(*new_of_old.entry(o.hash).or_insert(n.hash), n.hash, "{text}");
                assert_eq!(*old_of_new.entry(n.hash).or_insert(o.hash), o.hash, "{text}");
            }
            let mut scratch = TokenScratch::default();
            let mut fast = Vec::new();
            for_each_token_hash(text, &mut scratch, |t| fast.push((t.hash, t.start, t.end)));
            let full: Vec<_> = new.iter().map(|t| (t.hash, t.start, t.end)).collect();
            assert_eq!(fast, full);
        }
        assert!(new_of_old.len() > 60);
    }

    #[test]
    fn matches_the_reference_on_random_text() {
        // Seeded random strings over an alphabet that hits every branch: ASCII words crossing the 16-byte SIMD
        // and 64-bit bitmap boundaries, operators, backslashes, non-ASCII letters, CJK, folded operators.
        let alphabet: Vec<char> = "aZz09 \n\t+-*/=<>^%\\$.,{}éÉİß中ア한−×≤½Ⅻ٣ﬁ"
            .chars()
            .chain(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    .chars()
                    .cycle()
                    .take(120),
            )
            .collect();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut scratch = TokenScratch::default();
        for _ in 0..3000 {
            let len = (next() % 300) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut old = Vec::new();
            reference::reference_tokens(&text, |t| old.push(t));
            let new = tokens(&text);
            let key = |t: &Token| (t.start, t.end, t.is_word);
            assert_eq!(
                old.iter().map(key).collect::<Vec<_>>(),
                new.iter().map(key).collect::<Vec<_>>(),
                "{text:?}"
            );
            for (i, a) in old.iter().enumerate() {
                for (j, b) in old.iter().enumerate().skip(i + 1) {
                    assert_eq!(a.hash == b.hash, new[i].hash == new[j].hash, "{text:?}");
                }
            }
            // The scan's bitmap-stream tokenizer gives the same hashes and offsets.
            let mut fast = Vec::new();
            for_each_token_hash(&text, &mut scratch, |t| fast.push((t.hash, t.start, t.end)));
            let full: Vec<_> = new.iter().map(|t| (t.hash, t.start, t.end)).collect();
            assert_eq!(fast, full, "{text:?}");
        }
    }
}
