//! Keeps credentials out of logs, errors and API responses.

/// Returns the URL with any user name and password removed (`rtsp://user:pw@host/x` becomes
/// `rtsp://host/x`). Input that does not parse is reduced to its scheme and a marker, since it may
/// still hold a secret.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.username().is_empty() && u.password().is_none() {
                return u.to_string();
            }
            // set_username/set_password fail only for cannot-be-a-base URLs, which carry no
            // credentials; ignoring the result is then correct.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => match raw.find("://") {
            Some(i) if raw[i + 3..].contains('@') => format!("{}://<redacted>", &raw[..i]),
            _ => raw.to_owned(),
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
}
