//! Chat templates: the Jinja templates of `tokenizer_config.json` rendered with minijinja the way transformers
//! renders them (`trim_blocks`, `lstrip_blocks`, Python string methods, `raise_exception`, a Python-style
//! `tojson`, `strftime_now`).

use anyhow::{anyhow, Result};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};

use super::{ChatMessage, SpecialTokens};

/// `chat_template` of tokenizer_config.json: a string, or a list of `{name, template}` (the `default` one is used).
pub(crate) fn template_from_config(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => {
            let named = |name: &str| {
                list.iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))?
                    .get("template")?
                    .as_str()
            };
            named("default").map(str::to_string)
        }
        _ => None,
    }
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "`/`": "` separators when compact. It walks
/// the minijinja value itself so maps keep their insertion order, as Python dicts do (a serde_json map would sort).
fn python_json(value: &Value, indent: Option<usize>, depth: usize, out: &mut String) -> Result<(), Error> {
    use minijinja::value::ValueKind;
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    let json_error = |e: serde_json::Error| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}"));
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable if value.len().unwrap_or(1) > 0 => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                python_json(&item, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map if value.len().unwrap_or(1) > 0 => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&serde_json::to_string(&key.to_string()).map_err(json_error)?);
                out.push_str(": ");
                python_json(&value.get_item(&key)?, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => out.push_str("[]"),
        ValueKind::Map => out.push_str("{}"),
        _ => out.push_str(&serde_json::to_string(value).map_err(json_error)?),
    }
    Ok(())
}

fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    // transformers accepts these keywords; only their defaults are supported.
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    python_json(&value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `strftime_now(fmt)` (UTC): supports %Y %m %d %B %b %H %M %S %%.
fn strftime_now(format: String) -> Result<Value, Error> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('B') => out.push_str(MONTHS[month as usize - 1]),
            Some('b') => out.push_str(&MONTHS[month as usize - 1][..3]),
            Some('H') => out.push_str(&format!("{:02}", sod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", sod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", sod % 60)),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: unsupported %{other:?}"),
                ))
            }
        }
    }
    Ok(Value::from(out))
}

/// Renders `template` with transformers' variables: `messages`, `add_generation_prompt`, `bos_token`,
/// `eos_token`, `pad_token`, `unk_token`, plus `extra`.
pub fn render_chat_template(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    special: &SpecialTokens,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", tojson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env.add_template("chat_template", template)
        .map_err(|e| anyhow!("invalid chat template: {e:#}"))?;
    // minijinja values (not a serde_json map, which would sort the keys that `tojson` prints).
    let mut ctx: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    ctx.insert("messages".into(), Value::from_serialize(messages));
    ctx.insert("add_generation_prompt".into(), Value::from(add_generation_prompt));
    for (key, value) in [
        ("bos_token", &special.bos_token),
        ("eos_token", &special.eos_token),
        ("pad_token", &special.pad_token),
        ("unk_token", &special.unk_token),
    ] {
        ctx.insert(key.into(), value.clone().map_or(Value::from(()), Value::from));
    }
    for (key, value) in extra {
        ctx.insert(key, Value::from_serialize(&value));
    }
    let tmpl = env.get_template("chat_template").expect("template was just added");
    tmpl.render(Value::from_serialize(&ctx))
        .map_err(|e| anyhow!("rendering chat template: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_matches_python_json_dumps() {
        let v = Value::from_serialize(serde_json::json!({"a": [1, 2.5, "é\n"], "b": {}}));
        let mut out = String::new();
        python_json(&v, None, 0, &mut out).unwrap();
        assert_eq!(out, r#"{"a": [1, 2.5, "é\n"], "b": {}}"#);
        let mut out = String::new();
        python_json(
            &Value::from_serialize(serde_json::json!({"a": [1]})),
            Some(2),
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, "{\n  \"a\": [\n    1\n  ]\n}");
    }

    #[test]
    fn renders_chatml_with_python_methods_and_exceptions() {
        let template = "{% for m in messages %}{% if m.role not in ['user','assistant','system'] %}\
            {{ raise_exception('bad role') }}{% endif %}<|im_start|>{{ m.role }}\n{{ m.content.strip() }}<|im_end|>\n\
            {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let special = SpecialTokens::default();
        let msgs = [ChatMessage::new("user", "  hi  ")];
        let text = render_chat_template(template, &msgs, true, &special, Default::default()).unwrap();
        assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        let bad = [ChatMessage::new("tool", "x")];
        let err = render_chat_template(template, &bad, true, &special, Default::default()).unwrap_err();
        assert!(format!("{err:#}").contains("bad role"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
