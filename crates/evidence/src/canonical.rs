//! Canonical JSON: what an export signature covers.
//!
//! The canonical form of a value is its JSON text with no whitespace, object keys sorted by their
//! UTF-8 bytes, strings escaped as `serde_json` writes them (`"` `\` and control characters only;
//! everything else as UTF-8), and numbers as integers. Floating-point numbers are refused: their
//! text has more than one spelling and a manifest has none. The sorting is done here, explicitly,
//! so the result does not depend on whether some crate in the build turns on `serde_json`'s
//! `preserve_order` feature.
//!
//! [`parse_strict`] is the matching parser for untrusted text: it refuses duplicate object keys,
//! which `serde_json` would otherwise resolve silently to the last one (so a person or another
//! tool reading the first could see a value the signature does not vouch for).

use base::{Error, err};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The canonical JSON bytes of `value` (see the module documentation).
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(err!(
                    InvalidArgument,
                    "number {n} is not an integer (canonical JSON has integers only)"
                ));
            }
        }
        Value::String(s) => write_string(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out)?;
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, s).map_err(|e| err!(Internal, "cannot write a string: {e}"))
}

/// Parses untrusted JSON text into a [`Value`], refusing duplicate object keys. Nesting is bounded
/// by `serde_json`'s recursion limit (128).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|e| err!(InvalidArgument, "not valid JSON: {e}"))
}

/// A [`Value`] whose objects had no duplicate keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {}",
                    quote_short(&k)
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// `s` quoted and cut to 64 characters, for messages about untrusted text.
pub(crate) fn quote_short(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonical_json(&parse_strict(text.as_bytes()).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn keys_sorted_by_bytes_and_no_whitespace() {
        assert_eq!(
            canon(
                r#" { "b" : 1, "a" : {"z": true, "y": null, "Z": [1, -2, "x"]}, "é": "", "A": false } "#
            ),
            r#"{"A":false,"a":{"Z":[1,-2,"x"],"y":null,"z":true},"b":1,"é":""}"#
        );
        // Byte order, not UTF-16 order: U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80).
        assert_eq!(canon(r#"{"😀":1,"｡":2}"#), r#"{"｡":2,"😀":1}"#);
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        assert_eq!(
            canon(r#"{"k":"q\"b\\s\/ \u0041 \u00e9 \n\t\u0001 \u007f"}"#),
            "{\"k\":\"q\\\"b\\\\s/ A é \\n\\t\\u0001 \u{7f}\"}"
        );
    }

    #[test]
    fn integers_only() {
        assert_eq!(
            canon(r#"[18446744073709551615, -9223372036854775808, 0]"#),
            "[18446744073709551615,-9223372036854775808,0]"
        );
        let e = canonical_json(&parse_strict(b"[1.0]").unwrap()).unwrap_err();
        assert!(e.to_string().contains("not an integer"), "{e}");
        // Past u64: serde_json reads it as a float, which is refused too.
        assert!(canonical_json(&parse_strict(b"[18446744073709551616]").unwrap()).is_err());
    }

    #[test]
    fn duplicate_keys_refused() {
        let e = parse_strict(br#"{"a":1,"b":{"c":1,"c":2}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"c\""), "{e}");
        assert!(parse_strict(br#"{"a":1,"a":1}"#).is_err());
        let long = format!(r#"{{"{0}":1,"{0}":2}}"#, "k".repeat(1000));
        let e = parse_strict(long.as_bytes()).unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"{", b"\xff", b"[[[[", br#""\ud800""#, b"nul"] {
            assert!(parse_strict(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(100_000);
        assert!(parse_strict(deep.as_bytes()).is_err());
    }

    /// Whatever `serde_json`'s features in this build, its maps must not decide the order.
    #[test]
    fn order_does_not_depend_on_insertion() {
        let mut m = Map::new();
        m.insert("z".into(), Value::from(1));
        m.insert("a".into(), Value::from(2));
        assert_eq!(
            canonical_json(&Value::Object(m)).unwrap(),
            br#"{"a":2,"z":1}"#
        );
    }
}
