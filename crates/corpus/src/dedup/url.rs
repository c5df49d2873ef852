//! URL normalisation and exact URL deduplication.
//!
//! Common Crawl fetches the same page under many spellings (`http`/`https`, `www.`, tracking parameters, fragments,
//! default ports). Normalising first lets exact dedup catch them without a fuzzy comparison of the text.

use super::keep::{better_keeper, KeepKey};
use std::collections::HashMap;

/// Query parameters that only track the visitor and never change the page.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "yclid",
    "igshid",
    "phpsessid",
    "sessionid",
    "sid",
];

/// Normalises a URL so that spellings of the same page compare equal.
///
/// The result is `host[:port]/path[?query]` with: surrounding `<>` and whitespace removed (wget-style WARC targets),
/// scheme dropped (`http` and `https` serve the same page), host lower-cased without `www.` and trailing dot,
/// default ports and user info removed, fragment removed, `%xx` escapes upper-cased, a trailing `/` removed (except
/// the root), and the query's parameters sorted with empty and tracking ones (`utm_*`, `fbclid`, ...) dropped.
/// Returns `None` when there is no host.
pub fn normalize_url(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let (scheme, rest) = match trimmed.find("://") {
        Some(i) => (trimmed[..i].to_ascii_lowercase(), &trimmed[i + 3..]),
        None => (String::from("http"), trimmed.strip_prefix("//").unwrap_or(trimmed)),
    };
    let rest = rest.split('#').next().unwrap_or("");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let mut host_port = host_port.to_ascii_lowercase();
    for (default_scheme, port) in [("http", ":80"), ("https", ":443")] {
        if scheme == default_scheme && host_port.ends_with(port) {
            host_port.truncate(host_port.len() - port.len());
        }
    }
    let host_port = host_port.trim_end_matches('.');
    let host_port = host_port.strip_prefix("www.").unwrap_or(host_port);
    if host_port.is_empty() {
        return None;
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut out = String::with_capacity(trimmed.len());
    out.push_str(host_port);
    let path = upper_percent_escapes(path);
    let path = path.trim_end_matches('/');
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(path);
    if let Some(query) = query {
        let mut params: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or("").to_ascii_lowercase();
                !key.starts_with("utm_") && !TRACKING_PARAMS.contains(&key.as_str())
            })
            .map(upper_percent_escapes)
            .collect();
        params.sort();
        params.dedup();
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
    }
    Some(out)
}

/// The host a URL belongs to, lower-cased and without `www.` (the unit of domain discovery).
pub fn url_domain(raw: &str) -> Option<String> {
    let normalized = normalize_url(raw)?;
    let host_port = normalized.split('/').next().unwrap_or("");
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    Some(host.to_string())
}

fn upper_percent_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let (a, b) = (bytes[i + 1], bytes[i + 2]);
            if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() {
                out.push('%');
                out.push(a.to_ascii_uppercase() as char);
                out.push(b.to_ascii_uppercase() as char);
                i += 3;
                continue;
            }
        }
        let ch_len = utf8_len(bytes[i]);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Outcome of exact URL deduplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlDedupResult {
    /// `keep[i]` is false when document `i` duplicates the URL of a better document.
    pub keep: Vec<bool>,
    /// Documents removed as URL duplicates.
    pub removed: usize,
    /// Distinct normalised URLs that occurred more than once.
    pub duplicated_urls: usize,
}

/// Exact dedup on normalised URLs: of each group sharing a URL keep the best by [`KeepKey`] order (highest score,
/// then longest text, then smallest id), so the result does not depend on input order. Documents without a
/// parsable URL are always kept.
pub fn dedup_by_url<'a>(urls: &[Option<&'a str>], keys: &[KeepKey<'a>]) -> UrlDedupResult {
    assert_eq!(urls.len(), keys.len(), "one keep key per URL");
    let mut best: HashMap<String, usize> = HashMap::new();
    let mut seen_twice: HashMap<String, ()> = HashMap::new();
    for (i, url) in urls.iter().enumerate() {
        let Some(norm) = url.and_then(normalize_url) else {
            continue;
        };
        match best.get_mut(&norm) {
            Some(current) => {
                seen_twice.insert(norm, ());
                if better_keeper(&keys[i], &keys[*current]) {
                    *current = i;
                }
            }
            None => {
                best.insert(norm, i);
            }
        }
    }
    let mut keep = vec![true; urls.len()];
    for (i, url) in urls.iter().enumerate() {
        if let Some(norm) = url.and_then(normalize_url) {
            if best[&norm] != i {
                keep[i] = false;
            }
        }
    }
    let removed = keep.iter().filter(|k| !**k).count();
    UrlDedupResult {
        keep,
        removed,
        duplicated_urls: seen_twice.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_page_normalise_equal() {
        let a = normalize_url("https://www.Example.com:443/a/b/?utm_source=x&q=1&b=2#frag").unwrap();
        let b = normalize_url("http://example.com/a/b?b=2&q=1&fbclid=zz").unwrap();
        let c = normalize_url(" <http://EXAMPLE.com./a/b> ").unwrap();
        assert_eq!(a, "example.com/a/b?b=2&q=1");
        assert_eq!(a, b);
        assert_eq!(c, "example.com/a/b");
        assert_eq!(normalize_url("http://example.com").unwrap(), "example.com/");
        assert_eq!(
            normalize_url("http://example.com:8080/x%2f").unwrap(),
            "example.com:8080/x%2F"
        );
        assert_eq!(normalize_url("https://"), None);
    }

    #[test]
    fn different_pages_stay_different() {
        assert_ne!(
            normalize_url("https://a.com/x?id=1"),
            normalize_url("https://a.com/x?id=2")
        );
        assert_ne!(normalize_url("https://a.com/x"), normalize_url("https://b.com/x"));
        assert_ne!(normalize_url("https://a.com/X"), normalize_url("https://a.com/x"));
    }

    #[test]
    fn url_domain_strips_www_and_port() {
        assert_eq!(
            url_domain("https://www.MathOverflow.net:8443/questions/1").unwrap(),
            "mathoverflow.net"
        );
        assert_eq!(url_domain("<http://x.org>").unwrap(), "x.org");
    }

    #[test]
    fn url_dedup_keeps_best_regardless_of_order() {
        let texts = ["short", "a much longer text", "other"];
        let ids = ["b", "a", "c"];
        let urls = [
            Some("http://x.com/p"),
            Some("https://www.x.com/p/"),
            Some("http://x.com/q"),
        ];
        let keys: Vec<KeepKey> = (0..3)
            .map(|i| KeepKey {
                score: None,
                text_len: texts[i].len(),
                id: ids[i],
            })
            .collect();
        let r = dedup_by_url(&urls, &keys);
        assert_eq!(r.keep, vec![false, true, true]);
        assert_eq!((r.removed, r.duplicated_urls), (1, 1));
        let rev_urls: Vec<_> = urls.iter().rev().cloned().collect();
        let rev_keys: Vec<_> = keys.iter().rev().cloned().collect();
        let r2 = dedup_by_url(&rev_urls, &rev_keys);
        assert_eq!(r2.keep, vec![true, true, false]);
    }
}
