//! Keeps credentials out of logs, errors and API responses.
#![deny(clippy::indexing_slicing)]

/// Query parameter names (after lower-casing and dropping everything but letters and digits)
/// whose value is a secret or an identity, or names containing one of [`SECRET_PARTS`].
const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "passwd",
    "passphrase",
    "token",
    "key",
    "apikey",
    "secret",
    "auth",
    "signature",
    "sig",
    "user",
    "username",
    "usr",
    "login",
    "credential",
    "credentials",
];

/// Substrings that make any query parameter name secret (`access_token`, `X-Amz-Signature`,
/// `client_secret`, `authorization`, `x-api-key`).
const SECRET_PARTS: &[&str] = &[
    "pass",
    "pwd",
    "token",
    "secret",
    "auth",
    "signature",
    "apikey",
];

/// Query parameter names that carry a user name or a password, which belong in a camera's
/// `username`/`password` instead (configuration refuses them in URLs).
const CREDENTIAL_KEYS: &[&str] = &[
    "user",
    "username",
    "usr",
    "login",
    "password",
    "pass",
    "pwd",
    "passwd",
    "passphrase",
];

fn normalize(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a URL query parameter of this name carries a secret (or an identity) that must not be
/// logged: `password`, `pwd`, `token`, `key`, `auth`, `sig`, `user`, ... in any case, and any name
/// containing `pass`, `token`, `secret`, `auth`, `signature` or `apikey`.
pub fn is_secret_query_key(key: &str) -> bool {
    let k = normalize(key);
    // Word by word too, so `api-key`, `user.name` or `stream_key` match.
    SECRET_KEYS.contains(&k.as_str())
        || SECRET_PARTS.iter().any(|p| k.contains(p))
        || key
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| SECRET_KEYS.contains(&w.to_ascii_lowercase().as_str()))
}

/// Whether a URL query parameter of this name is a user name or password (see
/// [`query_credential_keys`]).
pub fn is_credential_query_key(key: &str) -> bool {
    CREDENTIAL_KEYS.contains(&normalize(key).as_str())
}

/// The names of the query parameters of `url` that hold a user name or a password
/// (`?user=admin&password=...` gives `["user", "password"]`), in order, decoded.
pub fn query_credential_keys(url: &url::Url) -> Vec<String> {
    url.query_pairs()
        .map(|(k, _)| k.into_owned())
        .filter(|k| is_credential_query_key(k))
        .collect()
}

/// The values of the secret query parameters of `url` (as written and decoded), so that a
/// library's message that echoes them can be scrubbed with [`redact_secret_in`].
pub fn query_secrets(url: &url::Url) -> Vec<String> {
    let mut out = Vec::new();
    let Some(q) = url.query() else {
        return out;
    };
    for part in q.split('&') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key: String = url::form_urlencoded::parse(k.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()
            .unwrap_or_default();
        if v.is_empty() || !is_secret_query_key(&key) {
            continue;
        }
        let decoded: String = url::form_urlencoded::parse(format!("x={v}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .next()
            .unwrap_or_default();
        for s in [v.to_owned(), decoded] {
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// Replaces the value of every secret query parameter (see [`is_secret_query_key`]) with `***`,
/// keeping the names and the other parameters as written.
fn redact_query(q: &str) -> Option<String> {
    let mut changed = false;
    let parts: Vec<String> = q
        .split('&')
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let key: String = url::form_urlencoded::parse(k.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            if !v.is_empty() && is_secret_query_key(&key) {
                changed = true;
                format!("{k}=***")
            } else {
                part.to_owned()
            }
        })
        .collect();
    changed.then(|| parts.join("&"))
}

/// Returns the URL with any user name and password removed (`rtsp://user:pw@host/x` becomes
/// `rtsp://host/x`) and the value of every query parameter that looks like a secret or an
/// identity replaced (`?user=admin&password=x&channel=1` becomes
/// `?user=***&password=***&channel=1`). Input that does not parse is reduced to its scheme and a
/// marker when it may still hold a secret.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                // set_username/set_password fail only for cannot-be-a-base URLs, which carry no
                // credentials; ignoring the result is then correct.
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            if let Some(q) = u.query().and_then(redact_query) {
                u.set_query(Some(&q));
            }
            u.to_string()
        }
        Err(_) => match raw.find("://") {
            Some(i) if raw[i + 3..].contains('@') => format!("{}://<redacted>", &raw[..i]),
            _ => match raw.split_once('?') {
                Some((before, q)) => match redact_query(q) {
                    Some(q) => format!("{before}?{q}"),
                    None => raw.to_owned(),
                },
                None => raw.to_owned(),
            },
        },
    }
}

/// Replaces every occurrence of `secret` in `text` (e.g. a password echoed back by a library's
/// error message) with `***`. An empty secret leaves the text as it is.
pub fn redact_secret_in(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_credentials() {
        assert_eq!(
            redact_url("rtsp://admin:s3cret@10.0.0.1:554/Streaming/1"),
            "rtsp://10.0.0.1:554/Streaming/1"
        );
        assert_eq!(redact_url("rtsp://10.0.0.1/x"), "rtsp://10.0.0.1/x");
        assert_eq!(redact_url("rtsp://a:b@[bad"), "rtsp://<redacted>");
        assert_eq!(
            redact_secret_in("auth failed for pw123", "pw123"),
            "auth failed for ***"
        );
        assert_eq!(redact_secret_in("x", ""), "x");
    }

    #[test]
    fn redacts_secret_query_values() {
        assert_eq!(
            redact_url("rtsp://10.0.0.1/stream1?user=admin&password=s3cret&channel=1"),
            "rtsp://10.0.0.1/stream1?user=***&password=***&channel=1"
        );
        assert_eq!(
            redact_url("rtsp://a:b@h/x?PWD=p&Token=t&access_token=a&X-Amz-Signature=s&subtype=0"),
            "rtsp://h/x?PWD=***&Token=***&access_token=***&X-Amz-Signature=***&subtype=0"
        );
        for k in [
            "password",
            "pass",
            "pwd",
            "passwd",
            "token",
            "key",
            "apikey",
            "api_key",
            "secret",
            "auth",
            "signature",
            "sig",
            "user",
            "username",
            "USERNAME",
            "Api-Key",
            "authToken",
        ] {
            assert!(is_secret_query_key(k), "{k}");
            let r = redact_url(&format!("rtsp://h/x?{k}=hunter2"));
            assert_eq!(r, format!("rtsp://h/x?{k}=***"));
        }
        for k in ["channel", "subtype", "profile", "stream", "resolution"] {
            assert!(!is_secret_query_key(k), "{k}");
        }
        // Unchanged when nothing is secret; an empty value stays empty.
        assert_eq!(
            redact_url("rtsp://h/x?channel=1&password"),
            "rtsp://h/x?channel=1&password"
        );
        // Unparsable input keeps no query secret either.
        assert_eq!(
            redact_url("rtsp://[bad/x?password=hunter2&a=1"),
            "rtsp://[bad/x?password=***&a=1"
        );
    }

    #[test]
    fn lists_query_credentials_and_secrets() {
        let u = url::Url::parse("rtsp://h/x?User=admin&password=p%40ss&token=tk&channel=1")
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(query_credential_keys(&u), vec!["User", "password"]);
        let s = query_secrets(&u);
        for want in ["admin", "p%40ss", "p@ss", "tk"] {
            assert!(s.iter().any(|x| x == want), "{want} in {s:?}");
        }
        assert!(!s.iter().any(|x| x == "1"));
    }
}
