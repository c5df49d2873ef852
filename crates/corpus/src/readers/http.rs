//! Decoding the HTTP payload of a WARC response record into HTML text.
//!
//! Crawls are messy: headers claim gzip on plain bodies (ClueWeb09), chunked bodies are stored raw, and charsets
//! are declared in headers, in `<meta>` tags, or nowhere. Each step therefore checks the bytes before trusting a
//! header and falls back to the raw body.

use std::io::Read;

/// A parsed HTTP response: status, lower-cased headers, and the (still encoded) body.
#[derive(Debug, Clone)]
pub struct HttpResponse<'a> {
    /// Status code, 0 when the status line could not be parsed.
    pub status: u16,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes after the blank line.
    pub body: &'a [u8],
}

impl HttpResponse<'_> {
    /// First value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Splits a block into status line, headers and body; `None` when it does not start like an HTTP response.
pub fn parse_response(block: &[u8]) -> Option<HttpResponse<'_>> {
    if !block.starts_with(b"HTTP/") {
        return None;
    }
    let mut pos = 0;
    let mut status = 0;
    let mut headers = Vec::new();
    let mut first = true;
    loop {
        let rest = &block[pos..];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            // Headers without a terminating blank line: no body.
            pos = block.len();
            break;
        };
        let line = trim_cr(&rest[..nl]);
        pos += nl + 1;
        if first {
            first = false;
            let text = String::from_utf8_lossy(line);
            status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            continue;
        }
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if let Some((k, v)) = text.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(HttpResponse {
        status,
        headers,
        body: &block[pos.min(block.len())..],
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Undoes `Transfer-Encoding: chunked`; `None` when the body is not validly chunked.
pub fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut pos = 0;
    loop {
        let nl = memchr::memchr(b'\n', &body[pos..])?;
        let size_line = String::from_utf8_lossy(trim_cr(&body[pos..pos + nl])).to_string();
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        pos += nl + 1;
        if size == 0 {
            return Some(out);
        }
        let end = pos.checked_add(size)?;
        if end > body.len() {
            // Truncated final chunk: keep what arrived.
            out.extend_from_slice(&body[pos..]);
            return Some(out);
        }
        out.extend_from_slice(&body[pos..end]);
        pos = end;
        while pos < body.len() && (body[pos] == b'\r' || body[pos] == b'\n') {
            pos += 1;
        }
        if pos >= body.len() {
            return Some(out);
        }
    }
}

/// Decompresses a gzip/deflate body if its bytes really are compressed (headers lie).
pub fn decode_content_encoding(body: &[u8], max_bytes: usize) -> Option<Vec<u8>> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut dec = flate2::read::MultiGzDecoder::new(body).take(max_bytes as u64);
        // A truncated body still yields its decodable prefix.
        let _ = dec.read_to_end(&mut out);
        return (!out.is_empty()).then_some(out);
    }
    None
}

/// The charset named in a `Content-Type` value (`text/html; charset=EUC-JP` → `EUC-JP`).
pub fn charset_from_content_type(content_type: &str) -> Option<&str> {
    let lower_idx = content_type.to_ascii_lowercase().find("charset=")?;
    let value = &content_type[lower_idx + "charset=".len()..];
    let value = value.split(';').next()?.trim().trim_matches(|c| c == '"' || c == '\'');
    (!value.is_empty()).then_some(value)
}

/// Looks for `<meta charset=...>` or `<meta http-equiv content="...charset=...">` in the first bytes of a page.
pub fn charset_from_meta(head: &[u8]) -> Option<String> {
    let head = &head[..head.len().min(4096)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut search = 0;
    while let Some(idx) = text[search..].find("charset=") {
        let start = search + idx + "charset=".len();
        let value: String = text[start..]
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
            .collect();
        if !value.is_empty() {
            return Some(value);
        }
        search = start;
    }
    None
}

/// Decodes page bytes to text: declared charset (header, then meta), else UTF-8 if valid, else windows-1252.
pub fn decode_html(body: &[u8], declared: Option<&str>) -> String {
    let label = declared.map(str::to_string).or_else(|| charset_from_meta(body));
    if let Some(encoding) = label.and_then(|l| encoding_rs::Encoding::for_label(l.trim().as_bytes())) {
        let (text, _, _) = encoding.decode(body);
        return text.into_owned();
    }
    match std::str::from_utf8(body) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(body).0.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_and_dechunks() {
        let block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=\"ISO-8859-1\"\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
        let resp = parse_response(block).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(
            charset_from_content_type(resp.header("content-type").unwrap()),
            Some("ISO-8859-1")
        );
        assert_eq!(dechunk(resp.body).unwrap(), b"Wikipedia");
        assert!(dechunk(b"not chunked").is_none());
    }

    #[test]
    fn decodes_declared_and_meta_charsets() {
        assert_eq!(decode_html(b"caf\xe9", Some("latin1")), "café");
        let page = b"<meta charset=\"euc-jp\"><p>\xa4\xa2</p>";
        assert!(decode_html(page, None).contains('あ'));
        assert_eq!(decode_html("ünï".as_bytes(), None), "ünï");
    }

    #[test]
    fn plain_body_claimed_gzip_is_left_alone() {
        assert!(decode_content_encoding(b"<html>", 1 << 20).is_none());
    }
}
