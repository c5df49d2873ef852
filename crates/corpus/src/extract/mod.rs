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
//!    ones and headings only before good ones, and restricts to the main-content container (`<article>`,
//!    `<main>`, `entry-content`, `article__text`, ...) when that container holds most of the good text; inside
//!    it, sentences with many links are still prose and short lines between kept blocks are kept;
//! 4. without such a container, restricts to the region that prose paragraphs vote for ([`region`], the
//!    Readability idea), unless that region holds only a small share of the text.

pub mod dom;
pub mod mathml;
mod region;

use crate::document::Document;
use dom::{Dom, NodeId, NodeKind};
use std::collections::HashMap;

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
    let text_lengths = text_lengths(&dom);
    let (is_container, holds_content, parent) = content_ancestry(&dom, &text_lengths);
    let mut renderer = Renderer {
        dom: &dom,
        options,
        blocks: Vec::new(),
        current: Block::default(),
        formulas: 0,
        title: None,
        holds_content,
        is_container,
        text_lengths,
        container_parent: HashMap::new(),
    };
    renderer.walk(0, &Context::default(), 0);
    renderer.flush();
    let Renderer {
        blocks,
        formulas,
        title,
        container_parent,
        text_lengths: renderer_text_lengths,
        ..
    } = renderer;
    let kept = if options.remove_boilerplate {
        let page = Page {
            dom: &dom,
            parent: &parent,
            text_lengths: &renderer_text_lengths,
            container_parent: &container_parent,
        };
        select_blocks(&blocks, &page, options)
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
    /// Innermost block element its text starts in.
    node: NodeId,
}

#[derive(Debug, Clone, Copy, Default)]
struct Context {
    in_link: bool,
    in_pre: bool,
    heading: bool,
    container: Option<NodeId>,
    display_math: bool,
    block_node: NodeId,
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
    /// Whether each node is a main-content container.
    is_container: Vec<bool>,
    /// Per node: text characters outside and inside links (see [`text_lengths`]).
    text_lengths: Vec<(u32, u32)>,
    /// Each content container met, with the container enclosing it (if any).
    container_parent: HashMap<NodeId, Option<NodeId>>,
}

/// Per node: visible text characters outside links and inside links (scripts, styles and the head excluded).
fn text_lengths(dom: &Dom) -> Vec<(u32, u32)> {
    let n = dom.nodes.len();
    let mut lens = vec![(0u32, 0u32); n];
    for id in (0..n).rev() {
        let node = &dom.nodes[id];
        let (mut plain, mut linked) = (0u32, 0u32);
        match &node.kind {
            NodeKind::Text(t) => plain = t.split_whitespace().map(|w| w.chars().count() as u32 + 1).sum(),
            NodeKind::Element { name, .. } if matches!(name.as_str(), "script" | "style" | "head" | "template") => {}
            _ => {
                for &c in &node.children {
                    plain = plain.saturating_add(lens[c].0);
                    linked = linked.saturating_add(lens[c].1);
                }
                if node.name() == "a" {
                    (plain, linked) = (0, plain.saturating_add(linked));
                }
            }
        }
        lens[id] = (plain, linked);
    }
    lens
}

/// Per node: whether it is a main-content container, whether it is or has a descendant that is a sizeable one
/// (a fifth of the page's text outside links or more: teaser cards marked up as `<article>` do not shield their
/// sidebar), and its parent (`usize::MAX` for the root).
fn content_ancestry(dom: &Dom, text_lengths: &[(u32, u32)]) -> (Vec<bool>, Vec<bool>, Vec<NodeId>) {
    let page_chars = text_lengths[0].0 as u64;
    let n = dom.nodes.len();
    let mut parent = vec![usize::MAX; n];
    for (id, node) in dom.nodes.iter().enumerate() {
        for &c in &node.children {
            parent[c] = id;
        }
    }
    let mut holds = vec![false; n];
    let mut is_container = vec![false; n];
    // Children are created after their parents, so a reverse sweep sees every child before its parent.
    for id in (0..n).rev() {
        let node = &dom.nodes[id];
        if let NodeKind::Element { name, .. } = &node.kind {
            let class =
                format!("{} {}", node.attr("class").unwrap_or(""), node.attr("id").unwrap_or("")).to_ascii_lowercase();
            if is_content_container(node, name, &class) {
                holds[id] = text_lengths[id].0 as u64 * 5 >= page_chars;
                is_container[id] = true;
            }
        }
        if holds[id] && parent[id] != usize::MAX {
            holds[parent[id]] = true;
        }
    }
    (is_container, holds, parent)
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
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "object",
    "embed",
    "button",
    "select",
    "option",
    "textarea",
    "input",
    "nav",
    "aside",
    "footer",
    "head",
    "label",
    "video",
    "audio",
    "map",
    "dialog",
    "menu",
    // Image captions are mostly credits ("Foto: ...") and repeat the picture, not the article.
    "figcaption",
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
    "tags",
    "socials",
    "dropdown",
    "credit",
    "credits",
    "caption",
    "print",
];

/// Fragments that mark boilerplate anywhere inside a class/id word, for run-together names (`recipeCopyright`,
/// `mainNavigation`, `footerLinks`).
const BOILERPLATE_FRAGMENTS: &[&str] = &[
    "copyright",
    "cookie",
    "newsletter",
    "breadcrumb",
    "navigation",
    "sidebar",
    "footer",
];

/// Whether one class/id word marks boilerplate: a listed word, a listed fragment inside it, or a `nav…`/`…nav`
/// compound (`navdrop`, `topnav`).
fn is_boilerplate_word(w: &str) -> bool {
    BOILERPLATE_WORDS.contains(&w)
        || BOILERPLATE_FRAGMENTS.iter().any(|f| w.contains(f))
        || (w.len() > 3 && (w.starts_with("nav") || w.ends_with("nav")))
}

/// Headings that announce a section of links to other pages rather than the page's own content ("related
/// articles", "read more", ...), in the languages most common in crawls. Such a heading and the blocks under it,
/// up to the next heading, are boilerplate.
const RELATED_HEADINGS: &[&str] = &[
    "related",
    "related articles",
    "related posts",
    "related stories",
    "read more",
    "read also",
    "more on this topic",
    "more from",
    "you may also like",
    "you might also like",
    "recommended",
    "latest news",
    "latest articles",
    "most popular",
    "popular posts",
    "recent posts",
    "further reading",
    "mehr zum thema",
    "weiterführende links",
    "weiterführende informationen",
    "weitere artikel",
    "neueste artikel",
    "das könnte sie auch interessieren",
    "lesen sie auch",
    "auch interessant",
    "themen in diesem artikel",
    "zobacz także",
    "czytaj także",
    "czytaj też",
    "à lire aussi",
    "lire aussi",
    "sur le même sujet",
    "articles similaires",
    "te puede interesar",
    "noticias relacionadas",
    "leia também",
    "veja também",
    "leggi anche",
];

/// Whether an element's class or id says it titles related content (`relatedpoststitle`, `related-heading`), in
/// any language of the text.
fn names_related(node: &dom::Node) -> bool {
    ["class", "id"]
        .iter()
        .filter_map(|a| node.attr(a))
        .any(|v| v.to_ascii_lowercase().contains("related"))
}

/// Whether a heading's text announces a related-links section (case-insensitive, trailing punctuation ignored).
fn is_related_heading(text: &str) -> bool {
    let t = text
        .trim()
        .trim_end_matches(|c: char| c == ':' || c == '.' || c == '…' || c.is_whitespace())
        .to_lowercase();
    RELATED_HEADINGS.contains(&t.as_str())
}
/// Class/id words marking the main content.
const CONTENT_WORDS: &[&str] = &[
    "content", "article", "post", "entry", "story", "body", "text", "main", "answer", "question", "prose", "markdown",
];

impl Renderer<'_> {
    /// Whether a node flagged only by its class words is really a block of prose: hundreds of characters, few of
    /// them in links, or at least half of the page's text outside links, and not a comment or related-links
    /// section. Layout wrappers are often named after what sits next to them (`row--sidebar`, `cuerpo-ad`);
    /// menus, sidebars and ad slots hold links and short labels, and never most of a page's text, whereas an
    /// article wrapper may carry many links.
    fn is_prose(&self, id: NodeId, class: &str) -> bool {
        let (plain, linked) = self.text_lengths[id];
        let page_plain = self.text_lengths[0].0 as u64;
        let most_of_page = plain as u64 * 100 >= page_plain * MIN_PAGE_SHARE_PERCENT && plain > 0;
        (most_of_page || (plain >= 400 && (linked as f32) < 0.15 * (plain + linked) as f32))
            && !class_words(class).any(|w| {
                matches!(
                    w,
                    "comment"
                        | "comments"
                        | "disqus"
                        | "related"
                        | "recommended"
                        | "newsletter"
                        | "cookie"
                        | "cookies"
                        | "consent"
                        | "popup"
                        | "modal"
                        | "subscribe"
                        | "subscription"
                        | "footer"
                        | "copyright"
                )
            })
    }

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
            self.current.node = ctx.block_node;
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
        if self.options.remove_boilerplate && !self.holds_content[id] {
            match boilerplate_signal(node, name, &class) {
                // Site builders (Webflow) use `<header>` for page sections, the article included; a page header
                // is short, so one holding a third of the page's text is not one.
                Some(Signal::Structure)
                    if !(name == "header"
                        && self.text_lengths[id].0 as u64 * 3 >= self.text_lengths[0].0 as u64
                        && self.text_lengths[id].0 > 0) =>
                {
                    return
                }
                Some(Signal::ClassWord) if !self.is_prose(id, &class) => return,
                _ => {}
            }
        }
        if !self.options.remove_boilerplate && matches!(name, "style" | "noscript" | "template" | "svg" | "head") {
            return;
        }
        let block = BLOCK_TAGS.contains(&name);
        if block {
            self.flush();
            ctx.block_node = id;
        }
        match name {
            "a" => ctx.in_link = true,
            "pre" => ctx.in_pre = true,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => ctx.heading = true,
            "td" | "th" => self.push_text(" ", &ctx),
            _ => {}
        }
        if self.options.remove_boilerplate && self.is_container[id] {
            self.container_parent.insert(id, ctx.container);
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

/// Why an element counts as boilerplate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Its tag, ARIA role or visibility: always dropped.
    Structure,
    /// Only its class/id words: dropped unless it turns out to be prose.
    ClassWord,
}

fn boilerplate_signal(node: &dom::Node, name: &str, class: &str) -> Option<Signal> {
    let structure = Some(Signal::Structure);
    if DROP_TAGS.contains(&name) {
        return structure;
    }
    if name == "header" && !class_words(class).any(|w| matches!(w, "entry" | "article" | "post")) {
        return structure;
    }
    if let Some(role) = node.attr("role") {
        if matches!(
            role,
            "navigation" | "banner" | "contentinfo" | "complementary" | "search" | "menu" | "dialog" | "alert"
        ) {
            return structure;
        }
    }
    if node.attr("hidden").is_some() || node.attr("aria-hidden") == Some("true") {
        return (!class.contains("math")).then_some(Signal::Structure);
    }
    if let Some(style) = node.attr("style") {
        let style: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if (style.contains("display:none") || style.contains("visibility:hidden")) && !class.contains("math") {
            return structure;
        }
    }
    if matches!(name, "body" | "html" | "main" | "article") {
        return None;
    }
    let words: Vec<&str> = class_words(class).collect();
    if words.iter().any(|w| CONTENT_WORDS.contains(w))
        && !words.iter().any(|w| {
            matches!(
                *w,
                "footer" | "sidebar" | "comment" | "comments" | "related" | "nav" | "menu" | "caption" | "credit"
            )
        })
    {
        return None;
    }
    words
        .iter()
        .any(|w| is_boilerplate_word(w) || (*w == "header" && !words.contains(&"entry")))
        .then_some(Signal::ClassWord)
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
    if class.split_ascii_whitespace().any(names_article_body) {
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

/// Whether one class/id token names an article body the way CMS themes do: `article`, `post`, `story`,
/// `entry` or `news` followed by `body`, `content` or `text`, with any separators (`article__text`,
/// `post_content`, `storyBody`, `entry-text-wrap`).
fn names_article_body(token: &str) -> bool {
    if token.len() < 8 {
        return false;
    }
    // Separators dropped, on the stack: this runs for every class token of every element.
    let mut joined = [0u8; 64];
    let mut n = 0;
    for b in token.bytes().filter(u8::is_ascii_alphanumeric).take(joined.len()) {
        joined[n] = b;
        n += 1;
    }
    let joined = &joined[..n];
    (0..n).any(|i| {
        let prefix: &[u8] = match joined[i] {
            b'a' => b"article",
            b'p' => b"post",
            b's' => b"story",
            b'e' => b"entry",
            b'n' => b"news",
            _ => return false,
        };
        joined[i..].starts_with(prefix) && {
            let rest = &joined[i + prefix.len()..];
            rest.starts_with(b"body") || rest.starts_with(b"content") || rest.starts_with(b"text")
        }
    })
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

/// Words of a block for the length rules: whitespace-separated words, where each Han/Kana/Hangul character counts
/// as a word of its own (Chinese and Japanese prose has no spaces, so a whole paragraph would otherwise be one
/// "word" and be dropped as too short).
fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .map(|w| {
            let cjk = w
                .chars()
                .filter(|&c| matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF))
                .count();
            if cjk == 0 {
                1
            } else {
                cjk
            }
        })
        .sum()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Good,
    Short,
    Bad,
}

/// Whether `node` is `ancestor` or lies below it.
fn is_descendant(parent: &[NodeId], mut node: NodeId, ancestor: NodeId) -> bool {
    for _ in 0..=dom::MAX_DEPTH {
        if node == ancestor {
            return true;
        }
        match parent.get(node) {
            Some(&up) if up != usize::MAX => node = up,
            _ => return false,
        }
    }
    false
}

/// Share of the page's text outside links (percent) above which an element named like boilerplate is content.
const MIN_PAGE_SHARE_PERCENT: u64 = 50;

/// Least share of the kept text (in tenths) a scored region must hold to replace the whole page.
const REGION_MIN_SHARE_TENTHS: usize = 2;

/// Most text, in percent of the chosen container's, that prose before it in the enclosing container may have to
/// be taken as the article's lead.
const MAX_LEAD_PERCENT: usize = 25;

/// Link density up to which a sentence-length block inside the chosen container is still prose.
const MAX_PROSE_LINK_DENSITY: f32 = 0.75;

/// The parsed page as block selection sees it.
struct Page<'a> {
    dom: &'a Dom,
    parent: &'a [NodeId],
    text_lengths: &'a [(u32, u32)],
    container_parent: &'a HashMap<NodeId, Option<NodeId>>,
}

/// jusText-style block selection plus main-container restriction.
fn select_blocks(blocks: &[Block], page: &Page, options: &ExtractOptions) -> Vec<usize> {
    let container_parent = page.container_parent;
    let classes: Vec<Class> = blocks
        .iter()
        .map(|b| {
            let words = word_count(&b.text);
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
    // Sentences that carry a few links (sources, names) are prose inside an article even when most of their
    // words are linked; outside one they look like menus. Remember them to take back once a container is chosen.
    let mut linked_prose: Vec<bool> = blocks
        .iter()
        .zip(&classes)
        .map(|(b, c)| {
            let chars = b.text.chars().count().max(1);
            *c == Class::Bad
                && !b.heading
                && (b.link_chars as f32 / chars as f32) <= MAX_PROSE_LINK_DENSITY
                && word_count(&b.text) >= options.min_block_words
        })
        .collect();
    // A related-links heading and everything under it is boilerplate; the section ends at the next heading or
    // where the element around the heading closes, whichever comes first.
    let mut classes = classes;
    let mut related_section: Option<NodeId> = None;
    for (i, b) in blocks.iter().enumerate() {
        if b.heading {
            let related = is_related_heading(&b.text) || names_related(&page.dom.nodes[b.node]);
            related_section = related.then(|| page.parent[b.node]);
        }
        if let Some(section) = related_section {
            if is_descendant(page.parent, b.node, section) {
                classes[i] = Class::Bad;
                linked_prose[i] = false;
            } else {
                related_section = None;
            }
        }
    }
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
            // A heading introduces what follows it: after content, before boilerplate, it titles the boilerplate.
            _ if blocks[i].heading => next == Some(Class::Good),
            (Some(Class::Good), Some(Class::Good)) => true,
            (Some(Class::Good), _) | (_, Some(Class::Good)) => word_count(&blocks[i].text) >= 4,
            _ => false,
        };
    }
    // Restrict to the innermost container holding most (≥ 60%) of the good text, if one does. A block counts for
    // every container around it, so an `<article>` nested in `<main>` does not split the text between the two.
    let total: usize = (0..blocks.len())
        .filter(|&i| keep[i])
        .map(|i| blocks[i].text.len())
        .sum();
    let chain = |mut c: Option<NodeId>| {
        std::iter::from_fn(move || {
            let id = c?;
            c = container_parent.get(&id).copied().flatten();
            Some(id)
        })
        .take(64)
    };
    let mut per_container: HashMap<NodeId, (usize, usize)> = HashMap::new();
    for i in (0..blocks.len()).filter(|&i| keep[i]) {
        for c in chain(blocks[i].container) {
            per_container.entry(c).or_default().0 += blocks[i].text.len();
        }
    }
    for (&c, entry) in per_container.iter_mut() {
        entry.1 = chain(Some(c)).count();
    }
    if let Some((&innermost, _)) = per_container
        .iter()
        .filter(|(_, (len, _))| len * 10 >= total * 6 && *len > 0)
        .max_by_key(|(id, (_, depth))| (*depth, std::cmp::Reverse(**id)))
    {
        let best = innermost;
        // Themes put the lead paragraph or intro beside the article body, inside the `<article>`: take the prose
        // blocks (not bylines, dates or credits) of the enclosing container that come before the body, when they
        // are short next to it.
        let in_best = |i: usize| chain(blocks[i].container).any(|c| c == best);
        let first = (0..blocks.len())
            .find(|&i| (keep[i] || linked_prose[i]) && in_best(i))
            .unwrap_or(0);
        let lead: Vec<usize> = match container_parent.get(&best) {
            Some(&Some(up)) => (0..first)
                .filter(|&i| {
                    classes[i] == Class::Good && !blocks[i].heading && chain(blocks[i].container).any(|c| c == up)
                })
                .collect(),
            _ => Vec::new(),
        };
        let lead_len: usize = lead.iter().map(|&i| blocks[i].text.len()).sum();
        let lead = if lead_len * 100 <= per_container[&best].0 * MAX_LEAD_PERCENT {
            lead
        } else {
            Vec::new()
        };
        // Inside the article body, short lines between kept blocks (list items, table cells, ingredient lines,
        // labels) belong to it even when they are not next to a long block; headings still need content after them.
        let body: Vec<usize> = (first..blocks.len())
            .filter(|&i| (keep[i] || linked_prose[i]) && in_best(i))
            .collect();
        let last = body.last().copied().unwrap_or(first);
        let body = (first..=last).filter(|&i| {
            in_best(i) && (keep[i] || linked_prose[i] || (classes[i] == Class::Short && !blocks[i].heading))
        });
        return lead.into_iter().chain(body).collect();
    }
    // No container holds most of the text: fall back on the best-scoring region of prose paragraphs.
    let paragraphs = (0..blocks.len())
        .filter(|&i| classes[i] == Class::Good && !blocks[i].heading)
        .map(|i| region::Paragraph {
            node: blocks[i].node,
            text: &blocks[i].text,
        });
    if let Some(in_region) = region::main_region(page.dom, page.parent, page.text_lengths, paragraphs) {
        // A region with a small share of the text is one section among many (a portal, a company page), not an
        // article amid boilerplate.
        let inside: usize = (0..blocks.len())
            .filter(|&i| keep[i] && in_region[blocks[i].node])
            .map(|i| blocks[i].text.len())
            .sum();
        if inside * 10 >= total * REGION_MIN_SHARE_TENTHS {
            return (0..blocks.len())
                .filter(|&i| keep[i] && in_region[blocks[i].node])
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

    #[test]
    fn prose_in_a_misleadingly_named_wrapper_is_kept_but_real_sidebars_are_not() {
        let prose = LOREM.repeat(6);
        let html = format!(
            r#"<body><article><div class="item-content__row--sidebar"><p>{prose}</p></div>
            <div class="sidebar"><a href=a>Other story one</a> <a href=b>Other story two</a> <a href=c>Three</a></div>
            <div class="comments"><p>{prose} A reader comment.</p></div></article></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(out.text.contains("quick brown"), "{}", out.text);
        assert!(!out.text.contains("Other story"), "{}", out.text);
        assert!(!out.text.contains("reader comment"), "{}", out.text);
    }

    #[test]
    fn captions_credits_and_related_sections_are_dropped() {
        let html = format!(
            r#"<body><article><p>{LOREM}</p><figure><img src=x.jpg><figcaption>Foto: Agentur</figcaption></figure>
            <p>{LOREM}</p><span class="photoCopyright">Bild: Someone</span>
            <h2>Mehr zum Thema:</h2><p>{LOREM} Teaser of another article.</p>
            <h2>Next section</h2><p>{LOREM} Back to the article.</p></article></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        for junk in ["Foto:", "Bild:", "Mehr zum Thema", "Teaser"] {
            assert!(!out.text.contains(junk), "{junk} leaked: {}", out.text);
        }
        assert!(out.text.contains("Back to the article"), "{}", out.text);
    }

    #[test]
    fn paragraph_votes_find_the_article_among_teasers() {
        let teaser = "A short summary of another story that the site wants you to read next, with a date.";
        let teasers: String = (0..8)
            .map(|i| format!("<li><div class=card><a href=/s{i}>Other story {i}</a><p>{teaser}</p></div></li>"))
            .collect();
        let article = format!("<p>{LOREM} One, two, three.</p>").repeat(6);
        let html = format!(
            r#"<body><div class=wrap><div class=col>{article}</div><ul class=list>{teasers}</ul></div></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert_eq!(out.text.matches("quick brown").count(), 6, "{}", out.text);
        assert!(!out.text.contains("summary of another story"), "{}", out.text);
    }

    #[test]
    fn related_section_ends_with_its_element() {
        let html = format!(
            r#"<body><div><div class=box><h2>Read more</h2><p>{LOREM} A teaser for something else.</p></div>
            <p>{LOREM} The article goes on here.</p></div></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(!out.text.contains("teaser"), "{}", out.text);
        assert!(out.text.contains("article goes on"), "{}", out.text);
    }

    #[test]
    fn teaser_cards_do_not_shield_their_sidebar() {
        let prose = format!("<p>{LOREM}</p>").repeat(8);
        let html = format!(
            r#"<body><main><article>{prose}</article>
            <aside><article><p>{LOREM} Teaser card in the sidebar.</p></article></aside></main></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(!out.text.contains("Teaser card"), "{}", out.text);
        assert_eq!(out.text.matches("quick brown").count(), 8, "{}", out.text);
    }

    #[test]
    fn linked_sentences_inside_the_article_are_prose() {
        let html = format!(
            r#"<body><div><a href=a>Home page link</a> <a href=b>Another menu link</a></div>
            <article><p>{LOREM}</p><p>{LOREM}</p>
            <p>As <a href=c>the national weather service reported</a> on Monday, <a href=d>heavy rain</a> is expected.</p>
            <h2>Follow us</h2><div><a href=e>Twitter account link</a> <a href=f>Facebook page link</a></div></article></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(out.text.contains("heavy rain is expected"), "{}", out.text);
        for junk in ["Home page", "Follow us", "Twitter"] {
            assert!(!out.text.contains(junk), "{junk} leaked: {}", out.text);
        }
    }

    #[test]
    fn a_wrapper_named_like_boilerplate_that_holds_most_of_the_page_is_content() {
        // A fifth of the characters in links: the prose test alone (few links) would drop it.
        let para = "As <a href=a>the agency reported</a>, the new survey of prime gaps was published on Monday and \
                    <a href=c>its authors</a> expect more results.";
        let body = format!("<p>{para}</p>").repeat(6);
        let html = format!(
            r#"<body><div class="menu"><a href=h>Home</a> <a href=n>News</a></div>
            <div class="share-wrapper">{body}</div>
            <div class="sidebar"><p>{LOREM}</p></div></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert_eq!(out.text.matches("prime gaps").count(), 6, "{}", out.text);
        assert!(!out.text.contains("quick brown"), "{}", out.text);
    }

    #[test]
    fn a_header_holding_the_article_is_kept_but_a_page_header_is_not() {
        let body = format!("<p>{LOREM}</p>").repeat(5);
        let html = format!(
            r#"<body><header class="top"><p>Site slogan with enough words to be a block of text here.</p></header>
            <header class="section_blogpost"><div class="rich-text">{body}</div></header></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert_eq!(out.text.matches("quick brown").count(), 5, "{}", out.text);
        assert!(!out.text.contains("slogan"), "{}", out.text);
    }

    #[test]
    fn article_body_class_names_are_recognised_with_any_separator() {
        for yes in [
            "article__text",
            "post_content",
            "storyBody",
            "entry-text-wrap",
            "td-post-content",
        ] {
            assert!(names_article_body(&yes.to_ascii_lowercase()), "{yes}");
        }
        for no in [
            "article",
            "post-meta",
            "entry-title",
            "content",
            "newsletter",
            "textwidget",
        ] {
            assert!(!names_article_body(no), "{no}");
        }
    }

    #[test]
    fn headings_classed_as_related_start_a_related_section() {
        let teasers = format!("<article><p>{LOREM} Teaser of another post.</p></article>").repeat(4);
        let html = format!(
            r#"<body><article><h1>Title</h1><p>{LOREM} The post itself.</p></article>
            <div><h3 class="relatedpoststitle">Você pode gostar...</h3>{teasers}</div></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        assert!(out.text.contains("The post itself"), "{}", out.text);
        assert!(!out.text.contains("Teaser"), "{}", out.text);
    }

    #[test]
    fn short_lines_inside_the_article_body_are_kept() {
        let html = format!(
            r#"<body><nav><a href=a>Home</a></nav><article><p>{LOREM}</p><ul><li>6 eggs</li><li>200 g flour</li>
            <li>1 lemon</li></ul><p><a href=p>Print this recipe</a></p><p>{LOREM} Bake it for an hour.</p></article>
            <div><span>Short footer line</span></div></body>"#
        );
        let out = extract(&html, &ExtractOptions::default());
        for line in ["6 eggs", "200 g flour", "1 lemon", "Bake it"] {
            assert!(out.text.contains(line), "{line} missing: {}", out.text);
        }
        assert!(!out.text.contains("footer line"), "{}", out.text);
        assert!(!out.text.contains("Print this"), "{}", out.text);
    }

    #[test]
    fn chinese_paragraphs_are_not_short() {
        let zh = "数学是研究数量、结构、变化以及空间等概念的一门学科，从某种角度看属于形式科学的一种。";
        let html = format!("<body><div><p>{zh}</p><p>{zh}</p></div></body>");
        let out = extract(&html, &ExtractOptions::default());
        assert_eq!(out.text.matches("数学是").count(), 2, "{}", out.text);
        assert!(word_count(zh) > 30);
    }
}
