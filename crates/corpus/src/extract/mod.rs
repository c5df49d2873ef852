//! HTML → plain text that keeps mathematics, for math-corpus mining.
//!
//! General-purpose extractors (resiliparse, trafilatura) drop or mangle formulas: MathJax sources live in
//! `<script type="math/tex">`, KaTeX and MathJax 3 hide TeX in MathML annotations, Wikipedia puts it in image
//! `alt` text, and older sites use MathML. OpenWebMath showed that keeping these as LaTeX is what makes web math
//! data useful. This extractor therefore:
//!
//! 1. parses the page ([`dom`]) and drops boilerplate subtrees (navigation, headers/footers, sidebars, cookie
//!    banners, share widgets, comments, hidden elements) by tag, ARIA role, and class/id words;
//! 2. renders the rest into blocks, turning every formula into `$…$` / `$$…$$` LaTeX ([`mathml`]) and keeping
//!    `<pre>` code verbatim;
//! 3. classifies blocks by length and link density (as jusText does), keeping short blocks only between good
//!    ones, and restricts to the main-content container (`<article>`, `<main>`, `entry-content`, ...) when that
//!    container holds most of the good text.

pub mod dom;
pub mod mathml;

use crate::document::Document;
use dom::{Dom, NodeId, NodeKind};

/// Extraction settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExtractOptions {
    /// Drop navigation, footers, low-text blocks (off: keep all visible text).
    pub remove_boilerplate: bool,
    /// Blocks with at least this many words count as content on their own.
    pub min_block_words: usize,
    /// Blocks whose link text exceeds this fraction are boilerplate.
    pub max_link_density: f32,
    /// Put the page `<title>` on the first line.
    pub include_title: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            remove_boilerplate: true,
            min_block_words: 10,
            max_link_density: 0.4,
            include_title: false,
        }
    }
}

/// What extraction found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    /// The text, blocks separated by newlines.
    pub text: String,
    /// The page title, if any.
    pub title: Option<String>,
    /// Number of formulas emitted as LaTeX.
    pub formulas: usize,
}

/// Fills `doc.text` from `doc.html` (which is cleared); returns false when no text was found.
pub fn extract_document(doc: &mut Document, options: &ExtractOptions) -> bool {
    let Some(html) = doc.html.take() else {
        return !doc.text.trim().is_empty();
    };
    let result = extract(&html, options);
    if result.formulas > 0 {
        doc.metadata.insert("formulas".into(), result.formulas.into());
    }
    if let Some(title) = result.title {
        doc.metadata.insert("title".into(), title.into());
    }
    doc.text = result.text;
    !doc.text.trim().is_empty()
}

/// Extracts text from an HTML page.
pub fn extract(html: &str, options: &ExtractOptions) -> Extraction {
    let dom = Dom::parse(html);
    let holds_content = content_ancestry(&dom);
    let mut renderer = Renderer {
        dom: &dom,
        options,
        blocks: Vec::new(),
        current: Block::default(),
        formulas: 0,
        title: None,
        holds_content,
    };
    renderer.walk(0, &Context::default(), 0);
    renderer.flush();
    let Renderer {
        blocks,
        formulas,
        title,
        ..
    } = renderer;
    let kept = if options.remove_boilerplate {
        select_blocks(&blocks, options)
    } else {
        (0..blocks.len()).collect()
    };
    let mut text = String::new();
    if options.include_title {
        if let Some(t) = &title {
            text.push_str(t);
            text.push('\n');
        }
    }
    for i in kept {
        text.push_str(&blocks[i].text);
        text.push('\n');
    }
    Extraction {
        text: text.trim_end().to_string(),
        title,
        formulas,
    }
}

#[derive(Debug, Clone, Default)]
struct Block {
    text: String,
    link_chars: usize,
    heading: bool,
    preformatted: bool,
    formulas: usize,
    /// Innermost main-content container this block is in.
    container: Option<NodeId>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Context {
    in_link: bool,
    in_pre: bool,
    heading: bool,
    container: Option<NodeId>,
    display_math: bool,
}

struct Renderer<'a> {
    dom: &'a Dom,
    options: &'a ExtractOptions,
    blocks: Vec<Block>,
    current: Block,
    formulas: usize,
    title: Option<String>,
    /// Whether each node is or contains a main-content container: such nodes are never dropped as boilerplate
    /// (broken pages wrap everything in an unclosed `<header>`; themes name wrappers `content-sidebar-wrap`).
    holds_content: Vec<bool>,
}

/// Marks every node that is, or has a descendant that is, a main-content container.
fn content_ancestry(dom: &Dom) -> Vec<bool> {
    let n = dom.nodes.len();
    let mut parent = vec![usize::MAX; n];
    for (id, node) in dom.nodes.iter().enumerate() {
        for &c in &node.children {
            parent[c] = id;
        }
    }
    let mut holds = vec![false; n];
    // Children are created after their parents, so a reverse sweep sees every child before its parent.
    for id in (0..n).rev() {
        let node = &dom.nodes[id];
        if let NodeKind::Element { name, .. } = &node.kind {
            let class =
                format!("{} {}", node.attr("class").unwrap_or(""), node.attr("id").unwrap_or("")).to_ascii_lowercase();
            if is_content_container(node, name, &class) {
                holds[id] = true;
            }
        }
        if holds[id] && parent[id] != usize::MAX {
            holds[parent[id]] = true;
        }
    }
    holds
}

const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "address",
    "hr",
    "center",
    "details",
    "summary",
    "body",
    "caption",
    "tbody",
    "thead",
    "tfoot",
];
const DROP_TAGS: &[&str] = &[
    "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed", "button", "select", "option",
    "textarea", "input", "nav", "aside", "footer", "head", "label", "video", "audio", "map", "dialog", "menu",
];
/// Class/id words marking boilerplate.
const BOILERPLATE_WORDS: &[&str] = &[
    "nav",
    "navbar",
    "navigation",
    "menu",
    "footer",
    "sidebar",
    "cookie",
    "cookies",
    "consent",
    "banner",
    "share",
    "sharing",
    "social",
    "breadcrumb",
    "breadcrumbs",
    "related",
    "advert",
    "advertisement",
    "ad",
    "ads",
    "sponsor",
    "sponsored",
    "promo",
    "newsletter",
    "subscribe",
    "subscription",
    "popup",
    "modal",
    "login",
    "signup",
    "pagination",
    "pager",
    "comment",
    "comments",
    "disqus",
    "masthead",
    "toolbar",
    "rss",
    "recommended",
    "outbrain",
    "taboola",
    "skip",
    "cta",
    "sociallinks",
    "topbar",
    "copyright",
    "tagcloud",
    "taglist",
];
/// Class/id words marking the main content.
const CONTENT_WORDS: &[&str] = &[
    "content", "article", "post", "entry", "story", "body", "text", "main", "answer", "question", "prose", "markdown",
];

impl Renderer<'_> {
    fn flush(&mut self) {
        let block = std::mem::take(&mut self.current);
        let text = if block.preformatted {
            block.text.trim_matches('\n').to_string()
        } else {
            collapse(&block.text)
        };
        if !text.trim().is_empty() {
            self.blocks.push(Block { text, ..block });
        }
    }

    fn push_text(&mut self, text: &str, ctx: &Context) {
        if self.current.text.is_empty() {
            self.current.heading = ctx.heading;
            self.current.preformatted = ctx.in_pre;
            self.current.container = ctx.container;
        }
        if ctx.in_link {
            self.current.link_chars += text.trim().chars().count();
        }
        self.current.text.push_str(text);
    }

    fn push_formula(&mut self, tex: &str, display: bool, ctx: &Context) {
        let tex = tex.trim();
        if tex.is_empty() {
            return;
        }
        self.formulas += 1;
        self.current.formulas += 1;
        let s = if display {
            format!(" $${tex}$$ ")
        } else {
            format!(" ${tex}$ ")
        };
        let ctx = Context { in_link: false, ..*ctx };
        self.push_text(&s, &ctx);
    }

    fn walk(&mut self, id: NodeId, ctx: &Context, depth: usize) {
        if depth > 512 {
            return;
        }
        let dom = self.dom;
        let node = &dom.nodes[id];
        let (name, _) = match &node.kind {
            NodeKind::Text(t) => {
                self.push_text(t, ctx);
                return;
            }
            NodeKind::Root => ("", ()),
            NodeKind::Element { name, .. } => (name.as_str(), ()),
        };
        let class =
            format!("{} {}", node.attr("class").unwrap_or(""), node.attr("id").unwrap_or("")).to_ascii_lowercase();
        match name {
            "head" => {
                if let Some(t) = find_descendant(dom, id, "title", 0) {
                    self.walk(t, ctx, depth + 1);
                }
                return;
            }
            "title" => {
                if self.title.is_none() {
                    let t = collapse(&dom.text_content(id));
                    if !t.is_empty() {
                        self.title = Some(t);
                    }
                }
                return;
            }
            "math" => {
                let display =
                    ctx.display_math || node.attr("display") == Some("block") || node.attr("mode") == Some("display");
                let tex = mathml::to_latex(dom, id);
                self.push_formula(&tex, display, ctx);
                return;
            }
            "script" => {
                let ty = node.attr("type").unwrap_or("").to_ascii_lowercase();
                if ty.starts_with("math/tex") || ty.starts_with("math/asciimath") {
                    self.push_formula(&dom.text_content(id), ty.contains("display"), ctx);
                }
                return;
            }
            "img" => {
                if let Some(tex) = latex_image_alt(node) {
                    self.push_formula(&tex, false, ctx);
                }
                return;
            }
            "br" => {
                if ctx.in_pre {
                    self.push_text("\n", ctx);
                } else {
                    self.flush();
                }
                return;
            }
            _ => {}
        }
        let rendered_math = class.contains("mathjax") || class.contains("katex-html") || name == "mjx-math";
        if rendered_math || (class.contains("mjx-chtml") && name != "mjx-container") {
            // Rendered formula glyphs; the TeX source is in a sibling script or MathML annotation.
            if !subtree_has(dom, id, "math", 0) {
                return;
            }
        }
        if class.contains("mwe-math-element") {
            // Wikipedia: MathML with TeX annotation, plus a fallback image carrying the same TeX.
            if let Some(math) = find_descendant(dom, id, "math", 0) {
                let display = class.contains("display") || node.attr("class").is_some_and(|c| c.contains("block"));
                self.push_formula(&mathml::to_latex(dom, math), display, ctx);
                return;
            }
        }
        let mut ctx = *ctx;
        if (name == "mjx-container" && node.attr("display") == Some("true")) || class.contains("katex-display") {
            ctx.display_math = true;
        }
        if self.options.remove_boilerplate && !self.holds_content[id] && is_boilerplate(node, name, &class) {
            return;
        }
        if !self.options.remove_boilerplate && matches!(name, "style" | "noscript" | "template" | "svg" | "head") {
            return;
        }
        let block = BLOCK_TAGS.contains(&name);
        if block {
            self.flush();
        }
        match name {
            "a" => ctx.in_link = true,
            "pre" => ctx.in_pre = true,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => ctx.heading = true,
            "td" | "th" => self.push_text(" ", &ctx),
            _ => {}
        }
        if self.options.remove_boilerplate && is_content_container(node, name, &class) {
            ctx.container = Some(id);
        }
        for &child in &node.children {
            self.walk(child, &ctx, depth + 1);
        }
        if block {
            self.flush();
        }
    }
}

fn subtree_has(dom: &Dom, id: NodeId, tag: &str, depth: usize) -> bool {
    find_descendant(dom, id, tag, depth).is_some()
}

fn find_descendant(dom: &Dom, id: NodeId, tag: &str, depth: usize) -> Option<NodeId> {
    if depth > 64 {
        return None;
    }
    dom.nodes[id].children.iter().find_map(|&c| {
        if dom.nodes[c].name() == tag {
            Some(c)
        } else {
            find_descendant(dom, c, tag, depth + 1)
        }
    })
}

fn class_words(class: &str) -> impl Iterator<Item = &str> {
    class
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn is_boilerplate(node: &dom::Node, name: &str, class: &str) -> bool {
    if DROP_TAGS.contains(&name) {
        return true;
    }
    if name == "header" && !class_words(class).any(|w| matches!(w, "entry" | "article" | "post")) {
        return true;
    }
    if let Some(role) = node.attr("role") {
        if matches!(
            role,
            "navigation" | "banner" | "contentinfo" | "complementary" | "search" | "menu" | "dialog" | "alert"
        ) {
            return true;
        }
    }
    if node.attr("hidden").is_some() || node.attr("aria-hidden") == Some("true") {
        return !class.contains("math");
    }
    if let Some(style) = node.attr("style") {
        let style: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if (style.contains("display:none") || style.contains("visibility:hidden")) && !class.contains("math") {
            return true;
        }
    }
    if matches!(name, "body" | "html" | "main" | "article") {
        return false;
    }
    let words: Vec<&str> = class_words(class).collect();
    if words.iter().any(|w| CONTENT_WORDS.contains(w))
        && !words.iter().any(|w| {
            matches!(
                *w,
                "footer" | "sidebar" | "comment" | "comments" | "related" | "nav" | "menu"
            )
        })
    {
        return false;
    }
    words
        .iter()
        .any(|w| BOILERPLATE_WORDS.contains(w) || (*w == "header" && !words.contains(&"entry")))
}

fn is_content_container(node: &dom::Node, name: &str, class: &str) -> bool {
    if matches!(name, "article" | "main") || node.attr("role") == Some("main") {
        return true;
    }
    if node
        .attr("itemprop")
        .is_some_and(|p| p.eq_ignore_ascii_case("articleBody"))
    {
        return true;
    }
    let lower = class;
    [
        "entry-content",
        "post-content",
        "article-body",
        "articlebody",
        "story-body",
        "post-body",
        "article-content",
        "mw-parser-output",
        "postcontent",
        "post-text",
        "article__body",
        "td-post-content",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

/// LaTeX carried in an image's `alt` (WordPress `class="latex"`, codecogs/mimetex URLs, Wikipedia fallbacks).
fn latex_image_alt(node: &dom::Node) -> Option<String> {
    let alt = node.attr("alt")?.trim();
    if alt.is_empty() {
        return None;
    }
    let class = node.attr("class").unwrap_or("").to_ascii_lowercase();
    let src = node.attr("src").unwrap_or("").to_ascii_lowercase();
    let mathy = class.contains("latex")
        || class.contains("tex")
        || class.contains("math")
        || ["latex", "mimetex", "codecogs", "mathtex", "/math/", "tex?", "tex.php"]
            .iter()
            .any(|s| src.contains(s));
    if !mathy {
        return None;
    }
    let tex = alt.trim_matches('$').trim();
    let tex = tex
        .strip_prefix("\\(")
        .and_then(|t| t.strip_suffix("\\)"))
        .unwrap_or(tex);
    (!tex.is_empty()).then(|| tex.to_string())
}

/// Collapses whitespace runs to single spaces.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Good,
    Short,
    Bad,
}

/// jusText-style block selection plus main-container restriction.
fn select_blocks(blocks: &[Block], options: &ExtractOptions) -> Vec<usize> {
    let classes: Vec<Class> = blocks
        .iter()
        .map(|b| {
            let words = b.text.split_whitespace().count();
            let chars = b.text.chars().count().max(1);
            let density = b.link_chars as f32 / chars as f32;
            if density > options.max_link_density {
                Class::Bad
            } else if words >= options.min_block_words || b.preformatted || b.formulas > 0 {
                Class::Good
            } else {
                Class::Short
            }
        })
        .collect();
    // Short blocks (and headings) survive only next to content: look for the nearest non-short neighbours.
    let mut keep: Vec<bool> = classes.iter().map(|c| *c == Class::Good).collect();
    for i in 0..blocks.len() {
        if classes[i] != Class::Short {
            continue;
        }
        let prev = (0..i).rev().find(|&j| classes[j] != Class::Short).map(|j| classes[j]);
        let next = (i + 1..blocks.len())
            .find(|&j| classes[j] != Class::Short)
            .map(|j| classes[j]);
        keep[i] = match (prev, next) {
            (Some(Class::Good), Some(Class::Good)) => true,
            (Some(Class::Good), _) | (_, Some(Class::Good)) => {
                blocks[i].heading || blocks[i].text.split_whitespace().count() >= 4
            }
            _ => false,
        };
    }
    // Restrict to the container holding most of the good text, if one does.
    let total: usize = (0..blocks.len())
        .filter(|&i| keep[i])
        .map(|i| blocks[i].text.len())
        .sum();
    let mut per_container: std::collections::HashMap<NodeId, usize> = std::collections::HashMap::new();
    for i in (0..blocks.len()).filter(|&i| keep[i]) {
        if let Some(c) = blocks[i].container {
            *per_container.entry(c).or_default() += blocks[i].text.len();
        }
    }
    if let Some((&best, &len)) = per_container
        .iter()
        .max_by_key(|(id, len)| (**len, std::cmp::Reverse(**id)))
    {
        if len * 10 >= total * 6 {
            return (0..blocks.len())
                .filter(|&i| keep[i] && blocks[i].container == Some(best))
                .collect();
        }
    }
    (0..blocks.len()).filter(|&i| keep[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOREM: &str = "The quick brown fox jumps over the lazy dog while the mathematician writes a long proof.";

    #[test]
    fn keeps_math_in_all_common_encodings() {
        let html = format!(
            r#"<html><head><title>T</title><script>var x=1;</script></head><body>
            <nav><a href="/">Home</a> <a href="/about">About</a></nav>
            <article><p>{LOREM} Inline <script type="math/tex">x^2+y^2=z^2</script> and display
            <script type="math/tex; mode=display">\int_0^1 f</script>.</p>
            <p>{LOREM} KaTeX <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>a</mi></mrow>
            <annotation encoding="application/x-tex">\frac{{a}}{{b}}</annotation></semantics></math></span>
            <span class="katex-html" aria-hidden="true">ab</span></span> and MathML
            <math><msup><mi>e</mi><mi>x</mi></msup></math> and image <img class="latex" alt="\sqrt{{2}}" src="x.png">.</p>
            <pre><code>for i in range(3):
    print(i)</code></pre></article>
            <footer>Copyright 2024 <a href="/privacy">Privacy</a></footer>
            <div class="cookie-banner">We use cookies to improve your experience on this website, accept them all.</div>
            </body></html>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(out.text.contains("$x^2+y^2=z^2$"), "{}", out.text);
        assert!(out.text.contains("$$\\int_0^1 f$$"));
        assert!(out.text.contains("$\\frac{a}{b}$"));
        assert!(
            !out.text.contains("ab ") || !out.text.contains(" ab"),
            "rendered KaTeX dropped"
        );
        assert!(out.text.contains("${e}^{x}$"));
        assert!(out.text.contains("$\\sqrt{2}$"));
        assert!(out.text.contains("for i in range(3):\n    print(i)"));
        for junk in ["Home", "Copyright", "cookies", "var x"] {
            assert!(!out.text.contains(junk), "{junk} leaked: {}", out.text);
        }
        assert_eq!(out.title.as_deref(), Some("T"));
        assert_eq!(out.formulas, 5);
    }

    #[test]
    fn link_lists_are_boilerplate_but_prose_is_kept() {
        let html = format!(
            "<body><div><a href=a>One link</a> | <a href=b>Two link</a> | <a href=c>Three link</a></div><div><p>{LOREM}</p><p>{LOREM}</p></div></body>"
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(!out.text.contains("One link"));
        assert_eq!(out.text.matches("quick brown").count(), 2);
        let all = extract(
            &html,
            &ExtractOptions {
                remove_boilerplate: false,
                ..Default::default()
            },
        );
        assert!(all.text.contains("One link"));
    }
}
