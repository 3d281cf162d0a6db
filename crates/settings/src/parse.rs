//! Scalars (durations, sizes), YAML reading and environment overrides.
#![deny(clippy::indexing_slicing)]

use crate::Problem;
use serde_json::Value;
use std::time::Duration;

pub(crate) fn yaml_to_json(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::Object(Default::default())),
        _ => Err("the top level must be a mapping of sections".into()),
    }
}

/// Applies `VANTAGE__A__B=value` as `a.b = value` (keys lower-cased; the value read as a YAML
/// scalar). A path through a list uses the index: `VANTAGE__CAMERAS__0__ENABLED=false`.
/// Which environment variable set which key path (`limits.max_streams`, `cameras[0].enabled`),
/// so that a problem with a value from the environment names the variable, not the file.
#[derive(Debug, Default)]
pub(crate) struct Origins(Vec<(String, String)>);

impl Origins {
    fn set(&mut self, keys: &[String], var: &str) {
        let mut path = String::new();
        for k in keys {
            if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
                path.push_str(&format!("[{k}]"));
            } else {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
        }
        self.0.retain(|(p, _)| *p != path);
        self.0.push((path, var.to_owned()));
    }

    /// The variable that set `path` or a section containing it, the most specific first.
    pub(crate) fn var_for(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(p, _)| {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .max_by_key(|(p, _)| p.len())
            .map(|(_, v)| v.as_str())
    }

    /// Adds the variable's name to every problem about a value it set.
    pub(crate) fn attribute(&self, problems: &mut [Problem]) {
        for p in problems {
            if let Some(var) = self.var_for(&p.path) {
                p.message = format!(
                    "{} (set by the environment variable {var}, not the file)",
                    p.message
                );
            }
        }
    }
}

pub(crate) fn apply_env_overrides(
    doc: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
    origins: &mut Origins,
) {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("VANTAGE__"))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let keys: Vec<String> = name["VANTAGE__".len()..]
            .split("__")
            .map(|k| k.to_ascii_lowercase())
            .collect();
        if keys.iter().any(|k| k.is_empty()) {
            problems.push(Problem {
                path: name,
                message: "empty key in override name".into(),
            });
            continue;
        }
        let value = match serde_yaml_ng::from_str::<Value>(&raw) {
            Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::String(_))) => v,
            _ => Value::String(raw),
        };
        match set_path(doc, &keys, value) {
            Ok(()) => origins.set(&keys, &name),
            Err(m) => problems.push(Problem {
                path: name,
                message: m,
            }),
        }
    }
}

fn set_path(doc: &mut Value, keys: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = keys.split_last() else {
        return Err("no key".into());
    };
    let mut cur = doc;
    for k in parents {
        cur = match cur {
            Value::Object(m) => m
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            Value::Array(a) => {
                let i: usize = k
                    .parse()
                    .map_err(|_| format!("`{k}` is not a list index"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("list index {i} is out of range"))?
            }
            _ => return Err(format!("`{k}` is inside a value that is not a section")),
        };
    }
    match cur {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("`{last}` is not a list index"))?;
            let slot = a
                .get_mut(i)
                .ok_or_else(|| format!("list index {i} is out of range"))?;
            *slot = value;
            Ok(())
        }
        _ => Err(format!("`{last}` is inside a value that is not a section")),
    }
}

/// The integration guide's variables: `MILESTONE_SERVER_URL`, `MILESTONE_RTSP_URL`,
/// `MILESTONE_USERNAME`, `MILESTONE_PASSWORD`, `MILESTONE_API_PORT` (the port of `server_url`) and
/// `MILESTONE_RECORDING_PORT` (the port of `recording_server`). Applied before `VANTAGE__*`.
pub(crate) fn apply_milestone_env(
    doc: &mut Value,
    env: &[(String, String)],
    p: &mut Vec<Problem>,
    origins: &mut Origins,
) {
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut set = |doc: &mut Value, key: &str, v: String, var: &str, p: &mut Vec<Problem>| {
        let keys = ["milestone".to_owned(), key.to_owned()];
        match set_path(doc, &keys, Value::String(v)) {
            Ok(()) => origins.set(&keys, var),
            Err(m) => p.push(Problem {
                path: var.to_owned(),
                message: m,
            }),
        }
    };
    for (var, key) in [
        ("MILESTONE_SERVER_URL", "server_url"),
        ("MILESTONE_RTSP_URL", "rtsp_base_url"),
        ("MILESTONE_USERNAME", "username"),
        ("MILESTONE_PASSWORD", "password"),
    ] {
        if let Some(v) = get(var) {
            set(doc, key, v, var, p);
        }
    }
    let current = |doc: &Value, key: &str| {
        doc.get("milestone")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(port) = get("MILESTONE_API_PORT") {
        match (port.trim().parse::<u16>(), current(doc, "server_url")) {
            (Ok(port), Some(u)) => {
                let with_port = url::Url::parse(&u)
                    .ok()
                    .and_then(|mut u| u.set_port(Some(port)).ok().map(|()| u));
                match with_port {
                    Some(u) => {
                        set(doc, "server_url", u.to_string(), "MILESTONE_API_PORT", p);
                        // The variable also beats an `api.port` in the file.
                        let _ = set_path(
                            doc,
                            &["milestone".into(), "api".into(), "port".into()],
                            Value::from(port),
                        );
                    }
                    None => p.push(Problem {
                        path: "MILESTONE_API_PORT".into(),
                        message: "milestone.server_url is not a URL whose port can be set".into(),
                    }),
                }
            }
            (Ok(_), None) => p.push(Problem {
                path: "MILESTONE_API_PORT".into(),
                message: "needs milestone.server_url (or MILESTONE_SERVER_URL)".into(),
            }),
            (Err(_), _) => p.push(Problem {
                path: "MILESTONE_API_PORT".into(),
                message: format!("`{port}` is not a port number"),
            }),
        }
    }
    if let Some(port) = get("MILESTONE_RECORDING_PORT") {
        match port.trim().parse::<u16>() {
            Ok(port) => {
                let host = current(doc, "recording_server")
                    .and_then(|r| r.rsplit_once(':').map(|(h, _)| h.to_owned()))
                    .or_else(|| {
                        current(doc, "server_url")
                            .and_then(|u| url::Url::parse(&u).ok())
                            .and_then(|u| u.host_str().map(str::to_owned))
                    })
                    .unwrap_or_else(|| "127.0.0.1".into());
                let v = format!("{host}:{port}");
                set(doc, "recording_server", v, "MILESTONE_RECORDING_PORT", p);
            }
            Err(_) => p.push(Problem {
                path: "MILESTONE_RECORDING_PORT".into(),
                message: format!("`{port}` is not a port number"),
            }),
        }
    }
}

/// Parses `500ms`, `10s`, `5m`, `2h`, `90d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 10s, 5m, 2h or 90d"))?;
    let mult_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        u => return Err(format!("`{u}` is not a duration unit (ms, s, m, h, d)")),
    };
    n.checked_mul(mult_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// Parses a size (`500GB`, `2TiB`, `1000000`) or a percentage (`90%`).
pub fn parse_size_or_percent(s: &str) -> Result<crate::MaxUsage, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let v: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a percentage"))?;
        if !(v > 0.0 && v <= 100.0) {
            return Err(format!("`{s}` must be above 0% and at most 100%"));
        }
        return Ok(crate::MaxUsage::Percent(v));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 500GB or a percentage like 90%"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        "TIB" => 1 << 40,
        u => {
            return Err(format!(
                "`{u}` is not a size unit (B, KB, MB, GB, TB, KiB ... TiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .map(crate::MaxUsage::Bytes)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MaxUsage;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(parse_size_or_percent("90%"), Ok(MaxUsage::Percent(90.0)));
        assert_eq!(
            parse_size_or_percent("500GB"),
            Ok(MaxUsage::Bytes(500_000_000_000))
        );
        assert!(parse_size_or_percent("150%").is_err());
        assert!(parse_size_or_percent("lots").is_err());
    }
}
