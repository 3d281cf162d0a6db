//! SOAP envelopes for ServerCommandService `Login` and RecorderCommandService `SequencesGet`,
//! and pure parsers for their answers.
//!
//! Answers are read into a small element tree (local names only: namespace prefixes vary between
//! SOAP stacks), bounded in depth and element count, so hostile input cannot exhaust the stack.
#![deny(clippy::indexing_slicing)]

use std::time::{Duration, SystemTime};

use base::{Error, ErrorKind, err};
use quick_xml::events::Event;

use crate::parse::{parse_timestamp, truncate};
use crate::{Secret, Sequence};

pub const SCS_NS: &str = "http://videoos.net/2/XProtectCSServerCommand";
pub const SCS_LOGIN_ACTION: &str =
    "http://videoos.net/2/XProtectCSServerCommand/IServerCommandService/Login";
pub const RCS_NS: &str = "http://videoos.net/2/XProtectCSRecorderCommand";
pub const RCS_SEQUENCES_GET_ACTION: &str =
    "http://videoos.net/2/XProtectCSRecorderCommand/SequencesGet";

const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 1_000_000;

/// Escapes text for an XML element body.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>"
    )
}

/// The `Login` request; `current_token` is empty on the first login.
pub fn login_request(instance_id: &str, current_token: &str) -> String {
    envelope(&format!(
        "<Login xmlns=\"{SCS_NS}\"><instanceId>{}</instanceId><currentToken>{}</currentToken></Login>",
        xml_escape(instance_id),
        xml_escape(current_token)
    ))
}

/// The `SequencesGet` request. Times are sent as UTC with millisecond precision.
pub fn sequences_get_request(
    token: &str,
    device_id: &str,
    sequence_type: &str,
    min_time: SystemTime,
    max_time: SystemTime,
    max_count: u32,
) -> String {
    envelope(&format!(
        "<SequencesGet xmlns=\"{RCS_NS}\"><token>{}</token><deviceId>{}</deviceId><sequenceType>{}</sequenceType><minTime>{}</minTime><maxTime>{}</maxTime><maxCount>{max_count}</maxCount></SequencesGet>",
        xml_escape(token),
        xml_escape(device_id),
        xml_escape(sequence_type),
        base::clock::rfc3339(min_time),
        base::clock::rfc3339(max_time),
    ))
}

/// One XML element: local name, concatenated text, children.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name (case-sensitive, as XML is).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Depth-first search for the first descendant (or self) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            if e.name == name {
                return Some(e);
            }
            stack.extend(e.children.iter().rev());
        }
        None
    }

    fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

fn local(name: &[u8]) -> String {
    let n = match name.iter().rposition(|&b| b == b':') {
        Some(i) => name.get(i + 1..).unwrap_or_default(),
        None => name,
    };
    String::from_utf8_lossy(n).into_owned()
}

/// Parses a whole document into its root element.
pub(crate) fn parse_tree(what: &str, xml: &str) -> Result<Element, Error> {
    let bad = |e: &dyn std::fmt::Display| err!(DataLoss, "{what}: bad XML: {e}");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let ev = reader.read_event().map_err(|e| bad(&e))?;
        match ev {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(err!(
                    DataLoss,
                    "{what}: bad XML: content after the root element"
                ));
            }
            Event::Start(s) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(err!(DataLoss, "{what}: XML nested too deeply or too large"));
                }
                stack.push(Element {
                    name: local(s.name().as_ref()),
                    ..Default::default()
                });
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(err!(DataLoss, "{what}: XML too large"));
                }
                let e = Element {
                    name: local(s.name().as_ref()),
                    ..Default::default()
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(e),
                    None => root = Some(e),
                }
            }
            Event::End(_) => {
                let Some(e) = stack.pop() else {
                    return Err(err!(DataLoss, "{what}: bad XML: unexpected end tag"));
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(e),
                    None => root = Some(e),
                }
            }
            Event::Text(t) => {
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&t.xml_content().map_err(|e| bad(&e))?);
                }
            }
            Event::CData(t) => {
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&t.decode().map_err(|e| bad(&e))?);
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c,
                    None => match r.decode().map_err(|e| bad(&e))?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(err!(
                                DataLoss,
                                "{what}: bad XML: unknown entity &{};",
                                truncate(other, 32)
                            ));
                        }
                    },
                };
                if let Some(p) = stack.last_mut() {
                    p.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(err!(
            DataLoss,
            "{what}: bad XML: unexpected end of document"
        ));
    }
    root.ok_or_else(|| err!(DataLoss, "{what}: no XML element in the answer"))
}

/// A SOAP fault (1.1 `faultstring`, 1.2 `Reason/Text`) as an error. Faults that look like a bad
/// or expired token are Unauthenticated (the caller logs in again once); others
/// FailedPrecondition.
fn fault(what: &str, root: &Element) -> Option<Error> {
    let f = root.find("Fault")?;
    let text = f
        .child_text("faultstring")
        .or_else(|| {
            f.find("Reason")
                .and_then(|r| r.find("Text"))
                .map(|t| t.text.trim())
        })
        .or_else(|| f.find("Text").map(|t| t.text.trim()))
        .unwrap_or("")
        .to_owned();
    let code = f
        .child_text("faultcode")
        .or_else(|| {
            f.find("Code")
                .and_then(|c| c.find("Value"))
                .map(|v| v.text.trim())
        })
        .unwrap_or("");
    let l = text.to_ascii_lowercase();
    let kind = if l.contains("token") || l.contains("authenticat") || l.contains("authoriz") {
        ErrorKind::Unauthenticated
    } else {
        ErrorKind::FailedPrecondition
    };
    let text = if text.is_empty() { code } else { &text };
    Some(Error::new(
        kind,
        format!("{what}: SOAP fault: {}", truncate(text, 500)),
    ))
}

/// The SCS ("VMS") token from `LoginResult`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScsLogin {
    pub token: Secret,
    /// `TimeToLive/MicroSeconds`.
    pub time_to_live: Duration,
    pub registration_time: Option<SystemTime>,
    pub time_to_live_limited: Option<bool>,
}

/// Parses the `Login` answer: `Envelope/Body/LoginResponse/LoginResult/{Token,
/// TimeToLive/MicroSeconds, RegistrationTime, TimeToLiveLimited}`. A fault is an error carrying
/// the fault string.
pub fn parse_login_result(xml: &str) -> Result<ScsLogin, Error> {
    const W: &str = "Login";
    let root = parse_tree(W, xml)?;
    if let Some(e) = fault(W, &root) {
        return Err(e);
    }
    let r = root
        .find("LoginResult")
        .ok_or_else(|| err!(DataLoss, "{W}: no LoginResult in the answer"))?;
    let token = r
        .child_text("Token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| err!(DataLoss, "{W}: no Token in LoginResult"))?;
    let micros = r
        .child("TimeToLive")
        .and_then(|t| t.child_text("MicroSeconds"))
        .ok_or_else(|| err!(DataLoss, "{W}: no TimeToLive/MicroSeconds in LoginResult"))?;
    let micros: u64 = micros
        .parse::<u64>()
        .ok()
        .or_else(|| micros.parse::<i64>().ok().map(|m| m.max(0) as u64))
        .ok_or_else(|| err!(DataLoss, "{W}: bad TimeToLive {:?}", truncate(micros, 32)))?;
    let registration_time = match r.child_text("RegistrationTime") {
        Some(t) if !t.is_empty() => parse_timestamp(t).map_err(|e| e.context(W))?,
        _ => None,
    };
    let time_to_live_limited =
        r.child_text("TimeToLiveLimited")
            .and_then(|t| match t.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            });
    Ok(ScsLogin {
        token: Secret::new(token),
        time_to_live: Duration::from_micros(micros),
        registration_time,
        time_to_live_limited,
    })
}

/// Parses the `SequencesGet` answer: `SequencesGetResponse/SequencesGetResult/SequenceEntry*`
/// with `TimeBegin`, `TimeTrigged` (sic; `TimeTriggered` accepted too), `TimeEnd`. Begin and end
/// are required; a fault is an error carrying the fault string.
pub fn parse_sequences(xml: &str) -> Result<Vec<Sequence>, Error> {
    const W: &str = "SequencesGet";
    let root = parse_tree(W, xml)?;
    if let Some(e) = fault(W, &root) {
        return Err(e);
    }
    let Some(result) = root.find("SequencesGetResult") else {
        if root.find("SequencesGetResponse").is_some() {
            // An empty result may be omitted entirely.
            return Ok(Vec::new());
        }
        return Err(err!(DataLoss, "{W}: no SequencesGetResult in the answer"));
    };
    let mut out = Vec::new();
    for e in result.children.iter().filter(|c| c.name == "SequenceEntry") {
        let time = |name: &str| -> Result<Option<SystemTime>, Error> {
            match e.child_text(name) {
                Some(t) if !t.is_empty() => parse_timestamp(t).map_err(|e| e.context(W)),
                _ => Ok(None),
            }
        };
        let begin = time("TimeBegin")?
            .ok_or_else(|| err!(DataLoss, "{W}: SequenceEntry without TimeBegin"))?;
        let end =
            time("TimeEnd")?.ok_or_else(|| err!(DataLoss, "{W}: SequenceEntry without TimeEnd"))?;
        let triggered = match time("TimeTrigged")? {
            Some(t) => Some(t),
            None => time("TimeTriggered")?,
        };
        out.push(Sequence {
            begin,
            end,
            triggered,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_escape() {
        let r = login_request("9b2f…", "a<b&c");
        assert!(r.contains("<currentToken>a&lt;b&amp;c</currentToken>"));
        assert!(r.contains("<Login xmlns=\"http://videoos.net/2/XProtectCSServerCommand\">"));
        let r = sequences_get_request(
            "T",
            "cam",
            crate::RECORDING_SEQUENCE,
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + Duration::from_secs(86400),
            10,
        );
        assert!(r.contains("<minTime>1970-01-01T00:00:00.000Z</minTime>"));
        assert!(r.contains("<maxTime>1970-01-02T00:00:00.000Z</maxTime><maxCount>10</maxCount>"));
    }

    #[test]
    fn tree_limits_and_garbage() {
        let deep = "<a>".repeat(10_000);
        assert_eq!(
            parse_tree("x", &deep).unwrap_err().kind(),
            ErrorKind::DataLoss
        );
        for bad in [
            "",
            "<a>",
            "</a>",
            "<a></b>",
            "<a>&foo;</a>",
            "<a/><b/>",
            "text",
            "<a>&#xFFFFFFFF;</a>",
        ] {
            assert_eq!(
                parse_tree("x", bad).unwrap_err().kind(),
                ErrorKind::DataLoss,
                "{bad}"
            );
        }
        let t = parse_tree(
            "x",
            "<p:a xmlns:p='u'><p:b>x &amp; y&#33;<![CDATA[<z>]]></p:b></p:a>",
        )
        .unwrap();
        assert_eq!(t.child("b").unwrap().text, "x & y!<z>");
    }

    #[test]
    fn faults() {
        let f11 = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang="en-US">Token is not valid</faultstring></s:Fault></s:Body></s:Envelope>"#;
        let e = parse_sequences(f11).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.message(), "SequencesGet: SOAP fault: Token is not valid");
        let f12 = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en">Device not found</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
        let e = parse_login_result(f12).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(e.message(), "Login: SOAP fault: Device not found");
    }
}
