//! LaTeX / plain-math text → [`Expr`].
//!
//! A hand-written lexer and recursive-descent parser: linear in the input, depth-checked, node-capped. It accepts both
//! LaTeX (`\frac{1}{2}`, `\sqrt[3]{x}`, `\begin{pmatrix}..`) and plain text (`1/2`, `sqrt(2)`, `x**2`, `pi`), since
//! model outputs mix them. Spacing commands, `\left`/`\right` and size commands are dropped token by token.

use crate::budget::Limits;
use crate::expr::{Constant, Expr, Func, Rel};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

/// Why text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Unexpected token or end of input.
    #[error("syntax error at token {0}: {1}")]
    Syntax(usize, String),
    /// A size cap was hit (input length, digits, depth, nodes).
    #[error("too large: {0}")]
    TooLarge(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    /// A single-letter (or Greek) variable name.
    Var(String),
    /// Multi-letter words: function names, `pi`, `and`, `or`, `infinity`.
    Word(String),
    Cmd(String),
    Sym(char),
    SetOpen,
    SetClose,
    Begin(String),
    End(String),
    RowSep,
    Amp,
    Text(String),
}

/// Commands that are pure presentation and vanish.
const IGNORED_CMDS: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "quad",
    "qquad",
    "middle",
    "hspace",
    "vspace",
    "!",
    ",",
    ";",
    ":",
    " ",
    ">",
    "$",
    "#",
    "/",
    "phantom",
    "smallskip",
    "noindent",
    "mathstrut",
];

/// Commands whose braced argument is math to be parsed as a group (fonts).
const TRANSPARENT_CMDS: &[&str] = &[
    "mathrm",
    "mathbf",
    "mathit",
    "boldsymbol",
    "bm",
    "mathsf",
    "mathtt",
    "mathnormal",
    "mathcal",
    "pmb",
    "overline",
];

/// Commands whose braced argument is text.
const TEXT_CMDS: &[&str] = &[
    "text",
    "textbf",
    "textit",
    "textrm",
    "textsf",
    "texttt",
    "mbox",
    "textnormal",
    "hbox",
];

/// Greek letters that are variables.
const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

/// Plain-text words recognised inside letter runs.
const WORDS: &[&str] = &[
    "sqrt", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "sin", "cos", "tan", "cot", "sec", "csc", "log",
    "ln", "exp", "pi", "infinity", "infty", "inf", "oo", "and", "or", "abs", "gcd", "lcm",
];

fn lex(input: &str, limits: &Limits) -> Result<Vec<Tok>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if toks.len() > limits.max_nodes * 2 {
            return Err(ParseError::TooLarge("tokens"));
        }
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\\' {
            i += 1;
            let Some(&n) = chars.get(i) else { break };
            if n.is_ascii_alphabetic() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                lex_command(&name, &chars, &mut i, &mut toks)?;
            } else {
                i += 1;
                match n {
                    '{' => toks.push(Tok::SetOpen),
                    '}' => toks.push(Tok::SetClose),
                    '\\' => toks.push(Tok::RowSep),
                    '%' => toks.push(Tok::Sym('%')),
                    '|' => toks.push(Tok::Sym('|')),
                    _ if IGNORED_CMDS.contains(&n.to_string().as_str()) => {}
                    _ => toks.push(Tok::Sym(n)),
                }
            }
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            } else if i < chars.len() && chars[i] == '.' && start < i && chars.get(i + 1).is_none() {
                i += 1; // "5." at the end
            }
            // Scientific notation from programs: 1e-05, 2.5E3.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '-' || chars[j] == '+') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() && !input.contains('\\') {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            let lit: String = chars[start..i].iter().collect();
            if lit.len() > limits.max_digits {
                return Err(ParseError::TooLarge("digits"));
            }
            toks.push(Tok::Num(lit));
            continue;
        }
        if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            lex_letters(&run, &mut toks);
            continue;
        }
        i += 1;
        let two = chars.get(i).copied();
        match (c, two) {
            ('<', Some('=')) | ('≤', _) | ('⩽', _) => {
                if c == '<' {
                    i += 1;
                }
                toks.push(Tok::Cmd("le".into()))
            }
            ('>', Some('=')) | ('≥', _) | ('⩾', _) => {
                if c == '>' {
                    i += 1;
                }
                toks.push(Tok::Cmd("ge".into()))
            }
            ('!', Some('=')) | ('≠', _) => {
                if c == '!' {
                    i += 1;
                }
                toks.push(Tok::Cmd("ne".into()))
            }
            ('=', Some('=')) => {
                i += 1;
                toks.push(Tok::Sym('='))
            }
            ('*', Some('*')) => {
                i += 1;
                toks.push(Tok::Sym('^'))
            }
            ('π', _) => toks.push(Tok::Word("pi".into())),
            ('√', _) => toks.push(Tok::Cmd("sqrt".into())),
            ('∞', _) => toks.push(Tok::Word("infty".into())),
            ('×', _) | ('·', _) | ('⋅', _) | ('∗', _) => toks.push(Tok::Sym('*')),
            ('÷', _) => toks.push(Tok::Sym('/')),
            ('−', _) | ('–', _) | ('—', _) => toks.push(Tok::Sym('-')),
            ('±', _) => toks.push(Tok::Cmd("pm".into())),
            ('∪', _) => toks.push(Tok::Cmd("cup".into())),
            ('∈', _) => toks.push(Tok::Cmd("in".into())),
            ('，', _) => toks.push(Tok::Sym(',')),
            ('；', _) => toks.push(Tok::Sym(';')),
            ('（', _) => toks.push(Tok::Sym('(')),
            ('）', _) => toks.push(Tok::Sym(')')),
            ('~', _) => {}
            ('°', _) => toks.push(Tok::Sym('°')),
            ('&', _) => toks.push(Tok::Amp),
            _ if c.is_alphabetic() => {
                // Non-ASCII words (Chinese units, Greek letters typed directly) become text or variables.
                let start = i - 1;
                while i < chars.len() && chars[i].is_alphabetic() && !chars[i].is_ascii() {
                    i += 1;
                }
                let run: String = chars[start..i].iter().collect();
                if run.chars().count() == 1 && ('\u{3b1}'..='\u{3c9}').contains(&c) {
                    toks.push(Tok::Var(run));
                } else {
                    toks.push(Tok::Text(run));
                }
            }
            _ => toks.push(Tok::Sym(c)),
        }
    }
    Ok(collapse_degrees(toks))
}

/// `^\circ` and `^{\circ}` become one postfix degree token.
fn collapse_degrees(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let deg = Tok::Sym('°');
        if toks[i] == Tok::Sym('^') && toks.get(i + 1) == Some(&deg) {
            out.push(deg);
            i += 2;
        } else if toks[i] == Tok::Sym('^')
            && toks.get(i + 1) == Some(&Tok::Sym('{'))
            && toks.get(i + 2) == Some(&deg)
            && toks.get(i + 3) == Some(&Tok::Sym('}'))
        {
            out.push(deg);
            i += 4;
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}

/// Lexes `\name` (the name already consumed).
fn lex_command(name: &str, chars: &[char], i: &mut usize, toks: &mut Vec<Tok>) -> Result<(), ParseError> {
    if IGNORED_CMDS.contains(&name) {
        // `\left.` / `\right.` are invisible delimiters; `\hspace{1em}` has an argument.
        if matches!(name, "left" | "right" | "middle") && chars.get(*i) == Some(&'.') {
            *i += 1;
        }
        if matches!(name, "hspace" | "vspace" | "phantom") {
            skip_braced(chars, i);
        }
        return Ok(());
    }
    if TEXT_CMDS.contains(&name) || name == "operatorname" {
        let content = read_braced(chars, i).unwrap_or_default();
        if name == "operatorname" {
            toks.push(Tok::Word(content.trim().to_ascii_lowercase()));
        } else if !content.trim().is_empty() {
            toks.push(Tok::Text(content.trim().to_string()));
        }
        return Ok(());
    }
    match name {
        "begin" | "end" => {
            let env = read_braced(chars, i).unwrap_or_default();
            if name == "begin" {
                if env == "array" {
                    skip_braced(chars, i);
                }
                toks.push(Tok::Begin(env));
            } else {
                toks.push(Tok::End(env));
            }
        }
        "lbrace" => toks.push(Tok::SetOpen),
        "rbrace" => toks.push(Tok::SetClose),
        "lvert" | "rvert" | "vert" | "mid" => toks.push(Tok::Sym('|')),
        "langle" => toks.push(Tok::Sym('(')),
        "rangle" => toks.push(Tok::Sym(')')),
        "lbrack" => toks.push(Tok::Sym('[')),
        "rbrack" => toks.push(Tok::Sym(']')),
        "cdot" | "times" | "ast" | "bullet" => toks.push(Tok::Sym('*')),
        "div" => toks.push(Tok::Sym('/')),
        "circ" => toks.push(Tok::Sym('°')),
        "dfrac" | "tfrac" | "cfrac" => toks.push(Tok::Cmd("frac".into())),
        "dbinom" | "tbinom" => toks.push(Tok::Cmd("binom".into())),
        "leq" | "leqslant" | "leqq" => toks.push(Tok::Cmd("le".into())),
        "geq" | "geqslant" | "geqq" => toks.push(Tok::Cmd("ge".into())),
        "neq" => toks.push(Tok::Cmd("ne".into())),
        "lt" => toks.push(Tok::Sym('<')),
        "gt" => toks.push(Tok::Sym('>')),
        "infty" | "infin" => toks.push(Tok::Word("infty".into())),
        "pi" => toks.push(Tok::Word("pi".into())),
        "emptyset" | "varnothing" => {
            toks.push(Tok::SetOpen);
            toks.push(Tok::SetClose);
        }
        _ if GREEK.contains(&name) => toks.push(Tok::Var(name.to_string())),
        _ => toks.push(Tok::Cmd(name.to_string())),
    }
    Ok(())
}

/// Splits a run of ASCII letters into function words and single-letter variables.
fn lex_letters(run: &str, toks: &mut Vec<Tok>) {
    let lower = run.to_ascii_lowercase();
    if WORDS.contains(&lower.as_str()) {
        toks.push(Tok::Word(lower));
        return;
    }
    // Text words (`yes`, `Monday`, `none`): a long run that starts no function name is text.
    let fn_prefix = WORDS
        .iter()
        .filter(|w| w.len() >= 2 && lower.starts_with(*w))
        .max_by_key(|w| w.len());
    if let Some(w) = fn_prefix {
        if matches!(*w, "sqrt" | "sin" | "cos" | "tan" | "log" | "ln" | "exp" | "pi") {
            toks.push(Tok::Word(w.to_string()));
            lex_letters(&run[w.len()..], toks);
            return;
        }
    }
    if run.len() >= 4 {
        toks.push(Tok::Text(run.to_string()));
        return;
    }
    for ch in run.chars() {
        toks.push(Tok::Var(ch.to_string()));
    }
}

/// Reads `{...}` at `*i` (after optional spaces) and returns its raw content.
fn read_braced(chars: &[char], i: &mut usize) -> Option<String> {
    while *i < chars.len() && chars[*i] == ' ' {
        *i += 1;
    }
    if chars.get(*i) != Some(&'{') {
        return None;
    }
    let mut depth = 0usize;
    let start = *i + 1;
    while *i < chars.len() {
        match chars[*i] {
            '\\' => *i += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let s: String = chars[start..*i].iter().collect();
                    *i += 1;
                    return Some(s);
                }
            }
            _ => {}
        }
        *i += 1;
    }
    let s: String = chars[start.min(chars.len())..].iter().collect();
    Some(s)
}

fn skip_braced(chars: &[char], i: &mut usize) {
    let _ = read_braced(chars, i);
}

/// Parses an answer (already normalised) into an expression tree.
pub fn parse(input: &str, limits: &Limits) -> Result<Expr, ParseError> {
    if input.len() > limits.max_input_len {
        return Err(ParseError::TooLarge("input length"));
    }
    let toks = lex(input, limits)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        abs_depth: 0,
        limits: *limits,
    };
    let e = p.parse_list_until(&[])?;
    if p.pos < p.toks.len() {
        return Err(p.err("trailing input"));
    }
    if e.node_count() > limits.max_nodes {
        return Err(ParseError::TooLarge("nodes"));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    abs_depth: usize,
    limits: Limits,
}

impl Parser {
    fn err(&self, what: &str) -> ParseError {
        ParseError::Syntax(self.pos, format!("{what} (found {:?})", self.toks.get(self.pos)))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_sym(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Sym(c))
    }

    fn eat_sym(&mut self, c: char) -> bool {
        if self.peek_sym(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.err(&format!("expected '{c}'")))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        // Each bracket level passes through several grammar rules, hence the factor.
        if self.depth > self.limits.max_depth * 5 {
            Err(ParseError::TooLarge("depth"))
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn is_separator(&self) -> bool {
        match self.peek() {
            Some(Tok::Sym(',')) | Some(Tok::Sym(';')) => true,
            Some(Tok::Word(w)) => w == "and" || w == "or",
            _ => false,
        }
    }

    /// Items separated by `,`/`;`/`and`/`or` until one of `closers` (not consumed) or the end.
    fn parse_list_until(&mut self, closers: &[char]) -> Result<Expr, ParseError> {
        let items = self.parse_items(closers)?;
        Ok(if items.len() == 1 {
            items.into_iter().next().unwrap()
        } else {
            Expr::List(items)
        })
    }

    fn parse_items(&mut self, closers: &[char]) -> Result<Vec<Expr>, ParseError> {
        let mut items = vec![self.parse_relation()?];
        while self.is_separator() {
            // Runs of separators ("7, -2, , -5" after "and" became a comma) count as one.
            while self.is_separator() {
                self.pos += 1;
            }
            // Tolerate a trailing separator ("1, 2,").
            let at_end = match self.peek() {
                None => true,
                Some(Tok::Sym(c)) => closers.contains(c),
                Some(Tok::SetClose) => closers.contains(&'}'),
                _ => false,
            };
            if at_end {
                break;
            }
            items.push(self.parse_relation()?);
        }
        Ok(items)
    }

    fn rel_op(&self) -> Option<Rel> {
        match self.peek()? {
            Tok::Sym('=') => Some(Rel::Eq),
            Tok::Sym('<') => Some(Rel::Lt),
            Tok::Sym('>') => Some(Rel::Gt),
            Tok::Cmd(c) => match c.as_str() {
                "le" => Some(Rel::Le),
                "ge" => Some(Rel::Ge),
                "ne" => Some(Rel::Ne),
                "approx" | "simeq" | "equiv" => Some(Rel::Approx),
                "in" => Some(Rel::In),
                _ => None,
            },
            _ => None,
        }
    }

    fn parse_relation(&mut self) -> Result<Expr, ParseError> {
        let first = self.parse_union()?;
        let mut exprs = vec![first];
        let mut rels = Vec::new();
        while let Some(r) = self.rel_op() {
            self.pos += 1;
            rels.push(r);
            exprs.push(self.parse_union()?);
        }
        Ok(if rels.is_empty() {
            exprs.pop().unwrap()
        } else {
            Expr::Relation(exprs, rels)
        })
    }

    fn parse_union(&mut self) -> Result<Expr, ParseError> {
        let first = self.parse_sum()?;
        let mut parts = vec![first];
        while matches!(self.peek(), Some(Tok::Cmd(c)) if c == "cup")
            || matches!(self.peek(), Some(Tok::Var(v)) if v == "U") && self.union_follows()
        {
            self.pos += 1;
            parts.push(self.parse_sum()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::Union(parts)
        })
    }

    /// A plain `U` between two intervals means union.
    fn union_follows(&self) -> bool {
        matches!(self.toks.get(self.pos + 1), Some(Tok::Sym('(')) | Some(Tok::Sym('[')))
            && matches!(
                self.toks.get(self.pos.wrapping_sub(1)),
                Some(Tok::Sym(')')) | Some(Tok::Sym(']'))
            )
    }

    fn parse_sum(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut acc = self.parse_term()?;
        loop {
            if self.eat_sym('+') {
                let t = self.parse_term()?;
                acc = push_add(acc, t);
            } else if self.eat_sym('-') {
                let t = self.parse_term()?;
                acc = push_add(acc, Expr::Neg(Box::new(t)));
            } else if matches!(self.peek(), Some(Tok::Cmd(c)) if c == "pm" || c == "mp") {
                let minus_first = matches!(self.peek(), Some(Tok::Cmd(c)) if c == "mp");
                self.pos += 1;
                let t = self.parse_term()?;
                let t = if minus_first { Expr::Neg(Box::new(t)) } else { t };
                acc = Expr::PlusMinus(Some(Box::new(acc)), Box::new(t));
            } else {
                break;
            }
        }
        self.leave();
        Ok(acc)
    }

    fn parse_term(&mut self) -> Result<Expr, ParseError> {
        let mut factors = vec![self.parse_unary()?];
        loop {
            if self.eat_sym('*') {
                factors.push(self.parse_unary()?);
            } else if self.eat_sym(':') {
                // A ratio `3:1` is the quotient 3/1.
                let den = self.parse_unary()?;
                let num = if factors.len() == 1 {
                    factors.pop().unwrap()
                } else {
                    Expr::Mul(std::mem::take(&mut factors))
                };
                factors = vec![Expr::Div(Box::new(num), Box::new(den))];
            } else if self.eat_sym('/') {
                let den = self.parse_unary()?;
                let num = if factors.len() == 1 {
                    factors.pop().unwrap()
                } else {
                    Expr::Mul(std::mem::take(&mut factors))
                };
                factors = vec![Expr::Div(Box::new(num), Box::new(den))];
            } else if self.starts_implicit_factor() {
                let next = self.parse_power()?;
                // `2\frac{1}{2}` is the mixed number 5/2: an integer literal directly followed by a fraction of
                // two integer literals (a product would be written `2\cdot\frac12`).
                if let (Some(Expr::Num(whole)), Expr::Div(n, d)) = (factors.last(), &next) {
                    let whole_is_int = whole.is_integer() && factors.len() == 1;
                    let lit = |e: &Expr| matches!(e, Expr::Num(x) if x.is_integer() && !x.is_negative());
                    if whole_is_int && lit(n) && lit(d) {
                        let w = factors.pop().unwrap();
                        factors.push(Expr::Add(vec![w, next]));
                        continue;
                    }
                }
                factors.push(next);
            } else {
                break;
            }
        }
        Ok(if factors.len() == 1 {
            factors.pop().unwrap()
        } else {
            Expr::Mul(factors)
        })
    }

    fn starts_implicit_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_)) | Some(Tok::Var(_)) => true,
            Some(Tok::Word(w)) => w != "and" && w != "or",
            Some(Tok::Sym('(')) | Some(Tok::Sym('{')) => true,
            Some(Tok::Sym('|')) => self.abs_depth == 0,
            Some(Tok::Cmd(c)) => matches!(
                c.as_str(),
                "frac"
                    | "sqrt"
                    | "binom"
                    | "lfloor"
                    | "lceil"
                    | "log"
                    | "ln"
                    | "exp"
                    | "sin"
                    | "cos"
                    | "tan"
                    | "cot"
                    | "sec"
                    | "csc"
                    | "arcsin"
                    | "arccos"
                    | "arctan"
                    | "sinh"
                    | "cosh"
                    | "tanh"
                    | "mathrm"
                    | "mathbf"
                    | "gcd"
                    | "lcm"
                    | "overline"
                    | "operatorname"
            ),
            _ => false,
        }
    }

    fn parse_unary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = if self.eat_sym('-') {
            Expr::Neg(Box::new(self.parse_unary()?))
        } else if self.eat_sym('+') {
            self.parse_unary()?
        } else if matches!(self.peek(), Some(Tok::Cmd(c)) if c == "pm" || c == "mp") {
            self.pos += 1;
            Expr::PlusMinus(None, Box::new(self.parse_unary()?))
        } else {
            self.parse_power()?
        };
        self.leave();
        Ok(e)
    }

    fn parse_power(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut base = self.parse_postfix()?;
        while self.eat_sym('^') {
            let exp = self.parse_exponent()?;
            base = Expr::Pow(Box::new(base), Box::new(exp));
            base = self.parse_postfix_ops(base)?;
        }
        self.leave();
        Ok(base)
    }

    /// Exponent: a braced group, or one (signed) token.
    fn parse_exponent(&mut self) -> Result<Expr, ParseError> {
        if self.eat_sym('-') {
            return Ok(Expr::Neg(Box::new(self.parse_exponent()?)));
        }
        if self.eat_sym('+') {
            return self.parse_exponent();
        }
        self.parse_postfix()
    }

    fn parse_postfix(&mut self) -> Result<Expr, ParseError> {
        let p = self.parse_primary()?;
        self.parse_postfix_ops(p)
    }

    fn parse_postfix_ops(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        loop {
            if self.eat_sym('!') {
                e = Expr::Apply(Func::Factorial, vec![e]);
            } else if self.eat_sym('%') {
                e = Expr::Percent(Box::new(e));
            } else if self.eat_sym('°') {
                // Degrees inside an expression (`\sin 30^\circ`) are converted to radians.
                let per_degree = Expr::Div(Box::new(Expr::Const(Constant::Pi)), Box::new(int(180)));
                e = Expr::Mul(vec![e, per_degree]);
            } else if self.eat_sym('\'') {
                // Primes (f'(x)) are rare in answers; keep them as part of a name.
                e = match e {
                    Expr::Var(v) => Expr::Var(format!("{v}'")),
                    other => other,
                };
            } else {
                return Ok(e);
            }
        }
    }

    /// A command argument: `{...}` or a single token (`\frac12` takes one digit each).
    fn parse_arg(&mut self) -> Result<Expr, ParseError> {
        if self.peek_sym('{') {
            return self.parse_primary();
        }
        if let Some(Tok::Num(n)) = self.peek().cloned() {
            if n.len() > 1 && n.bytes().all(|b| b.is_ascii_digit()) {
                let (first, rest) = n.split_at(1);
                self.toks[self.pos] = Tok::Num(rest.to_string());
                return Ok(Expr::Num(parse_decimal(first)?));
            }
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = self.parse_primary_inner();
        self.leave();
        e
    }

    fn parse_primary_inner(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err("unexpected end"));
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => {
                // `4210_{7}`: a numeral in another base is a symbol equal only to the same numeral.
                if self.peek_sym('_') {
                    self.pos += 1;
                    let base = self.parse_arg()?;
                    return Ok(Expr::Var(format!("{n}_{base}")));
                }
                Ok(Expr::Num(parse_decimal(&n)?))
            }
            Tok::Var(v) => self.parse_variable(v),
            Tok::Word(w) => self.parse_word(&w),
            Tok::Sym('(') | Tok::Sym('[') => {
                let open = if tok == Tok::Sym('(') { '(' } else { '[' };
                self.parse_bracket(open)
            }
            Tok::Sym('{') => {
                let items = self.parse_items(&['}'])?;
                self.expect_sym('}')?;
                Ok(if items.len() == 1 {
                    items.into_iter().next().unwrap()
                } else {
                    Expr::Set(items)
                })
            }
            Tok::SetOpen => {
                if matches!(self.peek(), Some(Tok::SetClose)) {
                    self.pos += 1;
                    return Ok(Expr::Set(vec![]));
                }
                let items = self.parse_items(&['}'])?;
                if !matches!(self.peek(), Some(Tok::SetClose)) {
                    return Err(self.err("expected '\\}'"));
                }
                self.pos += 1;
                Ok(Expr::Set(items))
            }
            Tok::Sym('|') => {
                self.abs_depth += 1;
                let inner = self.parse_sum();
                self.abs_depth -= 1;
                let inner = inner?;
                self.expect_sym('|')?;
                Ok(Expr::Apply(Func::Abs, vec![inner]))
            }
            Tok::Cmd(c) => self.parse_command(&c),
            Tok::Begin(env) => self.parse_matrix(&env),
            Tok::Text(t) => Ok(text_expr(&t)),
            other => {
                self.pos -= 1;
                Err(self.err(&format!("unexpected {other:?}")))
            }
        }
    }

    fn parse_variable(&mut self, name: String) -> Result<Expr, ParseError> {
        match name.as_str() {
            "e" if !self.peek_sym('_') => return Ok(Expr::Const(Constant::E)),
            "i" if !self.peek_sym('_') => return Ok(Expr::Const(Constant::I)),
            _ => {}
        }
        if self.eat_sym('_') {
            let sub = self.parse_arg()?;
            return Ok(Expr::Var(format!("{name}_{sub}")));
        }
        Ok(Expr::Var(name))
    }

    fn parse_word(&mut self, w: &str) -> Result<Expr, ParseError> {
        match w {
            "pi" => Ok(Expr::Const(Constant::Pi)),
            "infty" | "infinity" | "inf" | "oo" => Ok(Expr::Const(Constant::Infinity)),
            "sqrt" => {
                let arg = self.parse_arg()?;
                Ok(Expr::Root(Box::new(arg), Box::new(int(2))))
            }
            "abs" => Ok(Expr::Apply(Func::Abs, vec![self.parse_arg()?])),
            "and" | "or" => Err(self.err("separator in operand position")),
            other => self.parse_function(other),
        }
    }

    fn parse_command(&mut self, c: &str) -> Result<Expr, ParseError> {
        match c {
            "frac" => {
                let num = self.parse_arg()?;
                let den = self.parse_arg()?;
                Ok(Expr::Div(Box::new(num), Box::new(den)))
            }
            "sqrt" => {
                let index = if self.eat_sym('[') {
                    let n = self.parse_sum()?;
                    self.expect_sym(']')?;
                    n
                } else {
                    int(2)
                };
                let arg = self.parse_arg()?;
                Ok(Expr::Root(Box::new(arg), Box::new(index)))
            }
            "binom" | "choose" => {
                let n = self.parse_arg()?;
                let k = self.parse_arg()?;
                Ok(Expr::Apply(Func::Binom, vec![n, k]))
            }
            "lfloor" | "lceil" => {
                let inner = self.parse_sum()?;
                let close = if c == "lfloor" { "rfloor" } else { "rceil" };
                if !matches!(self.peek(), Some(Tok::Cmd(x)) if x == close) {
                    return Err(self.err("unclosed floor/ceil"));
                }
                self.pos += 1;
                Ok(Expr::Apply(
                    if c == "lfloor" { Func::Floor } else { Func::Ceil },
                    vec![inner],
                ))
            }
            "sin" | "cos" | "tan" | "cot" | "sec" | "csc" | "arcsin" | "arccos" | "arctan" | "sinh" | "cosh"
            | "tanh" | "log" | "ln" | "exp" | "lg" | "gcd" | "lcm" => self.parse_function(c),
            "infty" => Ok(Expr::Const(Constant::Infinity)),
            _ if TRANSPARENT_CMDS.contains(&c) => {
                let inner = self.parse_arg()?;
                // `\mathrm{cm}`-style words inside fonts are text.
                Ok(inner)
            }
            _ => {
                self.pos -= 1;
                Err(self.err(&format!("unknown command \\{c}")))
            }
        }
    }

    fn parse_function(&mut self, name: &str) -> Result<Expr, ParseError> {
        let func = match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "cot" => Func::Cot,
            "sec" => Func::Sec,
            "csc" => Func::Csc,
            "arcsin" => Func::Arcsin,
            "arccos" => Func::Arccos,
            "arctan" => Func::Arctan,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "tanh" => Func::Tanh,
            "ln" | "log" | "lg" => Func::Ln,
            "exp" => Func::Exp,
            "gcd" => Func::Gcd,
            "lcm" => Func::Lcm,
            other => return Err(self.err(&format!("unknown function {other}"))),
        };
        let mut base = if name == "lg" { Some(int(10)) } else { None };
        if name == "log" && self.eat_sym('_') {
            base = Some(self.parse_arg()?);
        }
        let power = if self.eat_sym('^') {
            Some(self.parse_exponent()?)
        } else {
            None
        };
        let args = if matches!(func, Func::Gcd | Func::Lcm) {
            self.expect_sym('(')?;
            let items = self.parse_items(&[')'])?;
            self.expect_sym(')')?;
            items
        } else {
            vec![self.parse_function_argument()?]
        };
        let applied = match (func, base) {
            (Func::Ln, Some(b)) => Expr::Apply(Func::LogBase, vec![b, args.into_iter().next().unwrap()]),
            _ => Expr::Apply(func, args),
        };
        Ok(match power {
            Some(p) => Expr::Pow(Box::new(applied), Box::new(p)),
            None => applied,
        })
    }

    /// `\sin(x)`, `\sin{x}`, `\sin x`, `\sin 2x` (implicit product of the following simple factors).
    fn parse_function_argument(&mut self) -> Result<Expr, ParseError> {
        if self.peek_sym('(') || self.peek_sym('{') {
            return self.parse_power();
        }
        let mut factors = vec![self.parse_power()?];
        while matches!(self.peek(), Some(Tok::Num(_)) | Some(Tok::Var(_)))
            || matches!(self.peek(), Some(Tok::Word(w)) if w == "pi")
        {
            factors.push(self.parse_power()?);
        }
        Ok(if factors.len() == 1 {
            factors.pop().unwrap()
        } else {
            Expr::Mul(factors)
        })
    }

    /// `(`/`[` already consumed: grouping, tuple, point or interval (mixed brackets allowed).
    fn parse_bracket(&mut self, open: char) -> Result<Expr, ParseError> {
        let saved_abs = self.abs_depth;
        self.abs_depth = 0;
        let items = self.parse_items(&[')', ']']);
        self.abs_depth = saved_abs;
        let items = items?;
        let close = if self.eat_sym(')') {
            ')'
        } else if self.eat_sym(']') {
            ']'
        } else {
            return Err(self.err("unclosed bracket"));
        };
        let same_pair = open == '(' && close == ')' || open == '[' && close == ']';
        if items.len() == 1 && same_pair && !matches!(items[0], Expr::Const(Constant::Infinity)) {
            return Ok(items.into_iter().next().unwrap());
        }
        Ok(Expr::Bracket(open, items, close))
    }

    fn parse_matrix(&mut self, env: &str) -> Result<Expr, ParseError> {
        let mut rows: Vec<Vec<Expr>> = vec![vec![]];
        loop {
            match self.peek() {
                Some(Tok::End(e)) if e == env => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unclosed environment")),
                Some(Tok::Amp) => {
                    self.pos += 1;
                }
                Some(Tok::RowSep) => {
                    self.pos += 1;
                    rows.push(vec![]);
                }
                _ => {
                    let cell = self.parse_relation()?;
                    rows.last_mut().unwrap().push(cell);
                }
            }
        }
        rows.retain(|r| !r.is_empty());
        if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len()) {
            return Err(self.err("ragged matrix"));
        }
        match env {
            "pmatrix" | "bmatrix" | "matrix" | "array" | "Bmatrix" | "smallmatrix" => Ok(Expr::Matrix(rows)),
            "cases" | "aligned" | "align" | "align*" | "gathered" => {
                Ok(Expr::List(rows.into_iter().flatten().collect()))
            }
            _ => Err(self.err(&format!("unsupported environment {env}"))),
        }
    }
}

fn push_add(acc: Expr, t: Expr) -> Expr {
    match acc {
        Expr::Add(mut v) => {
            v.push(t);
            Expr::Add(v)
        }
        other => Expr::Add(vec![other, t]),
    }
}

fn int(n: i64) -> Expr {
    Expr::Num(BigRational::from_integer(BigInt::from(n)))
}

/// `\text{...}` content: choice letters become variables, numbers become numbers, the rest normalised text.
fn text_expr(t: &str) -> Expr {
    if let Some(letter) = crate::extract::choice_letter(t) {
        if t.trim().len() <= 4 {
            return Expr::Var(letter);
        }
    }
    if let Ok(n) = parse_decimal(t.trim()) {
        return Expr::Num(n);
    }
    Expr::Text(normalize_text(t))
}

/// Lower-cased, single-spaced, without surrounding punctuation.
pub fn normalize_text(t: &str) -> String {
    let words: Vec<String> = t
        .split(|c: char| c.is_whitespace() || c == '~')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    words
        .join(" ")
        .trim_matches(|c: char| c == '.' || c == ',' || c == ';')
        .to_string()
}

/// Exact value of a decimal literal (`12`, `0.125`, `.5`, `5.`, `1e-3`).
pub fn parse_decimal(s: &str) -> Result<BigRational, ParseError> {
    let bad = || ParseError::Syntax(0, format!("bad number {s:?}"));
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (s, 0),
    };
    if exponent.abs() > 400 {
        return Err(ParseError::TooLarge("exponent"));
    }
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits = format!("{int_part}{frac_part}");
    let numer: BigInt = if digits.is_empty() {
        BigInt::zero()
    } else {
        digits.parse().map_err(|_| bad())?
    };
    let scale = exponent - frac_part.len() as i32;
    let ten = BigInt::from(10);
    Ok(if scale >= 0 {
        BigRational::from_integer(numer * num_traits::pow(ten, scale as usize))
    } else {
        BigRational::new(numer, num_traits::pow(ten, (-scale) as usize))
    })
    .map(|r| if r.is_zero() { BigRational::zero() } else { r })
    .and_then(|r| {
        if r.denom().is_one() || !r.is_zero() {
            Ok(r)
        } else {
            Err(bad())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        parse(s, &Limits::default())
            .map(|e| e.to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn basics() {
        assert_eq!(p("\\frac12"), "(1)/(2)");
        assert_eq!(p("\\frac{1}{2}x"), "((1)/(2) * x)");
        assert_eq!(p("2x^2+1"), "((2 * (x)^(2)) + 1)");
        assert_eq!(p("-x^2"), "-((x)^(2))");
        assert_eq!(p("\\left( 1, 2 \\right]"), "(1, 2]");
        assert_eq!(p("\\{1,2\\}"), "{1, 2}");
        assert_eq!(p("x=3"), "x Eq 3");
        assert_eq!(p("\\sqrt[3]{8}"), "root(8, 3)");
        assert_eq!(p("\\sin 2x"), "sin((2 * x))");
        assert_eq!(p("|x-1|"), "abs((x + -(1)))");
        assert_eq!(p("0.125"), "1/8");
        assert_eq!(p("1e-3"), "1/1000");
        assert_eq!(p("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"), "[1, 2; 3, 4]");
        assert_eq!(p("1 \\pm \\sqrt{2}"), "(1 ± root(2, 2))");
        assert_eq!(p("50\\%"), "50%");
        assert_eq!(
            p("(-\\infty, 3) \\cup (4, \\infty)"),
            "(-(Infinity), 3) ∪ (4, Infinity)"
        );
        assert_eq!(p("\\text{Monday}"), "\"monday\"");
        assert_eq!(p("\\log_2 8"), "log(2, 8)");
    }

    #[test]
    fn caps() {
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(matches!(parse(&deep, &Limits::default()), Err(ParseError::TooLarge(_))));
        let long = "9".repeat(5000);
        assert!(parse(&long, &Limits::default()).is_err());
    }
}
