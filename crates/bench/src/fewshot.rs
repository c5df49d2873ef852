//! Few-shot prompt sets in the JSON form of DeepSeek-Math's `few_shot_prompts/*.py` (shipped in
//! `shared/data/benchmarks/fewshot`): exemplars, the separator between them, the format template and stop words.
//!
//! Prompts are rendered the way DeepSeek-Math's `FewShotPrompting.format_prompt` does it: substitute
//! `{few_shot_prompt}`, `{task_input}` and `{task_output}` (empty at test time) into the template, then strip
//! trailing and leading whitespace, so the prompt ends right after `A:` / `Solution:`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One exemplar of a prompt set; `text` is its exact slice of the full few-shot prompt.
#[derive(Debug, Clone, Deserialize)]
pub struct Exemplar {
    /// The exemplar as it appears in the prompt (question and worked answer).
    pub text: String,
}

/// A few-shot prompt set loaded from JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct FewShotPromptSet {
    /// Prompt class name in DeepSeek-Math (e.g. `CoTGSMPrompt`).
    #[serde(rename = "class")]
    pub class_name: String,
    /// The full few-shot block (all exemplars joined by `separator`).
    pub few_shot_prompt: String,
    /// Separator between exemplars.
    pub separator: String,
    /// The exemplars, in prompt order.
    pub exemplars: Vec<Exemplar>,
    /// Template with `{few_shot_prompt}`, `{task_input}` and `{task_output}` placeholders.
    pub format_template: String,
    /// Strings that end a completion (the start of the next exemplar).
    pub stop_words: Vec<String>,
}

impl FewShotPromptSet {
    /// Reads a prompt set file and checks that its template only uses the supported placeholders.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read prompt set {}", path.display()))?;
        let set: Self =
            serde_json::from_str(&text).with_context(|| format!("{} is not a few-shot prompt set", path.display()))?;
        render_template(&set.format_template, "", "", "").with_context(|| format!("in {}", path.display()))?;
        if set.exemplars.is_empty() {
            bail!("{}: prompt set has no exemplars", path.display());
        }
        Ok(set)
    }

    /// Number of exemplars available.
    pub fn len(&self) -> usize {
        self.exemplars.len()
    }

    /// Whether the set has no exemplars (never true for a loaded set).
    pub fn is_empty(&self) -> bool {
        self.exemplars.is_empty()
    }

    /// The prompt for `task_input` with the first `shots` exemplars (`None` = all, the published prompt).
    pub fn format(&self, task_input: &str, shots: Option<usize>) -> Result<String> {
        let block = match shots {
            None => self.few_shot_prompt.clone(),
            Some(n) if n == self.exemplars.len() => self.few_shot_prompt.clone(),
            Some(n) if n <= self.exemplars.len() => self.exemplars[..n]
                .iter()
                .map(|e| e.text.as_str())
                .collect::<Vec<_>>()
                .join(&self.separator),
            Some(n) => bail!(
                "{} has {} exemplars; {n} shots requested",
                self.class_name,
                self.exemplars.len()
            ),
        };
        let prompt = render_template(&self.format_template, &block, task_input, "")?;
        Ok(prompt.trim_end().trim_start().to_string())
    }
}

/// Single-pass substitution, so a placeholder-looking string inside the question is left alone.
fn render_template(template: &str, few_shot: &str, input: &str, output: &str) -> Result<String> {
    let mut out = String::with_capacity(template.len() + few_shot.len() + input.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').context("unclosed `{` in format_template")?;
        match &after[..end] {
            "few_shot_prompt" => out.push_str(few_shot),
            "task_input" => out.push_str(input),
            "task_output" => out.push_str(output),
            other => bail!("unsupported placeholder {{{other}}} in format_template"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> FewShotPromptSet {
        FewShotPromptSet {
            class_name: "T".into(),
            few_shot_prompt: "Q: 1\nA: one\n\nQ: 2\nA: two".into(),
            separator: "\n\n".into(),
            exemplars: vec![
                Exemplar {
                    text: "Q: 1\nA: one".into(),
                },
                Exemplar {
                    text: "Q: 2\nA: two".into(),
                },
            ],
            format_template: "{few_shot_prompt}\n\nQ: {task_input}\nA: {task_output}".into(),
            stop_words: vec!["\nQ:".into()],
        }
    }

    #[test]
    fn formats_like_deepseek() {
        assert_eq!(
            set().format("x {task_input}", None).unwrap(),
            "Q: 1\nA: one\n\nQ: 2\nA: two\n\nQ: x {task_input}\nA:"
        );
        assert_eq!(set().format("y", Some(1)).unwrap(), "Q: 1\nA: one\n\nQ: y\nA:");
        assert!(set().format("y", Some(3)).is_err());
    }

    #[test]
    fn rejects_unknown_placeholders() {
        assert!(render_template("{few_shot_prompt[tag]}", "", "", "").is_err());
        assert!(render_template("{oops", "", "", "").is_err());
    }
}
