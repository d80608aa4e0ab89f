//! The bodies: JSON with AWS's number rules, CBOR both ways, and AWS Query's XML.

use serde_json::{Number, Value};

/// STS's XML namespace.
pub(super) const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An AWS Query answer: `<OpResponse><OpResult>` with one element per output member (the
/// outputs the sandbox answers over Query are flat strings), then the request id.
pub(super) fn query_xml(operation: &str, request_id: &str, output: &Value) -> Vec<u8> {
    let mut members = String::new();
    for (k, v) in output.as_object().into_iter().flatten() {
        let text = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        members.push_str(&format!("<{k}>{}</{k}>", xml_escape(&text)));
    }
    format!(
        "<{operation}Response xmlns=\"{STS_XMLNS}\"><{operation}Result>{members}</{operation}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{operation}Response>",
        xml_escape(request_id)
    )
    .into_bytes()
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Replaces `{"$ts": n}` markers by plain numbers (JSON protocols send epoch seconds).
pub(super) fn json_bytes(mut v: Value) -> Vec<u8> {
    pub(super) fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let (1, Some(ts)) = (m.len(), m.get("$ts").cloned()) {
                    *v = ts;
                    return;
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    serde_json::to_vec(&v).unwrap_or_default()
}

pub(super) fn cbor_bytes(v: Value) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::into_writer(&json_to_cbor(v), &mut out);
    out
}

pub(super) fn json_to_cbor(v: Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if !n.is_f64() => C::Integer(i.into()),
            (_, Some(u)) if !n.is_f64() => C::Integer(u.into()),
            _ => C::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => C::Text(s),
        Value::Array(a) => C::Array(a.into_iter().map(json_to_cbor).collect()),
        Value::Object(m) => {
            if let (1, Some(ts)) = (m.len(), m.get("$ts")) {
                return C::Tag(1, Box::new(C::Float(ts.as_f64().unwrap_or(0.0))));
            }
            C::Map(
                m.into_iter()
                    .map(|(k, v)| (C::Text(k), json_to_cbor(v)))
                    .collect(),
            )
        }
    }
}

pub(super) fn cbor_to_json(bytes: &[u8]) -> Result<Value, String> {
    let v: ciborium::Value =
        ciborium::from_reader(bytes).map_err(|e| format!("body is not CBOR: {e}"))?;
    Ok(from_cbor(v))
}

pub(super) fn from_cbor(v: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => {
            let i: i128 = i.into();
            Value::Number(Number::from(i as i64))
        }
        C::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        C::Text(s) => Value::String(s),
        C::Bytes(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        C::Array(a) => Value::Array(a.into_iter().map(from_cbor).collect()),
        C::Map(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(k) => Some((k, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        C::Tag(_, inner) => from_cbor(*inner),
        _ => Value::Null,
    }
}
