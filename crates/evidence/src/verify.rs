//! Verifying an export: its MP4 against its manifest, and the manifest against its signature.

use crate::canonical::{canonical_json, parse_strict, quote_short};
use crate::hash::{hash_file, io_err};
use crate::{ALGORITHM, FORMAT, Manifest, PublicKey, Signature};
use base::Error;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Read as _;
use std::path::Path;

/// Largest manifest file read (a real one is about 1 KB).
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Worth saying, not a failure (an export copied under another file name).
    Note,
}

/// One check of a [`Report`]: its name (`manifest`, `format`, `fields`, `key`, `signature`,
/// `file size`, `sha256`, `file name`), outcome and what was found (on failure: expected vs found).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// Every check made, in order. [`Report::ok`] only when there is at least one and none failed.
///
/// Its `Display` is one line per check (`ok   sha256: ...`, `FAIL signature: ...`,
/// `note file name: ...`), then `result: verified` or `result: NOT VERIFIED (N failed: ...)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// The check named `name`, if it was made.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail)
    }

    fn push(&mut self, name: &'static str, outcome: Outcome, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome,
            detail: detail.into(),
        });
    }

    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, Outcome::Pass, detail);
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, Outcome::Fail, detail);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            let tag = match c.outcome {
                Outcome::Pass => "ok  ",
                Outcome::Fail => "FAIL",
                Outcome::Note => "note",
            };
            // Details quote untrusted text: no control character (a newline forging a line, a
            // terminal escape) reaches the output as itself.
            write!(f, "{tag} {}: ", c.name)?;
            for ch in c.detail.chars() {
                if ch.is_control() {
                    write!(f, "{}", ch.escape_default())?;
                } else {
                    write!(f, "{ch}")?;
                }
            }
            writeln!(f)?;
        }
        if self.ok() {
            writeln!(f, "result: verified")
        } else {
            let failed: Vec<&str> = self.failures().map(|c| c.name).collect();
            writeln!(
                f,
                "result: NOT VERIFIED ({} failed: {})",
                failed.len(),
                if failed.is_empty() {
                    "nothing was checked".to_owned()
                } else {
                    failed.join(", ")
                }
            )
        }
    }
}

/// Verifies an export: the manifest file at `manifest_path` (as [`verify_manifest`]), then the
/// MP4 at `mp4_path` against it: its size, its SHA-256 (streamed), and its name (a note only: a
/// copy may be renamed). Never panics; every problem is a failed check, I/O errors included.
pub fn verify(mp4_path: &Path, manifest_path: &Path, public_key_pem: Option<&str>) -> Report {
    let (mut report, manifest) = match read_bounded(manifest_path) {
        Ok(bytes) => verify_manifest(&bytes, public_key_pem),
        Err(e) => {
            let mut r = Report::default();
            r.fail("manifest", e.to_string());
            (r, None)
        }
    };
    let Some(m) = manifest else {
        return report;
    };
    let expected_size = m.get("file_size").and_then(Value::as_u64);
    let expected_hash = m.get("sha256").and_then(Value::as_str);
    match hash_file(mp4_path) {
        Err(e) => {
            report.fail("file size", e.to_string());
            report.fail("sha256", format!("not computed: {e}"));
        }
        Ok((size, hash)) => {
            match expected_size {
                Some(exp) if exp == size => report.pass("file size", format!("{size} bytes")),
                Some(exp) => report.fail(
                    "file size",
                    format!("expected {exp} bytes (manifest), found {size} bytes (file)"),
                ),
                None => report.fail(
                    "file size",
                    format!("the manifest has no integer file_size; the file is {size} bytes"),
                ),
            }
            match expected_hash {
                Some(exp) if exp == hash => report.pass("sha256", hash),
                Some(exp) => report.fail(
                    "sha256",
                    format!(
                        "expected {} (manifest), found {hash} (file)",
                        quote_short(exp).trim_matches('"')
                    ),
                ),
                None => report.fail(
                    "sha256",
                    format!("the manifest has no sha256 string; the file's is {hash}"),
                ),
            }
        }
    }
    let found_name = mp4_path.file_name().map(|n| n.to_string_lossy());
    match (m.get("file_name").and_then(Value::as_str), found_name) {
        (Some(exp), Some(found)) if exp == found => report.pass("file name", found),
        (Some(exp), found) => report.push(
            "file name",
            Outcome::Note,
            format!(
                "the manifest names {}, this file is {} (a renamed copy is fine: size and \
                 SHA-256 are what identify it)",
                quote_short(exp),
                quote_short(found.as_deref().unwrap_or(""))
            ),
        ),
        (None, _) => {} // Reported by `fields`.
    }
    report
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, Error> {
    let f = std::fs::File::open(path).map_err(|e| io_err(e, path, "cannot open"))?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(e, path, "cannot read"))?;
    Ok(bytes)
}

/// Verifies a manifest file's bytes without its MP4: `manifest` (bounded size, JSON without
/// duplicate keys, exactly `manifest` and `signature` objects), `format`, `fields` (every field,
/// no unknown one, values well-formed), `key` (which key the signature is checked against:
/// `public_key_pem` when given, else the manifest's own key, not independently trusted) and
/// `signature` (over the canonical JSON of the `manifest` object exactly as parsed, so layout does
/// not matter but any changed, added or removed field does).
///
/// Returns the report and, when the file had a `manifest` object, that object (for the file
/// checks, which run even when the typed fields are not all well-formed).
pub fn verify_manifest(
    bytes: &[u8],
    public_key_pem: Option<&str>,
) -> (Report, Option<Map<String, Value>>) {
    let mut r = Report::default();
    let Some((m, sig)) = parse_file(bytes, &mut r) else {
        return (r, None);
    };
    match m.get("format") {
        Some(Value::String(f)) if f == FORMAT => r.pass("format", FORMAT),
        Some(Value::String(f)) => r.fail(
            "format",
            format!("expected {FORMAT}, found {}", quote_short(f)),
        ),
        Some(other) => r.fail(
            "format",
            format!("expected {FORMAT}, found {}", json_type(other)),
        ),
        None => r.fail("format", format!("expected {FORMAT}, found no format")),
    }
    match serde_json::from_value::<Manifest>(Value::Object(m.clone())) {
        Err(e) => r.fail("fields", cut(e.to_string())),
        Ok(typed) => {
            let problems: Vec<String> = typed
                .problems()
                .into_iter()
                .filter(|p| !p.starts_with("format"))
                .collect();
            if problems.is_empty() {
                r.pass("fields", format!("{} fields, all well-formed", m.len()));
            } else {
                r.fail("fields", problems.join("; "));
            }
        }
    }
    check_signature(&m, &sig, public_key_pem, &mut r);
    (r, Some(m))
}

/// The `manifest` and `signature` objects, or a failed `manifest` check saying why not.
fn parse_file(bytes: &[u8], r: &mut Report) -> Option<(Map<String, Value>, Map<String, Value>)> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        r.fail(
            "manifest",
            format!("more than {MAX_MANIFEST_BYTES} bytes: not a manifest"),
        );
        return None;
    }
    let top = match parse_strict(bytes) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            r.fail("manifest", "not a JSON object");
            return None;
        }
        Err(e) => {
            r.fail("manifest", cut(e.to_string()));
            return None;
        }
    };
    let unknown: Vec<String> = top
        .keys()
        .filter(|k| *k != "manifest" && *k != "signature")
        .map(|k| quote_short(k))
        .collect();
    let mut top = top;
    let (m, sig) = match (top.remove("manifest"), top.remove("signature")) {
        (Some(Value::Object(m)), Some(Value::Object(s))) => (m, s),
        (m, s) => {
            let what = |v: &Option<Value>, name: &str| match v {
                None => format!("no {name}"),
                Some(Value::Object(_)) => String::new(),
                Some(_) => format!("{name} is not an object"),
            };
            let parts: Vec<String> = [what(&m, "manifest"), what(&s, "signature")]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            r.fail(
                "manifest",
                format!(
                    "expected {{\"manifest\": {{...}}, \"signature\": {{...}}}}: {}",
                    parts.join(", ")
                ),
            );
            return None;
        }
    };
    if !unknown.is_empty() {
        r.fail(
            "manifest",
            format!(
                "unknown top-level fields (not covered by the signature): {}",
                unknown.join(", ")
            ),
        );
    } else {
        r.pass("manifest", format!("{} bytes of JSON", bytes.len()));
    }
    Some((m, sig))
}

fn check_signature(
    m: &Map<String, Value>,
    sig: &Map<String, Value>,
    public_key_pem: Option<&str>,
    r: &mut Report,
) {
    let trusted = match public_key_pem.map(PublicKey::from_pem) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            r.fail("key", format!("--public-key: {e}"));
            r.fail("signature", "not checked: no usable key");
            return;
        }
    };
    let sig: Signature = match serde_json::from_value(Value::Object(sig.clone())) {
        Ok(s) => s,
        Err(e) => {
            let against = match trusted {
                Some(k) => format!("checked against --public-key (key_id {}): ", k.key_id()),
                None => String::new(),
            };
            r.fail(
                "key",
                format!("{against}the manifest's signature block is malformed"),
            );
            r.fail(
                "signature",
                format!("signature block: {}", cut(e.to_string())),
            );
            return;
        }
    };
    let embedded = PublicKey::from_base64(&sig.public_key);
    // The signature block is not signed itself: its key_id must at least name its public_key.
    let id_mismatch = |e: &PublicKey| {
        (sig.key_id != e.key_id()).then(|| {
            format!(
                "key_id says {}, its public_key is {}",
                quote_short(&sig.key_id),
                e.key_id()
            )
        })
    };
    let key = match (trusted, &embedded) {
        (Some(t), Ok(e)) if t == *e && id_mismatch(e).is_some() => {
            r.fail(
                "key",
                format!(
                    "checked against --public-key (key_id {}): the manifest's {}",
                    t.key_id(),
                    id_mismatch(e).unwrap_or_default()
                ),
            );
            t
        }
        (Some(t), Ok(e)) if t == *e => {
            r.pass(
                "key",
                format!("checked against --public-key (key_id {})", t.key_id()),
            );
            t
        }
        (Some(t), Ok(e)) => {
            r.fail(
                "key",
                format!(
                    "checked against --public-key (key_id {}): the manifest was signed with \
                     another key (key_id {})",
                    t.key_id(),
                    e.key_id()
                ),
            );
            t
        }
        (Some(t), Err(e)) => {
            r.fail(
                "key",
                format!(
                    "checked against --public-key (key_id {}): the manifest's public_key is \
                     unusable: {e}",
                    t.key_id()
                ),
            );
            t
        }
        (None, Ok(e)) if id_mismatch(e).is_some() => {
            r.fail(
                "key",
                format!(
                    "the manifest's own key: {}",
                    id_mismatch(e).unwrap_or_default()
                ),
            );
            *e
        }
        (None, Ok(e)) => {
            r.pass(
                "key",
                format!(
                    "the manifest's own key (key_id {}; not independently trusted: pass \
                     --public-key to check who signed it)",
                    e.key_id()
                ),
            );
            *e
        }
        (None, Err(e)) => {
            r.fail("key", format!("the manifest's public_key is unusable: {e}"));
            r.fail("signature", "not checked: no usable key");
            return;
        }
    };
    if sig.algorithm != ALGORITHM {
        r.fail(
            "signature",
            format!(
                "expected algorithm {ALGORITHM}, found {}",
                quote_short(&sig.algorithm)
            ),
        );
        return;
    }
    let value: [u8; 64] = match B64.decode(&sig.value).map(<[u8; 64]>::try_from) {
        Ok(Ok(v)) => v,
        Ok(Err(v)) => {
            r.fail("signature", format!("value is {} bytes, not 64", v.len()));
            return;
        }
        Err(e) => {
            r.fail("signature", format!("value is not base64: {e}"));
            return;
        }
    };
    let canonical = match canonical_json(&Value::Object(m.clone())) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "signature",
                format!("the manifest cannot be canonicalized: {e}"),
            );
            return;
        }
    };
    if key.verify(&canonical, &value) {
        r.pass(
            "signature",
            format!(
                "valid {ALGORITHM} signature of the manifest by key_id {}",
                key.key_id()
            ),
        );
    } else {
        r.fail(
            "signature",
            format!(
                "does not match the manifest for key_id {}: the manifest was changed after \
                 signing, or signed with another key",
                key.key_id()
            ),
        );
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An error message from parsing untrusted input, cut to a readable length.
fn cut(mut s: String) -> String {
    const MAX: usize = 300;
    if let Some((i, _)) = s.char_indices().nth(MAX) {
        s.truncate(i);
        s.push('…');
    }
    s
}
