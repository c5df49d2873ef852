//! Turning JSON objects (JSONL lines, Parquet rows) into [`Document`]s.

use crate::document::{domain_of, Document};
use serde_json::{Map, Value};

/// Field pairs joined with a blank line when a record has no `text`/`html` (Q&A and instruction datasets).
const PAIRED_FIELDS: &[(&str, &str)] = &[
    ("input", "output"),
    ("Q", "A"),
    ("question", "answer"),
    ("problem", "solution"),
    ("prompt", "response"),
];

/// Builds a document from one JSON object.
///
/// Text comes from `text_fields` when given (joined by blank lines), else from `text`, else `html` (kept for
/// extraction), else a known question/answer pair. Our own output format (with `lang`, `scores`, `metadata`)
/// round-trips. Returns an error message when no text can be found.
pub fn document_from_object(
    mut obj: Map<String, Value>,
    text_fields: &[String],
    fallback_id: String,
) -> Result<Document, String> {
    let mut doc = Document::default();
    let take_string = |obj: &mut Map<String, Value>, key: &str| -> Option<String> {
        match obj.remove(key)? {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    doc.id = take_string(&mut obj, "id").unwrap_or(fallback_id);
    doc.url = take_string(&mut obj, "url");
    if doc.url.is_none() {
        // Stack Exchange dumps keep the URL in meta.url.
        doc.url = obj
            .get("meta")
            .and_then(|m| m.get("url"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    doc.domain = take_string(&mut obj, "domain").or_else(|| doc.url.as_deref().and_then(domain_of));
    if !text_fields.is_empty() {
        // Dotted names reach into nested records (`extra_info.question` in verl Parquet files).
        let parts: Vec<String> = text_fields
            .iter()
            .filter_map(|f| match f.split_once('.') {
                None => take_string(&mut obj, f),
                Some((head, rest)) => {
                    let mut v = obj.get(head)?;
                    for key in rest.split('.') {
                        v = v.get(key)?;
                    }
                    Some(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                }
            })
            .collect();
        if parts.is_empty() {
            return Err(format!("none of the fields {text_fields:?} present"));
        }
        doc.text = parts.join("\n\n");
    } else if let Some(text) = take_string(&mut obj, "text") {
        doc.text = text;
    } else if let Some(html) = take_string(&mut obj, "html") {
        doc.html = Some(html);
    } else if let Some((a, b)) = PAIRED_FIELDS
        .iter()
        .find(|(a, b)| obj.contains_key(*a) && obj.contains_key(*b))
    {
        let first = take_string(&mut obj, a).unwrap_or_default();
        let second = take_string(&mut obj, b).unwrap_or_default();
        doc.text = format!("{first}\n\n{second}");
    } else {
        return Err("no `text`, `html` or known question/answer fields".to_string());
    }
    match obj.remove("lang") {
        Some(Value::Array(pair)) if pair.len() == 2 => {
            if let (Some(code), Some(p)) = (pair[0].as_str(), pair[1].as_f64()) {
                doc.lang = Some((code.to_string(), p as f32));
            }
        }
        Some(Value::String(code)) => doc.lang = Some((code, 1.0)),
        Some(other) => {
            obj.insert("lang".into(), other);
        }
        None => {}
    }
    if let Some(Value::Object(scores)) = obj.remove("scores") {
        for (k, v) in scores {
            if let Some(x) = v.as_f64() {
                doc.scores.insert(k, x as f32);
            }
        }
    }
    if let Some(Value::Object(meta)) = obj.remove("metadata") {
        doc.metadata.extend(meta);
    }
    doc.metadata.extend(obj);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn picks_text_html_or_pairs() {
        let d = document_from_object(
            obj(json!({"text": "t", "url": "https://www.Example.org/a", "x": 1})),
            &[],
            "f:0".into(),
        )
        .unwrap();
        assert_eq!(
            (d.id.as_str(), d.text.as_str(), d.domain.as_deref()),
            ("f:0", "t", Some("example.org"))
        );
        assert_eq!(d.metadata["x"], json!(1));
        let d = document_from_object(obj(json!({"id": 7, "html": "<p>h</p>"})), &[], "f:1".into()).unwrap();
        assert_eq!((d.id.as_str(), d.html.as_deref()), ("7", Some("<p>h</p>")));
        let d = document_from_object(
            obj(json!({"Q": "q?", "A": "a.", "meta": {"url": "https://math.stackexchange.com/q/1"}})),
            &[],
            "x".into(),
        )
        .unwrap();
        assert_eq!(d.text, "q?\n\na.");
        assert_eq!(d.domain.as_deref(), Some("math.stackexchange.com"));
        assert!(document_from_object(obj(json!({"nothing": 1})), &[], "x".into()).is_err());
        let fields = ["extra.q".to_string(), "a".to_string()];
        let d = document_from_object(obj(json!({"extra": {"q": "Q"}, "a": "A"})), &fields, "x".into()).unwrap();
        assert_eq!(d.text, "Q\n\nA");
    }

    #[test]
    fn round_trips_our_own_format() {
        let mut d = Document {
            id: "a".into(),
            text: "x".into(),
            lang: Some(("en".into(), 0.5)),
            ..Default::default()
        };
        d.scores.insert("math".into(), 0.25);
        let v = serde_json::to_value(&d).unwrap();
        let back = document_from_object(obj(v), &[], "z".into()).unwrap();
        assert_eq!(back, d);
    }
}
