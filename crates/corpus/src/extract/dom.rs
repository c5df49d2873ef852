//! A small, forgiving HTML parser into an arena tree.
//!
//! Extraction needs structure (which block a text belongs to, which subtree is a footer or a formula) but not
//! the full HTML5 tree-construction algorithm; this parser implements the parts that matter for text: raw-text
//! elements, void elements, implied end tags for `p`/`li`/table cells, character references, and recovery from
//! stray or missing end tags. It works on bytes and slices only at ASCII delimiters, so it cannot panic on any
//! input (see the `html_extract` fuzz target).

/// Index of a node in [`Dom::nodes`].
pub type NodeId = usize;

/// A node: element (with tag name and attributes) or text.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// The document root.
    Root,
    /// An element; `name` is lower-case.
    Element {
        /// Tag name, lower-cased.
        name: String,
        /// Attributes (names lower-cased, values entity-decoded).
        attrs: Vec<(String, String)>,
    },
    /// Character data (entity-decoded).
    Text(String),
}

/// One node and its children.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Child nodes in order.
    pub children: Vec<NodeId>,
}

impl Node {
    /// Tag name, or `""` for text and root.
    pub fn name(&self) -> &str {
        match &self.kind {
            NodeKind::Element { name, .. } => name,
            _ => "",
        }
    }

    /// Attribute value by lower-case name.
    pub fn attr(&self, key: &str) -> Option<&str> {
        match &self.kind {
            NodeKind::Element { attrs, .. } => attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// A parsed document.
#[derive(Debug, Clone)]
pub struct Dom {
    /// All nodes; index 0 is the root.
    pub nodes: Vec<Node>,
}

/// Deepest element nesting kept (real pages stay far below; fuzzers and broken pages do not).
pub const MAX_DEPTH: usize = 256;

const VOID: &[&str] = &[
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
    "mprespace",
    "mspace",
];
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "noscript", "iframe", "noembed", "noframes",
];
/// Opening one of these closes an open `<p>`.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "div",
    "dl",
    "fieldset",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
    "figure",
    "details",
];

impl Dom {
    /// Parses HTML text.
    pub fn parse(html: &str) -> Dom {
        let mut dom = Dom {
            nodes: vec![Node {
                kind: NodeKind::Root,
                children: Vec::new(),
            }],
        };
        let mut stack: Vec<NodeId> = vec![0];
        let bytes = html.as_bytes();
        let mut pos = 0;
        let mut text_start = 0;
        while pos < bytes.len() {
            if bytes[pos] != b'<' {
                pos += memchr::memchr(b'<', &bytes[pos..]).unwrap_or(bytes.len() - pos);
                continue;
            }
            let next = bytes.get(pos + 1).copied().unwrap_or(0);
            let is_tag = next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?';
            if !is_tag {
                pos += 1;
                continue;
            }
            dom.push_text(&stack, &html[text_start..pos]);
            if next == b'!' || next == b'?' {
                // Comment, doctype, CDATA or processing instruction.
                let end = if bytes[pos..].starts_with(b"<!--") {
                    find(bytes, pos + 4, b"-->").map(|e| e + 3)
                } else if bytes[pos..].starts_with(b"<![CDATA[") {
                    let end = find(bytes, pos + 9, b"]]>");
                    if let Some(e) = end {
                        dom.push_text(&stack, &html[pos + 9..e]);
                    }
                    end.map(|e| e + 3)
                } else {
                    memchr::memchr(b'>', &bytes[pos..]).map(|e| pos + e + 1)
                };
                pos = end.unwrap_or(bytes.len());
                text_start = pos;
                continue;
            }
            let (tag, end) = parse_tag(html, pos);
            pos = end;
            text_start = pos;
            let Some(tag) = tag else { continue };
            if tag.closing {
                dom.close(&mut stack, &tag.name);
                continue;
            }
            dom.imply_end_tags(&mut stack, &tag.name);
            let id = dom.nodes.len();
            let parent = *stack.last().unwrap_or(&0);
            dom.nodes.push(Node {
                kind: NodeKind::Element {
                    name: tag.name.clone(),
                    attrs: tag.attrs,
                },
                children: Vec::new(),
            });
            dom.nodes[parent].children.push(id);
            if RAW_TEXT.contains(&tag.name.as_str()) && !tag.self_closing {
                let close = find_close_tag(bytes, pos, &tag.name);
                let (content_end, after) = close.unwrap_or((bytes.len(), bytes.len()));
                let raw = &html[pos..content_end];
                if !raw.is_empty() {
                    let text = if tag.name == "title" || tag.name == "textarea" {
                        decode_entities(raw)
                    } else {
                        raw.to_string()
                    };
                    let tid = dom.nodes.len();
                    dom.nodes.push(Node {
                        kind: NodeKind::Text(text),
                        children: Vec::new(),
                    });
                    dom.nodes[id].children.push(tid);
                }
                pos = after;
                text_start = pos;
                continue;
            }
            // Depth is capped so that every recursive walk over the tree is bounded; deeper elements become
            // leaves and their content attaches to the deepest open element.
            if !tag.self_closing && !VOID.contains(&tag.name.as_str()) && stack.len() < MAX_DEPTH {
                stack.push(id);
            }
        }
        dom.push_text(&stack, &html[text_start.min(html.len())..]);
        dom
    }

    fn push_text(&mut self, stack: &[NodeId], raw: &str) {
        if raw.is_empty() {
            return;
        }
        let parent = *stack.last().unwrap_or(&0);
        let text = decode_entities(raw);
        // Merge with a preceding text sibling (split by comments).
        if let Some(&last) = self.nodes[parent].children.last() {
            if let NodeKind::Text(prev) = &mut self.nodes[last].kind {
                prev.push_str(&text);
                return;
            }
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            kind: NodeKind::Text(text),
            children: Vec::new(),
        });
        self.nodes[parent].children.push(id);
    }

    fn close(&mut self, stack: &mut Vec<NodeId>, name: &str) {
        // Pop to the nearest open element of that name; ignore stray end tags.
        if let Some(depth) = stack.iter().rposition(|&id| self.nodes[id].name() == name) {
            if depth > 0 {
                stack.truncate(depth);
            }
        }
    }

    fn imply_end_tags(&mut self, stack: &mut Vec<NodeId>, name: &str) {
        let top = |stack: &Vec<NodeId>, dom: &Dom| dom.nodes[*stack.last().unwrap_or(&0)].name().to_string();
        if CLOSES_P.contains(&name) && top(stack, self) == "p" {
            stack.pop();
        }
        let closes_same: &[&str] = match name {
            "li" => &["li"],
            "dt" | "dd" => &["dt", "dd"],
            "tr" => &["tr", "td", "th"],
            "td" | "th" => &["td", "th"],
            "option" => &["option"],
            _ => &[],
        };
        if !closes_same.is_empty() {
            // Only look up to the nearest list/table container.
            let limit = ["ul", "ol", "table", "tbody", "thead", "dl", "select"];
            for depth in (1..stack.len()).rev() {
                let n = self.nodes[stack[depth]].name();
                if closes_same.contains(&n) {
                    stack.truncate(depth);
                    break;
                }
                if limit.contains(&n) {
                    break;
                }
            }
        }
    }

    /// All text below a node, concatenated without any formatting.
    pub fn text_content(&self, id: NodeId) -> String {
        let mut out = String::new();
        self.collect_text(id, &mut out);
        out
    }

    fn collect_text(&self, id: NodeId, out: &mut String) {
        match &self.nodes[id].kind {
            NodeKind::Text(t) => out.push_str(t),
            _ => {
                for &c in &self.nodes[id].children {
                    self.collect_text(c, out);
                }
            }
        }
    }
}

struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
    closing: bool,
    self_closing: bool,
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|i| from + i)
}

/// Finds `</name` (case-insensitive) from `from`; returns (content end, position after the closing `>`).
fn find_close_tag(bytes: &[u8], from: usize, name: &str) -> Option<(usize, usize)> {
    let mut pos = from;
    while let Some(i) = find(bytes, pos, b"</") {
        let after = i + 2;
        let candidate = bytes.get(after..after + name.len())?;
        let boundary = bytes.get(after + name.len()).copied().unwrap_or(b'>');
        if candidate.eq_ignore_ascii_case(name.as_bytes())
            && (boundary == b'>' || boundary.is_ascii_whitespace() || boundary == b'/')
        {
            let close = memchr::memchr(b'>', &bytes[after..])
                .map(|e| after + e + 1)
                .unwrap_or(bytes.len());
            return Some((i, close));
        }
        pos = after;
    }
    None
}

/// Parses a tag starting at `<`; returns the tag (None if malformed) and the position after it.
fn parse_tag(html: &str, start: usize) -> (Option<Tag>, usize) {
    let bytes = html.as_bytes();
    let mut pos = start + 1;
    let closing = bytes.get(pos) == Some(&b'/');
    if closing {
        pos += 1;
    }
    let name_start = pos;
    while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' && bytes[pos] != b'/' {
        pos += 1;
    }
    let name = html[name_start..pos].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            if bytes[pos] == b'/' {
                self_closing = true;
            }
            pos += 1;
        }
        if pos >= bytes.len() {
            break;
        }
        if bytes[pos] == b'>' {
            pos += 1;
            break;
        }
        self_closing = false;
        let key_start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && !matches!(bytes[pos], b'=' | b'>' | b'/') {
            pos += 1;
        }
        if pos == key_start {
            // A stray `=`: skip it so the loop always advances.
            pos += 1;
            continue;
        }
        let key = html[key_start..pos].to_ascii_lowercase();
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let mut value = String::new();
        if bytes.get(pos) == Some(&b'=') {
            pos += 1;
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            match bytes.get(pos) {
                Some(&q @ (b'"' | b'\'')) => {
                    let vstart = pos + 1;
                    let vend = memchr::memchr(q, &bytes[vstart..])
                        .map(|e| vstart + e)
                        .unwrap_or(bytes.len());
                    value = decode_entities(&html[vstart..vend]);
                    pos = (vend + 1).min(bytes.len());
                }
                _ => {
                    let vstart = pos;
                    while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                        pos += 1;
                    }
                    value = decode_entities(&html[vstart..pos]);
                }
            }
        }
        if attrs.len() < 64 {
            attrs.push((key, value));
        }
    }
    if name.is_empty() {
        return (None, pos);
    }
    (
        Some(Tag {
            name,
            attrs,
            closing,
            self_closing,
        }),
        pos,
    )
}

/// Decodes character references (`&amp;`, `&#955;`, `&#x3bb;`, and the named ones common in text and math).
pub fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.as_bytes().iter().take(40).position(|&b| b == b';');
        let decoded = end.and_then(|e| decode_one(&rest[1..e]).map(|c| (c, e + 1)));
        match decoded {
            Some((c, len)) => {
                out.push_str(&c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_one(name: &str) -> Option<String> {
    if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse().ok()?
        };
        let c = char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{fffd}');
        return Some(c.to_string());
    }
    let c = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => "\u{a0}",
        "ndash" => "–",
        "mdash" => "—",
        "hellip" => "…",
        "lsquo" => "‘",
        "rsquo" => "’",
        "ldquo" => "“",
        "rdquo" => "”",
        "laquo" => "«",
        "raquo" => "»",
        "bull" => "•",
        "middot" => "·",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "deg" => "°",
        "times" => "×",
        "divide" => "÷",
        "plusmn" => "±",
        "minus" => "−",
        "le" => "≤",
        "ge" => "≥",
        "ne" => "≠",
        "asymp" => "≈",
        "equiv" => "≡",
        "infin" => "∞",
        "sum" => "∑",
        "prod" => "∏",
        "int" => "∫",
        "radic" => "√",
        "part" => "∂",
        "nabla" => "∇",
        "isin" => "∈",
        "notin" => "∉",
        "sub" => "⊂",
        "sube" => "⊆",
        "sup" => "⊃",
        "cup" => "∪",
        "cap" => "∩",
        "forall" => "∀",
        "exist" => "∃",
        "empty" => "∅",
        "rarr" => "→",
        "larr" => "←",
        "harr" => "↔",
        "rArr" => "⇒",
        "hArr" => "⇔",
        "sup2" => "²",
        "sup3" => "³",
        "frac12" => "½",
        "frac14" => "¼",
        "frac34" => "¾",
        "alpha" => "α",
        "beta" => "β",
        "gamma" => "γ",
        "delta" => "δ",
        "epsilon" => "ε",
        "theta" => "θ",
        "lambda" => "λ",
        "mu" => "μ",
        "pi" => "π",
        "sigma" => "σ",
        "tau" => "τ",
        "phi" => "φ",
        "omega" => "ω",
        "Delta" => "Δ",
        "Sigma" => "Σ",
        "Omega" => "Ω",
        "Pi" => "π",
        "euro" => "€",
        "pound" => "£",
        "yen" => "¥",
        "cent" => "¢",
        "sect" => "§",
        "para" => "¶",
        "shy" => "\u{ad}",
        "zwj" => "\u{200d}",
        "zwnj" => "\u{200c}",
        "thinsp" => "\u{2009}",
        "ensp" => "\u{2002}",
        "emsp" => "\u{2003}",
        "iexcl" => "¡",
        "iquest" => "¿",
        "auml" => "ä",
        "ouml" => "ö",
        "uuml" => "ü",
        "Auml" => "Ä",
        "Ouml" => "Ö",
        "Uuml" => "Ü",
        "szlig" => "ß",
        "eacute" => "é",
        "egrave" => "è",
        "aacute" => "á",
        "agrave" => "à",
        "oacute" => "ó",
        "iacute" => "í",
        "uacute" => "ú",
        "ntilde" => "ñ",
        "ccedil" => "ç",
        "ecirc" => "ê",
        "acirc" => "â",
        _ => return None,
    };
    Some(c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_tree_with_implied_and_stray_tags() {
        let dom =
            Dom::parse("<div><p>one<p>two</span></div><ul><li>a<li>b</ul><script>if (a<b) {}</script>x &amp; y &#955;");
        let root = &dom.nodes[0];
        let div = root.children[0];
        assert_eq!(dom.nodes[div].children.len(), 2, "second <p> closes the first");
        let ul = root.children[1];
        assert_eq!(dom.nodes[ul].children.len(), 2);
        assert_eq!(dom.text_content(root.children[2]), "if (a<b) {}");
        assert_eq!(dom.text_content(0).trim_end(), "onetwoabif (a<b) {}x & y λ");
    }

    #[test]
    fn nesting_depth_is_capped() {
        let html = "<div>".repeat(100_000) + "deep";
        let dom = Dom::parse(&html);
        assert!(dom.text_content(0).contains("deep"));
    }

    #[test]
    fn survives_garbage() {
        for s in [
            "<",
            "<a",
            "<a href='",
            "<!--",
            "<![CDATA[x",
            "</",
            "<a =b>",
            "&#xffffffff;",
            "<script>",
            "é<é>ü",
        ] {
            let _ = Dom::parse(s);
        }
    }
}
