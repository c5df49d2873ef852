//! Main-content region by paragraph scoring, the idea behind Arc90 Readability.
//!
//! Class names find the article on most pages, but many themes have no recognisable container, or one that holds
//! only part of the text next to long teaser lists ("more from ...", breaking-news tickers) that outweigh it.
//! Paragraphs tell them apart: an article is many prose paragraphs under one parent, a teaser list is one short
//! paragraph per item, each under its own wrapper, with links around. So every prose paragraph votes for the
//! elements above it (its parent fully, farther ancestors less), votes are discounted by the element's link
//! density and nudged by class words, and the best element, joined by siblings that score close to it, is the
//! region.

use super::dom::{Dom, NodeId, NodeKind};

/// A paragraph's vote: the element that holds the paragraph's text, and the text itself.
pub(super) struct Paragraph<'a> {
    /// The innermost block element the text sits in.
    pub node: NodeId,
    /// Its rendered text.
    pub text: &'a str,
}

/// Per node: whether it lies in the main-content region (`None` when no element scores as a region).
pub(super) fn main_region<'a>(
    dom: &Dom,
    parent: &[NodeId],
    text_lengths: &[(u32, u32)],
    paragraphs: impl Iterator<Item = Paragraph<'a>>,
) -> Option<Vec<bool>> {
    let n = dom.nodes.len();
    let mut score = vec![f32::NAN; n];
    let link_density = |id: NodeId| {
        let (plain, linked) = text_lengths[id];
        linked as f32 / (plain + linked).max(1) as f32
    };
    for p in paragraphs {
        let chars = p.text.chars().count();
        if chars < 25 {
            continue;
        }
        let commas = p.text.chars().filter(|c| matches!(c, ',' | '，' | '、' | '؛')).count();
        let vote = 1.0 + commas as f32 + (chars / 100).min(3) as f32;
        let mut id = p.node;
        for level in 0..5 {
            let up = parent[id];
            if up == usize::MAX || up == 0 {
                break;
            }
            id = up;
            if score[id].is_nan() {
                score[id] = initial_score(dom, id);
            }
            score[id] += match level {
                0 => vote,
                1 => vote / 2.0,
                _ => vote / (level as f32 * 3.0),
            };
        }
    }
    for (id, s) in score.iter_mut().enumerate() {
        if !s.is_nan() {
            *s *= 1.0 - link_density(id);
        }
    }
    let mut ranked: Vec<(NodeId, f32)> = score
        .iter()
        .enumerate()
        .filter(|(id, s)| !s.is_nan() && !is_page_root(dom, *id))
        .map(|(id, s)| (id, *s))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(5);
    let &(mut top, best) = ranked.first()?;
    let top_score = best;
    // Below this, a handful of short paragraphs: too little evidence to cut the page down.
    if top_score < 20.0 {
        return None;
    }
    let ancestors = |mut id: NodeId| {
        std::iter::from_fn(move || {
            id = parent[id];
            (id != usize::MAX && id != 0).then_some(id)
        })
        .take(super::dom::MAX_DEPTH)
    };
    // Near-equal runners-up (sections of one article, each with its own wrapper): move to the nearest ancestor
    // of the top candidate that holds at least three of them.
    let close: Vec<NodeId> = ranked[1..]
        .iter()
        .filter(|(_, s)| *s >= 0.75 * top_score)
        .map(|(id, _)| *id)
        .collect();
    if close.len() >= 3 {
        if let Some(common) = ancestors(top)
            .take_while(|&a| !is_page_root(dom, a))
            .find(|&a| close.iter().filter(|&&c| ancestors(c).any(|x| x == a)).count() >= 3)
        {
            top = common;
        }
    }
    // Climb while an ancestor scores higher than the candidate (the paragraphs were split over several children
    // of a real container), giving up once ancestors fall far below it.
    let floor = score[top] / 3.0;
    let mut last = score[top];
    for up in ancestors(top).take_while(|&a| !is_page_root(dom, a)) {
        let s = score[up];
        if s.is_nan() {
            continue;
        }
        if s < floor {
            break;
        }
        if s > last {
            top = up;
            break;
        }
        last = s;
    }
    // A wrapper around nothing but the candidate is the same region, and its siblings are the ones to weigh.
    while let Some(up) = ancestors(top).next() {
        if is_page_root(dom, up) || element_children(dom, up) != 1 {
            break;
        }
        top = up;
    }
    let top_score = if score[top].is_nan() {
        best
    } else {
        score[top].max(best)
    };
    // Siblings that score close to the candidate, or hold plain prose, belong to the article too.
    let mut in_region = vec![false; n];
    let siblings: &[NodeId] = match parent[top] {
        usize::MAX => std::slice::from_ref(&top),
        p => &dom.nodes[p].children,
    };
    let threshold = (top_score * 0.2).max(10.0);
    for &s in siblings {
        let (plain, linked) = text_lengths[s];
        let chars = plain + linked;
        let join = s == top
            || (!score[s].is_nan() && score[s] >= threshold)
            || (dom.nodes[s].name() == "p" && chars > 80 && link_density(s) < 0.25);
        in_region[s] = join;
    }
    // Children come after their parents in the arena, so one forward sweep spreads membership down.
    for id in 1..n {
        if !in_region[id] && parent[id] != usize::MAX && in_region[parent[id]] {
            in_region[id] = true;
        }
    }
    Some(in_region)
}

fn is_page_root(dom: &Dom, id: NodeId) -> bool {
    matches!(dom.nodes[id].name(), "body" | "html")
}

/// Element children and non-blank text children of a node.
fn element_children(dom: &Dom, id: NodeId) -> usize {
    dom.nodes[id]
        .children
        .iter()
        .filter(|&&c| match &dom.nodes[c].kind {
            NodeKind::Text(t) => !t.trim().is_empty(),
            NodeKind::Element { name, .. } => !matches!(name.as_str(), "script" | "style"),
            NodeKind::Root => false,
        })
        .count()
}

/// An element's score before votes: by tag (containers of prose up, lists and headings down) and by class/id
/// words that usually mark articles or their surroundings.
fn initial_score(dom: &Dom, id: NodeId) -> f32 {
    let node = &dom.nodes[id];
    let mut s = match node.name() {
        "div" | "article" | "main" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    };
    for attr in ["class", "id"] {
        let value = node.attr(attr).unwrap_or("").to_ascii_lowercase();
        if value.is_empty() {
            continue;
        }
        if NEGATIVE.iter().any(|w| value.contains(w)) {
            s -= 25.0;
        }
        if POSITIVE.iter().any(|w| value.contains(w)) {
            s += 25.0;
        }
    }
    s
}

/// Class/id fragments of article containers.
const POSITIVE: &[&str] = &[
    "article", "body", "content", "entry", "hentry", "main", "page", "post", "text", "blog", "story",
];
/// Class/id fragments of what surrounds articles.
const NEGATIVE: &[&str] = &[
    "banner", "comment", "contact", "foot", "masthead", "media", "meta", "outbrain", "promo", "related", "share",
    "sidebar", "sponsor", "shopping", "tags", "tool", "widget", "teaser", "ticker",
];
