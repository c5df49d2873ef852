//! Process supervision (DeepSeekMath §4.1.3): reasoning steps, their boundary tokens, and per-token advantages.
//!
//! A process reward model scores each reasoning step at the step's last token. Steps are found in the decoded
//! completion text ([`StepBoundary`]) and mapped back to the sampled token ids ([`step_token_ends`]), so the
//! scores land on exactly the tokens the policy generated; the advantages then follow
//! [`crate::advantage::process_advantages`], normalised over all steps of a question's group.

use seekmath_model::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::advantage::{process_advantages, AdvantageOptions, StepReward};
use crate::rollout::Rollout;

/// Where one reasoning step ends and the next begins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "separator")]
pub enum StepBoundary {
    /// Steps are separated by a blank line (`\n\n`), the PRM800K / Math-Shepherd convention.
    #[default]
    BlankLine,
    /// Every line is a step (short chain-of-thought of small models).
    Line,
    /// Steps start with `Step k:` (k a number); text before `Step 1:` is a step of its own.
    StepLabel,
    /// Steps are separated by a custom string.
    Separator(String),
}

impl StepBoundary {
    /// Byte offsets (exclusive) where each non-empty step of `text` ends, trailing whitespace excluded.
    pub fn step_ends(&self, text: &str) -> Vec<usize> {
        let mut starts = vec![0usize];
        match self {
            StepBoundary::BlankLine => starts.extend(text.match_indices("\n\n").map(|(i, _)| i + 2)),
            StepBoundary::Line => starts.extend(text.match_indices('\n').map(|(i, _)| i + 1)),
            StepBoundary::Separator(sep) if !sep.is_empty() => {
                starts.extend(text.match_indices(sep.as_str()).map(|(i, _)| i + sep.len()))
            }
            StepBoundary::Separator(_) => {}
            StepBoundary::StepLabel => starts.extend(step_label_positions(text).into_iter().filter(|&p| p > 0)),
        }
        starts.push(text.len());
        let mut ends = Vec::new();
        for w in starts.windows(2) {
            let piece = &text[w[0]..w[1]];
            // For separator kinds the piece ends with the separator: the step's content is before it.
            let content = match self {
                StepBoundary::Separator(sep) if !sep.is_empty() => piece.strip_suffix(sep.as_str()).unwrap_or(piece),
                _ => piece,
            };
            let trimmed = content.trim_end();
            if !trimmed.trim_start().is_empty() {
                ends.push(w[0] + trimmed.len());
            }
        }
        ends
    }

    /// Joins step texts so that [`StepBoundary::step_ends`] finds them again (for user-labelled files).
    pub fn join(&self, steps: &[String]) -> String {
        match self {
            StepBoundary::BlankLine => steps.join("\n\n"),
            StepBoundary::Line => steps.join("\n"),
            StepBoundary::Separator(sep) => steps.join(sep),
            StepBoundary::StepLabel => steps
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    if step_label_positions(s).first() == Some(&0) {
                        s.clone()
                    } else {
                        format!("Step {}: {s}", k + 1)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Byte positions of `Step <digits>:` markers.
fn step_label_positions(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("Step ") {
        let rest = &text[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(':') {
            out.push(i);
        }
    }
    out
}

/// Maps step end offsets of `decode(completion)` to completion token indices: step `k` ends at the first token
/// whose decoded prefix covers `char_ends[k]`. Steps that land on the same token as the next one are merged (the
/// later one is kept), so the result is strictly increasing, as the advantage estimator requires.
pub fn step_token_ends(tokenizer: &Tokenizer, completion: &[u32], char_ends: &[usize]) -> anyhow::Result<Vec<usize>> {
    let n = completion.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut cache = std::collections::HashMap::new();
    let mut covered = |t: usize| -> anyhow::Result<usize> {
        if let Some(&len) = cache.get(&t) {
            return Ok(len);
        }
        let len = tokenizer.decode(&completion[..=t], true)?.len();
        cache.insert(t, len);
        Ok(len)
    };
    let mut ends: Vec<usize> = Vec::with_capacity(char_ends.len());
    for &e in char_ends {
        let (mut lo, mut hi) = (0usize, n - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if covered(mid)? >= e {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        while ends.last().is_some_and(|&p| p >= lo) {
            ends.pop();
        }
        ends.push(lo);
    }
    Ok(ends)
}

/// The steps of one completion: token end indices (into the completion) found with `boundary`.
pub fn completion_steps(
    tokenizer: &Tokenizer,
    completion: &[u32],
    boundary: &StepBoundary,
) -> anyhow::Result<Vec<usize>> {
    let text = tokenizer.decode(completion, true)?;
    step_token_ends(tokenizer, completion, &boundary.step_ends(&text))
}

/// Anything that scores the reasoning steps of sampled completions (a process reward model, or labels).
pub trait StepScorer {
    /// For each rollout (with the prompt tokens it answered), its scored steps ordered by end token.
    fn score_steps(&self, prompts: &[&[u32]], rollouts: &[Rollout]) -> anyhow::Result<Vec<Vec<StepReward>>>;
}

/// Process-supervised token advantages of a whole batch laid out group-major (`group_size` outputs per question):
/// each group is normalised over all of its steps (§4.1.3).
pub fn group_token_advantages(
    steps: &[Vec<StepReward>],
    rollouts: &[Rollout],
    group_size: usize,
    options: &AdvantageOptions,
) -> anyhow::Result<Vec<Vec<f64>>> {
    anyhow::ensure!(steps.len() == rollouts.len(), "one step list per rollout");
    anyhow::ensure!(group_size > 0 && rollouts.len() % group_size == 0, "ragged groups");
    let mut out = Vec::with_capacity(rollouts.len());
    for (group_steps, group) in steps.chunks(group_size).zip(rollouts.chunks(group_size)) {
        let lengths: Vec<usize> = group.iter().map(|r| r.tokens.len()).collect();
        out.extend(process_advantages(group_steps, &lengths, options)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_line_and_line_steps() {
        let text = "First step.\n\nSecond step.  \n\n\n\nThe answer is 3.\n";
        let ends = StepBoundary::BlankLine.step_ends(text);
        let pieces: Vec<&str> = ends.iter().map(|&e| &text[..e]).collect();
        assert_eq!(ends.len(), 3, "{pieces:?}");
        assert!(pieces[0].ends_with("First step."));
        assert!(pieces[1].ends_with("Second step."));
        assert!(pieces[2].ends_with("is 3."));
        assert_eq!(StepBoundary::Line.step_ends("a\nb\n\nc").len(), 3);
    }

    #[test]
    fn step_labels_and_custom_separator() {
        let text = "Let me see. Step 1: add 2. Step 2: double it.\nStep 10: done";
        let ends = StepBoundary::StepLabel.step_ends(text);
        assert_eq!(ends.len(), 4);
        assert_eq!(&text[..ends[0]], "Let me see.");
        assert!(text[..ends[1]].ends_with("add 2."));
        assert!(text[..ends[2]].ends_with("double it."));
        assert_eq!(ends[3], text.len());
        let sep = StepBoundary::Separator(" ки".into());
        let t = "a = 1 ки b = 2 ки";
        let e = sep.step_ends(t);
        assert_eq!(
            e.iter().map(|&x| &t[..x]).collect::<Vec<_>>(),
            vec!["a = 1", "a = 1 ки b = 2"]
        );
    }

    #[test]
    fn join_round_trips_through_step_ends() {
        let steps: Vec<String> = vec!["x = 1".into(), "y = x + 1".into(), "The answer is 2.".into()];
        for b in [
            StepBoundary::BlankLine,
            StepBoundary::Line,
            StepBoundary::StepLabel,
            StepBoundary::Separator(" ки ".into()),
        ] {
            let text = b.join(&steps);
            let ends = b.step_ends(&text);
            assert_eq!(ends.len(), 3, "{b:?}: {text:?}");
            assert!(text[..ends[1]].ends_with("x + 1"), "{b:?}");
        }
    }

    #[test]
    fn boundary_config_parses_from_toml() {
        #[derive(Deserialize)]
        struct W {
            b: StepBoundary,
        }
        let w: W = toml::from_str("b = { kind = \"separator\", separator = \"###\" }").unwrap();
        assert_eq!(w.b, StepBoundary::Separator("###".into()));
        let w: W = toml::from_str("b = { kind = \"step_label\" }").unwrap();
        assert_eq!(w.b, StepBoundary::StepLabel);
    }
}
