//! Turning model text into runnable Python: PAL completions (program-of-thought) and the code blocks of
//! tool-integrated trajectories.

use crate::prompt::ProgramStyle;

/// The program to run for a PoT completion, or `None` when the completion holds no program.
pub fn pot_program(completion: &str, style: ProgramStyle) -> Option<String> {
    match style {
        ProgramStyle::SolutionFunction => {
            let code = fenced_blocks(completion, "")
                .into_iter()
                .find(|b| b.contains("def solution"));
            let code = code.unwrap_or_else(|| completion.to_string());
            let start = code.find("def solution")?;
            Some(format!("{}\n\nprint(solution())\n", code[start..].trim_end()))
        }
        ProgramStyle::AnswerVariable => {
            let blocks = fenced_blocks(completion, "");
            let code = blocks.first()?;
            // The PAL MATH exemplars put the imports in a second block after "The imports required ...".
            let imports = blocks
                .get(1)
                .filter(|b| b.lines().all(|l| l.trim().is_empty() || is_import(l)));
            let imports = imports.map(String::as_str).unwrap_or("");
            Some(format!("{imports}\n{code}\nprint(answer)\n"))
        }
    }
}

fn is_import(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("import ") || l.starts_with("from ")
}

/// Contents of every closed ```` ``` ```` block whose info string starts with `lang` (any block when `lang` is
/// empty), in order.
pub fn fenced_blocks(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let line_end = after.find('\n').unwrap_or(after.len());
        let info = after[..line_end].trim();
        let body_start = (line_end + 1).min(after.len());
        let Some(close) = after[body_start..].find("```") else {
            break;
        };
        let body = &after[body_start..body_start + close];
        if info.starts_with(lang) && (!lang.is_empty() || !info.starts_with("output")) {
            blocks.push(body.trim_end().to_string());
        }
        rest = &after[body_start + close + 3..];
    }
    blocks
}

/// The program for the latest code block of a tool-integrated trajectory: earlier blocks are re-run (state is not
/// kept between executions) with their top-level `print` lines dropped, so only the new block's output shows.
/// `None` when the trajectory does not end with a closed ```` ```python ```` block.
pub fn tir_program(trajectory: &str) -> Option<String> {
    if !trajectory.trim_end().ends_with("```") {
        return None;
    }
    let blocks = fenced_blocks(trajectory, "python");
    let (last, earlier) = blocks.split_last()?;
    let mut code = String::new();
    for block in earlier {
        for line in block.lines() {
            let top_level_print = !line.starts_with([' ', '\t']) && line.contains("print(");
            if !top_level_print {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    code.push_str(last);
    code.push('\n');
    Some(code)
}

/// Output fed back to the model after a code block, shortened the way DeepSeek-Math shortens it (first and last
/// 50 characters of long outputs).
pub fn feedback_block(output: &str) -> String {
    let output = output.trim();
    let chars: Vec<char> = output.chars().collect();
    let shown = if chars.len() > 100 {
        format!(
            "{}...{}",
            chars[..50].iter().collect::<String>(),
            chars[chars.len() - 50..].iter().collect::<String>()
        )
    } else {
        output.to_string()
    };
    format!("\n```output\n{shown}\n```\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pal_gsm_program_prints_solution() {
        let completion = "\n\n\ndef solution():\n    a = 2\n    return a * 3\n\n\n\n";
        let program = pot_program(completion, ProgramStyle::SolutionFunction).unwrap();
        assert!(program.starts_with("def solution():"));
        assert!(program.ends_with("print(solution())\n"));
        assert_eq!(pot_program("no code here", ProgramStyle::SolutionFunction), None);
    }

    #[test]
    fn pal_math_program_uses_import_block() {
        let completion = "```\nx = symbols('x')\nanswer = solve(x - 2, x)\n```\nThe imports required for this program are\n```\nfrom sympy import symbols, solve\n```\nI hope my solution is correct.";
        let program = pot_program(completion, ProgramStyle::AnswerVariable).unwrap();
        assert_eq!(
            program,
            "from sympy import symbols, solve\nx = symbols('x')\nanswer = solve(x - 2, x)\nprint(answer)\n"
        );
    }

    #[test]
    fn tir_reruns_earlier_blocks_without_prints() {
        let t =
            "Let me compute.\n```python\na = 3\nprint(a)\n```\n```output\n3\n```\nNow:\n```python\nprint(a * 2)\n```";
        assert_eq!(tir_program(t).unwrap(), "a = 3\nprint(a * 2)\n");
        assert_eq!(tir_program("no code"), None);
        assert_eq!(tir_program("```python\nx=1\n```\nthe end"), None);
    }

    #[test]
    fn long_feedback_is_shortened() {
        let long = "x".repeat(300);
        let block = feedback_block(&long);
        assert!(block.contains("..."));
        assert!(block.len() < 130);
    }
}
