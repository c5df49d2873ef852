//! MathML → LaTeX, so formulas written in MathML survive as text a language model can learn from.
//!
//! A TeX annotation (`<annotation encoding="application/x-tex">`, as KaTeX, MathJax 3 and Wikipedia emit) is
//! used verbatim when present; otherwise presentation MathML is translated element by element.

use super::dom::{Dom, NodeId, NodeKind};

/// Converts the `<math>` element `id` to LaTeX (without `$` delimiters).
pub fn to_latex(dom: &Dom, id: NodeId) -> String {
    if let Some(tex) = find_tex_annotation(dom, id, 0) {
        return tex.trim().to_string();
    }
    let mut out = String::new();
    convert(dom, id, &mut out, 0);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The TeX source stored in an `<annotation>` below `id`, if any.
pub fn find_tex_annotation(dom: &Dom, id: NodeId, depth: usize) -> Option<String> {
    if depth > 64 {
        return None;
    }
    let node = &dom.nodes[id];
    if node.name() == "annotation" {
        let enc = node.attr("encoding").unwrap_or("").to_ascii_lowercase();
        if enc.contains("tex") {
            return Some(dom.text_content(id));
        }
    }
    node.children
        .iter()
        .find_map(|&c| find_tex_annotation(dom, c, depth + 1))
}

fn children(dom: &Dom, id: NodeId) -> Vec<NodeId> {
    dom.nodes[id]
        .children
        .iter()
        .copied()
        .filter(|&c| match &dom.nodes[c].kind {
            NodeKind::Text(t) => !t.trim().is_empty(),
            _ => true,
        })
        .collect()
}

fn group(dom: &Dom, id: Option<NodeId>, depth: usize) -> String {
    let mut s = String::new();
    if let Some(id) = id {
        convert(dom, id, &mut s, depth + 1);
    }
    format!("{{{}}}", s.trim())
}

fn convert(dom: &Dom, id: NodeId, out: &mut String, depth: usize) {
    if depth > 200 {
        return;
    }
    let node = &dom.nodes[id];
    let name = match &node.kind {
        NodeKind::Text(t) => {
            out.push_str(&map_symbols(t.trim()));
            return;
        }
        NodeKind::Root => "",
        NodeKind::Element { name, .. } => name.as_str(),
    };
    let name = name.rsplit(':').next().unwrap_or(name);
    let kids = children(dom, id);
    let arg = |i: usize| kids.get(i).copied();
    match name {
        "annotation" | "annotation-xml" | "mphantom" | "none" | "mprescripts" => {}
        "semantics" => {
            if let Some(first) = arg(0) {
                convert(dom, first, out, depth + 1);
            }
        }
        "mi" | "mn" => {
            let text = dom.text_content(id);
            let text = text.trim();
            if name == "mi" && text.chars().count() > 1 && FUNCTIONS.contains(&text) {
                out.push('\\');
                out.push_str(text);
                out.push(' ');
            } else {
                out.push_str(&map_symbols(text));
            }
        }
        "mo" => {
            let text = dom.text_content(id);
            let mapped = map_symbols(text.trim());
            out.push_str(&mapped);
            if mapped.starts_with('\\') {
                out.push(' ');
            }
        }
        "mtext" | "ms" => {
            let text = dom.text_content(id);
            if !text.trim().is_empty() {
                out.push_str(&format!("\\text{{{}}}", text.trim()));
            }
        }
        "mspace" => out.push(' '),
        "mfrac" => out.push_str(&format!(
            "\\frac{}{}",
            group(dom, arg(0), depth),
            group(dom, arg(1), depth)
        )),
        "msqrt" => {
            let mut inner = String::new();
            for &c in &kids {
                convert(dom, c, &mut inner, depth + 1);
            }
            out.push_str(&format!("\\sqrt{{{}}}", inner.trim()));
        }
        "mroot" => out.push_str(&format!(
            "\\sqrt[{}]{}",
            group(dom, arg(1), depth).trim_matches(['{', '}']),
            group(dom, arg(0), depth)
        )),
        "msup" => out.push_str(&format!("{}^{}", group(dom, arg(0), depth), group(dom, arg(1), depth))),
        "msub" => out.push_str(&format!("{}_{}", group(dom, arg(0), depth), group(dom, arg(1), depth))),
        "msubsup" | "munderover" => out.push_str(&format!(
            "{}_{}^{}",
            group(dom, arg(0), depth),
            group(dom, arg(1), depth),
            group(dom, arg(2), depth)
        )),
        "munder" => out.push_str(&format!("{}_{}", group(dom, arg(0), depth), group(dom, arg(1), depth))),
        "mover" => {
            let accent = arg(1).map(|a| dom.text_content(a)).unwrap_or_default();
            let base = group(dom, arg(0), depth);
            let cmd = match accent.trim() {
                "¯" | "‾" | "_" | "―" | "−" => Some("\\overline"),
                "^" | "ˆ" => Some("\\hat"),
                "→" | "⃗" => Some("\\vec"),
                "˙" | "." => Some("\\dot"),
                "¨" => Some("\\ddot"),
                "~" | "˜" => Some("\\tilde"),
                _ => None,
            };
            match cmd {
                Some(cmd) => out.push_str(&format!("{cmd}{base}")),
                None => out.push_str(&format!("\\overset{}{}", group(dom, arg(1), depth), base)),
            }
        }
        "mfenced" => {
            let open = node.attr("open").unwrap_or("(");
            let close = node.attr("close").unwrap_or(")");
            let sep = node.attr("separators").unwrap_or(",");
            out.push_str(&map_symbols(open));
            for (i, &c) in kids.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep.trim().get(..1).unwrap_or(","));
                }
                convert(dom, c, out, depth + 1);
            }
            out.push_str(&map_symbols(close));
        }
        "mtable" => {
            out.push_str("\\begin{matrix}");
            for (r, &row) in kids.iter().enumerate() {
                if r > 0 {
                    out.push_str(" \\\\ ");
                }
                for (c, &cell) in children(dom, row).iter().enumerate() {
                    if c > 0 {
                        out.push_str(" & ");
                    }
                    convert(dom, cell, out, depth + 1);
                }
            }
            out.push_str("\\end{matrix}");
        }
        _ => {
            for &c in &kids {
                convert(dom, c, out, depth + 1);
            }
        }
    }
}

const FUNCTIONS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "lim", "max", "min", "sup", "inf", "det", "dim",
    "ker", "gcd", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "deg", "arg", "Pr",
];

fn map_symbols(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let m = match c {
            '\u{2061}' | '\u{2062}' | '\u{2063}' | '\u{2064}' | '\u{200b}' => "",
            'α' => "\\alpha ",
            'β' => "\\beta ",
            'γ' => "\\gamma ",
            'δ' => "\\delta ",
            'ε' | 'ϵ' => "\\epsilon ",
            'ζ' => "\\zeta ",
            'η' => "\\eta ",
            'θ' => "\\theta ",
            'ι' => "\\iota ",
            'κ' => "\\kappa ",
            'λ' => "\\lambda ",
            'μ' => "\\mu ",
            'ν' => "\\nu ",
            'ξ' => "\\xi ",
            'π' => "\\pi ",
            'ρ' => "\\rho ",
            'σ' => "\\sigma ",
            'τ' => "\\tau ",
            'φ' | 'ϕ' => "\\phi ",
            'χ' => "\\chi ",
            'ψ' => "\\psi ",
            'ω' => "\\omega ",
            'Γ' => "\\Gamma ",
            'Δ' => "\\Delta ",
            'Θ' => "\\Theta ",
            'Λ' => "\\Lambda ",
            'Π' => "\\Pi ",
            'Σ' => "\\Sigma ",
            'Φ' => "\\Phi ",
            'Ψ' => "\\Psi ",
            'Ω' => "\\Omega ",
            '≤' => "\\le ",
            '≥' => "\\ge ",
            '≠' => "\\neq ",
            '≈' => "\\approx ",
            '≡' => "\\equiv ",
            '×' => "\\times ",
            '⋅' | '·' => "\\cdot ",
            '÷' => "\\div ",
            '±' => "\\pm ",
            '∓' => "\\mp ",
            '−' => "-",
            '∞' => "\\infty ",
            '∑' => "\\sum ",
            '∏' => "\\prod ",
            '∫' => "\\int ",
            '∮' => "\\oint ",
            '∂' => "\\partial ",
            '∇' => "\\nabla ",
            '√' => "\\sqrt ",
            '∈' => "\\in ",
            '∉' => "\\notin ",
            '⊂' => "\\subset ",
            '⊆' => "\\subseteq ",
            '⊃' => "\\supset ",
            '∪' => "\\cup ",
            '∩' => "\\cap ",
            '∅' => "\\emptyset ",
            '∀' => "\\forall ",
            '∃' => "\\exists ",
            '¬' => "\\neg ",
            '∧' => "\\wedge ",
            '∨' => "\\vee ",
            '→' => "\\to ",
            '←' => "\\leftarrow ",
            '⇒' => "\\Rightarrow ",
            '⇔' => "\\Leftrightarrow ",
            '↦' => "\\mapsto ",
            '…' | '⋯' => "\\cdots ",
            '∘' => "\\circ ",
            '′' => "'",
            'ℝ' => "\\mathbb{R}",
            'ℕ' => "\\mathbb{N}",
            'ℤ' => "\\mathbb{Z}",
            'ℚ' => "\\mathbb{Q}",
            'ℂ' => "\\mathbb{C}",
            '⟨' | '〈' => "\\langle ",
            '⟩' | '〉' => "\\rangle ",
            '\u{a0}' => " ",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latex(html: &str) -> String {
        let dom = Dom::parse(html);
        let math = (0..dom.nodes.len()).find(|&i| dom.nodes[i].name() == "math").unwrap();
        to_latex(&dom, math)
    }

    #[test]
    fn converts_presentation_mathml() {
        assert_eq!(
            latex("<math><mfrac><mn>1</mn><mi>x</mi></mfrac><mo>+</mo><msup><mi>y</mi><mn>2</mn></msup></math>"),
            "\\frac{1}{x}+{y}^{2}"
        );
        assert_eq!(
            latex("<math><msqrt><mi>α</mi></msqrt><mo>≤</mo><mi>sin</mi><mi>θ</mi></math>"),
            "\\sqrt{\\alpha}\\le \\sin \\theta"
        );
        assert_eq!(
            latex(
                "<math><munderover><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover></math>"
            ),
            "{\\sum}_{i=1}^{n}"
        );
    }

    #[test]
    fn prefers_tex_annotation() {
        let html = "<math><semantics><mrow><mi>x</mi></mrow><annotation encoding=\"application/x-tex\">x^2 + \\frac{a}{b}</annotation></semantics></math>";
        assert_eq!(latex(html), "x^2 + \\frac{a}{b}");
    }
}
