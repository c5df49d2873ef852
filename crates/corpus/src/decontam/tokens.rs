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

const PRIME: u64 = 0x0000_0100_0000_01B3;
const OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

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

/// Calls `emit` for every token of `text`, in order.
#[inline]
pub fn for_each_token(text: &str, mut emit: impl FnMut(Token)) {
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

/// Final mixing of a rolling polynomial value into an n-gram key (see [`ngram_key`]).
#[inline]
pub fn finish_key(rolling: u64) -> u64 {
    mix(rolling)
}

/// Base of the rolling polynomial hash used for n-gram keys (odd, so multiplication is invertible mod 2⁶⁴).
pub const ROLL_BASE: u64 = 0x100_0000_01B3_u64 | 1;

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(t: &str) -> Vec<u64> {
        tokens(t).iter().map(|t| t.hash).collect()
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
}
