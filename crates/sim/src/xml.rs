//! Just enough XML for SOAP requests: the first element inside `Body` (the operation) and the
//! text of named child elements, ignoring namespace prefixes. Never panics on any input.
#![deny(clippy::indexing_slicing)]

/// Local name (without prefix) of the first element inside the SOAP `Body`.
pub fn body_operation(xml: &str) -> Option<String> {
    let body_start = find_open(xml, "Body", 0)?;
    let after = xml[body_start..].find('>')? + body_start + 1;
    let mut pos = after;
    loop {
        let lt = xml[pos..].find('<')? + pos;
        let rest = &xml[lt + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            pos = lt + 1;
            continue;
        }
        if rest.starts_with('/') {
            return None; // empty body
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let qname = &rest[..end];
        let local = qname.rsplit(':').next().unwrap_or(qname);
        return if local.is_empty() {
            None
        } else {
            Some(local.to_owned())
        };
    }
}

/// Byte offset of `<` of the first start tag whose local name is `local`, from `from`.
fn find_open(xml: &str, local: &str, from: usize) -> Option<usize> {
    let mut pos = from;
    while pos < xml.len() {
        let lt = xml.get(pos..)?.find('<')? + pos;
        let rest = &xml[lt + 1..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let qname = &rest[..end];
        if !qname.starts_with('/') && qname.rsplit(':').next() == Some(local) {
            return Some(lt);
        }
        pos = lt + 1;
    }
    None
}

/// Text of the first element with local name `local` (unescaped, trimmed); `Some("")` for an
/// empty or self-closing element; `None` when absent.
pub fn child_text(xml: &str, local: &str) -> Option<String> {
    let lt = find_open(xml, local, 0)?;
    let gt = xml[lt..].find('>')? + lt;
    if xml[..gt].ends_with('/') {
        return Some(String::new());
    }
    let content_start = gt + 1;
    // The matching close tag: `</local>` or `</prefix:local>`.
    let mut pos = content_start;
    loop {
        let close = xml.get(pos..)?.find("</")? + pos;
        let rest = &xml[close + 2..];
        let end = rest.find('>')?;
        let qname = rest[..end].trim();
        if qname.rsplit(':').next() == Some(local) {
            return Some(unescape(xml[content_start..close].trim()));
        }
        pos = close + 2;
    }
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_soap() {
        let x = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body>
          <ns0:SequencesGet xmlns:ns0="http://videoos.net/2/XProtectCSRecorderCommand"><ns0:token>TOKEN#a&amp;b#</ns0:token>
          <deviceId> abc </deviceId><currentToken /></ns0:SequencesGet></s:Body></s:Envelope>"#;
        assert_eq!(body_operation(x).as_deref(), Some("SequencesGet"));
        assert_eq!(child_text(x, "token").as_deref(), Some("TOKEN#a&b#"));
        assert_eq!(child_text(x, "deviceId").as_deref(), Some("abc"));
        assert_eq!(child_text(x, "currentToken").as_deref(), Some(""));
        assert_eq!(child_text(x, "missing"), None);
        for bad in ["", "<", "<s:Body", "<Body><", "<Body></Body>", "<a><b>"] {
            let _ = body_operation(bad);
            let _ = child_text(bad, "b");
        }
    }
}
