//! Per-domain and per-path-prefix collection statistics.

use crate::dedup::url::normalize_url;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Domain-discovery parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainConfig {
    /// A domain is math-related when more than this fraction of its pages was collected (paper: 0.1).
    pub math_fraction: f64,
    /// Domains with fewer crawled pages are not judged (one collected page out of one is no evidence).
    pub min_pages: usize,
    /// Path prefixes are exported down to this many segments (1: `/questions`, 2: `/questions/tagged`).
    pub max_prefix_depth: usize,
    /// Sample URLs exported per prefix.
    pub samples_per_prefix: usize,
    /// Prefixes with fewer pages than this are not exported: a prefix holding one or two pages (typically a single
    /// question's URL) says nothing about a site section, and keeps the annotation file short.
    pub min_prefix_pages: usize,
}

impl Default for DomainConfig {
    fn default() -> Self {
        Self {
            math_fraction: 0.1,
            min_pages: 3,
            max_prefix_depth: 2,
            samples_per_prefix: 3,
            min_prefix_pages: 3,
        }
    }
}

/// The part of a page domain discovery needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PageRef {
    /// Document id.
    pub id: String,
    /// Normalised URL (see [`normalize_url`]), `host/path?query`.
    pub url: String,
    /// Whether this iteration collected it.
    pub collected: bool,
}

impl PageRef {
    /// Builds a reference from a raw URL (`None` when the URL has no host).
    pub fn new(id: &str, raw_url: &str, collected: bool) -> Option<Self> {
        Some(Self {
            id: id.to_string(),
            url: normalize_url(raw_url)?,
            collected,
        })
    }

    /// Host part of the normalised URL (port removed).
    pub fn domain(&self) -> &str {
        let host_port = self.url.split('/').next().unwrap_or("");
        host_port.split(':').next().unwrap_or(host_port)
    }

    /// Path segments (query removed).
    pub fn path_segments(&self) -> impl Iterator<Item = &str> {
        let path = self.url.split_once('/').map(|(_, p)| p).unwrap_or("");
        let path = path.split('?').next().unwrap_or("");
        path.split('/').filter(|s| !s.is_empty())
    }
}

/// Collection statistics of one domain (or path prefix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainStat {
    /// Domain, or `domain/path/prefix`.
    pub key: String,
    /// Crawled pages.
    pub pages: usize,
    /// Collected pages.
    pub collected: usize,
}

impl DomainStat {
    /// Share of pages collected.
    pub fn fraction(&self) -> f64 {
        self.collected as f64 / self.pages.max(1) as f64
    }
}

/// Per-domain counts, sorted by domain.
pub fn domain_stats(pages: &[PageRef]) -> Vec<DomainStat> {
    let mut by_domain: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for p in pages {
        let e = by_domain.entry(p.domain()).or_default();
        e.0 += 1;
        e.1 += p.collected as usize;
    }
    by_domain
        .into_iter()
        .map(|(d, (pages, collected))| DomainStat {
            key: d.to_string(),
            pages,
            collected,
        })
        .collect()
}

/// Domains judged math-related: more than `math_fraction` collected and at least `min_pages` crawled.
pub fn math_domains<'a>(stats: &'a [DomainStat], config: &DomainConfig) -> Vec<&'a DomainStat> {
    stats
        .iter()
        .filter(|s| s.pages >= config.min_pages && s.fraction() > config.math_fraction)
        .collect()
}

/// Every path prefix `domain/seg1[/seg2...]` (down to `max_prefix_depth`) of pages in `domains`, with counts and
/// the smallest sample URLs (sorted, so the export is deterministic). Sorted by key.
pub fn path_prefix_stats(pages: &[PageRef], domains: &[&str], config: &DomainConfig) -> Vec<(DomainStat, Vec<String>)> {
    let wanted: std::collections::BTreeSet<&str> = domains.iter().copied().collect();
    let mut by_prefix: BTreeMap<String, (usize, usize, Vec<String>)> = BTreeMap::new();
    for p in pages {
        let domain = p.domain();
        if !wanted.contains(domain) {
            continue;
        }
        let mut key = domain.to_string();
        for (depth, seg) in p.path_segments().enumerate() {
            if depth >= config.max_prefix_depth {
                break;
            }
            key.push('/');
            key.push_str(seg);
            let e = by_prefix.entry(key.clone()).or_default();
            e.0 += 1;
            e.1 += p.collected as usize;
            e.2.push(p.url.clone());
        }
    }
    by_prefix
        .into_iter()
        .filter(|(_, (pages, _, _))| *pages >= config.min_prefix_pages)
        .map(|(key, (pages, collected, mut urls))| {
            urls.sort();
            urls.dedup();
            urls.truncate(config.samples_per_prefix);
            (DomainStat { key, pages, collected }, urls)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: &str, url: &str, collected: bool) -> PageRef {
        PageRef::new(id, url, collected).unwrap()
    }

    #[test]
    fn fraction_rule_and_prefixes() {
        let mut pages = vec![];
        for i in 0..10 {
            pages.push(page(
                &format!("m{i}"),
                &format!("https://www.mathsite.org/questions/{i}"),
                i < 2,
            ));
            pages.push(page(&format!("n{i}"), &format!("https://news.com/sport/{i}"), i < 1));
        }
        pages.push(page("b", "https://mathsite.org/blog/post", false));
        let stats = domain_stats(&pages);
        assert_eq!(stats.len(), 2);
        assert_eq!(
            (stats[0].key.as_str(), stats[0].pages, stats[0].collected),
            ("mathsite.org", 11, 2)
        );
        // Keep single-page prefixes too, so the one blog post is listed.
        let config = DomainConfig {
            min_prefix_pages: 1,
            ..DomainConfig::default()
        };
        let math: Vec<&str> = math_domains(&stats, &config).iter().map(|s| s.key.as_str()).collect();
        assert_eq!(math, vec!["mathsite.org"]); // 2/11 > 0.1, news.com 1/10 is not > 0.1
        let prefixes = path_prefix_stats(&pages, &math, &config);
        let keys: Vec<&str> = prefixes.iter().map(|(s, _)| s.key.as_str()).collect();
        assert!(keys.contains(&"mathsite.org/questions") && keys.contains(&"mathsite.org/blog/post"));
        let q = prefixes
            .iter()
            .find(|(s, _)| s.key == "mathsite.org/questions")
            .unwrap();
        assert_eq!((q.0.pages, q.0.collected, q.1.len()), (10, 2, 3));
        assert_eq!(q.1[0], "mathsite.org/questions/0");
    }
}
