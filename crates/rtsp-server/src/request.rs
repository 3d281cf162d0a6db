//! Incremental RTSP/1.0 request parsing from a byte buffer. Also recognises interleaved binary
//! frames (`$`, channel, 16-bit length, data) that clients send on the same TCP connection
//! (RTCP receiver reports). Never panics on any input; bounded sizes.
#![deny(clippy::indexing_slicing)]

use bytes::Bytes;

/// Longest accepted request line plus headers.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Longest accepted request body.
pub const MAX_BODY_LEN: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// One parsed RTSP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Upper-case method token as sent (`DESCRIBE`).
    pub method: String,
    /// The request URI as sent (`rtsp://host:554/cam1/trackID=0` or `*`).
    pub uri: String,
    /// The protocol version (`RTSP/1.0`).
    pub version: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path of the request URI without query (`/cam1/trackID=0`); `None` for `*` or a URI
    /// that is not an absolute `rtsp://`/`rtsps://` URL or an absolute path.
    pub fn path(&self) -> Option<&str> {
        uri_path(&self.uri)
    }
}

/// The path part of an RTSP request URI, without query or fragment.
pub fn uri_path(uri: &str) -> Option<&str> {
    let rest = if uri.starts_with('/') {
        uri
    } else {
        let lower_scheme = uri.get(..8).map(|s| s.to_ascii_lowercase());
        let after = if lower_scheme
            .as_deref()
            .is_some_and(|s| s.starts_with("rtsp://"))
        {
            uri.get(7..)?
        } else if lower_scheme.as_deref() == Some("rtsps://") {
            uri.get(8..)?
        } else {
            return None;
        };
        match after.find('/') {
            Some(i) => &after[i..],
            None => "/",
        }
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// One message read from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    /// An interleaved binary frame (ignored by the server, but must be consumed).
    Interleaved {
        channel: u8,
        data: Bytes,
    },
}

/// Why a request could not be parsed; the connection answers 400 (or 505) and closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Malformed(&'static str),
    TooLarge,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Malformed(why) => write!(f, "malformed request: {why}"),
            ParseError::TooLarge => f.write_str("request too large"),
        }
    }
}

/// Parses one message from the front of `buf`. Returns `Ok(None)` when more bytes are needed, or
/// the message and the number of bytes it used.
pub fn parse_message(buf: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
    if buf.first() == Some(&b'$') {
        let Some(hdr) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        let Some(data) = buf.get(4..4 + len) else {
            return Ok(None);
        };
        return Ok(Some((
            Message::Interleaved {
                channel: hdr[1],
                data: Bytes::copy_from_slice(data),
            },
            4 + len,
        )));
    }
    // Tolerate blank lines between requests (some clients send CRLF keepalives).
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let buf_s = buf.get(skip..).unwrap_or_default();
    let Some(head_end) = find_head_end(buf_s) else {
        if buf_s.len() > MAX_HEAD_LEN {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    if head_end.0 > MAX_HEAD_LEN {
        return Err(ParseError::TooLarge);
    }
    let head = buf_s
        .get(..head_end.0)
        .ok_or(ParseError::Malformed("bad head"))?;
    let head = std::str::from_utf8(head).map_err(|_| ParseError::Malformed("head is not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(ParseError::Malformed("empty request"))?;
    let mut parts = first.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed("bad request line"));
    };
    if !method
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ParseError::Malformed("bad method"));
    }
    if !version.starts_with("RTSP/") {
        return Err(ParseError::Malformed("bad protocol version"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooLarge);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::Malformed("header without colon"));
        };
        let name = name.trim();
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace() || c.is_control()) {
            return Err(ParseError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let content_length = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| ParseError::Malformed("bad Content-Length"))?,
        None => 0,
    };
    if content_length > MAX_BODY_LEN {
        return Err(ParseError::TooLarge);
    }
    let body_start = head_end.1;
    let Some(body) = buf_s.get(body_start..body_start + content_length) else {
        return Ok(None);
    };
    Ok(Some((
        Message::Request(Request {
            method: method.to_owned(),
            uri: uri.to_owned(),
            version: version.to_owned(),
            headers,
            body: Bytes::copy_from_slice(body),
        }),
        skip + body_start + content_length,
    )))
}

/// Finds the blank line ending the head: returns (end of head text, start of body).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let limit = buf.len().min(MAX_HEAD_LEN + 4);
    (0..limit).find_map(|i| {
        let rest = buf.get(i..)?;
        if rest.starts_with(b"\r\n\r\n") {
            Some((i, i + 4))
        } else if rest.starts_with(b"\n\n") {
            Some((i, i + 2))
        } else {
            None
        }
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests index what they just built or checked
mod tests {
    use super::*;

    fn req(s: &str) -> Request {
        match parse_message(s.as_bytes()).unwrap().unwrap() {
            (Message::Request(r), n) => {
                assert_eq!(n, s.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_requests() {
        let r =
            req("OPTIONS rtsp://127.0.0.1:554/cam1 RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: x\r\n\r\n");
        assert_eq!(r.method, "OPTIONS");
        assert_eq!(r.header("cseq"), Some("1"));
        assert_eq!(r.path(), Some("/cam1"));
        let r = req("ANNOUNCE rtsp://h/a?x=1 RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(&r.body[..], b"abc");
        assert_eq!(r.path(), Some("/a"));
        assert_eq!(uri_path("rtsp://h"), Some("/"));
        assert_eq!(uri_path("RTSP://h:1/x/trackID=0"), Some("/x/trackID=0"));
        assert_eq!(uri_path("*"), None);
        assert_eq!(uri_path("http://h/x"), None);
    }

    #[test]
    fn incremental_and_interleaved() {
        let full = b"$\x01\x00\x02ab\r\nPLAY rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\n\r\n";
        for n in 0..full.len() {
            if let Some((m, used)) = parse_message(&full[..n]).unwrap() {
                assert!(matches!(m, Message::Interleaved { channel: 1, .. }));
                assert_eq!(used, 6);
            }
        }
        let (m, used) = parse_message(&full[6..]).unwrap().unwrap();
        assert!(matches!(m, Message::Request(ref r) if r.method == "PLAY"));
        assert_eq!(used, full.len() - 6);
        assert_eq!(parse_message(&full[6..20]).unwrap(), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "GET\r\n\r\n",
            "PLAY a b c RTSP/1.0\r\n\r\n",
            "PL AY\x01 x RTSP/1.0\r\n\r\n",
            "PLAY x HTTP/1.1\r\n\r\n",
            "PLAY x RTSP/1.0\r\nNoColon\r\n\r\n",
            "PLAY x RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
            "PLAY x RTSP/1.0\r\nContent-Length: 99999999999\r\n\r\n",
        ] {
            assert!(parse_message(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let huge = vec![b'A'; MAX_HEAD_LEN + 10];
        assert_eq!(parse_message(&huge), Err(ParseError::TooLarge));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1357_9bdfu32;
        let alphabet = b"$\r\n: RTSP/1.0CSeq\x00\xffContent-Length0123456789";
        for len in 0..500usize {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    alphabet[(seed as usize) % alphabet.len()]
                })
                .collect();
            let _ = parse_message(&v);
        }
    }
}
