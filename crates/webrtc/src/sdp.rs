//! Reading what a WHEP offer accepts and choosing the payload type to send H.264 with.
//!
//! str0m parses and validates the offer (see [`crate::server`]); this module only scans the
//! offer's text for the video `a=rtpmap`/`a=fmtp` lines, which str0m does not expose, so that the
//! choice of payload type is ours and can be tested without a peer.
#![deny(clippy::indexing_slicing)]

use base::{Error, bail, err};
use media::{Codec, VideoParams};

/// One payload type of a video m-line in an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedFormat {
    pub pt: u8,
    /// The encoding name as written in `a=rtpmap` (`H264`, `VP8`, `rtx`).
    pub name: String,
    /// `profile-level-id` from `a=fmtp`, H.264 only.
    pub profile_level_id: Option<[u8; 3]>,
    /// `packetization-mode` from `a=fmtp` (RFC 6184 default 0).
    pub packetization_mode: u8,
    /// `apt` of an `rtx` format: the payload type it repairs.
    pub apt: Option<u8>,
}

/// The payload type chosen to send the camera's H.264 with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Choice {
    pub pt: u8,
    /// The offer's RTX payload type for `pt`, if any.
    pub rtx: Option<u8>,
    /// The offered `profile-level-id` of `pt` (42e01f when the offer leaves it out).
    pub profile_level_id: [u8; 3],
    /// Whether the offered profile matches the camera's.
    pub profile_matches: bool,
}

/// Scans the video m-lines of an SDP (rejected m-lines, port 0, are skipped).
pub fn video_formats(sdp: &str) -> Vec<OfferedFormat> {
    let mut out: Vec<OfferedFormat> = Vec::new();
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r').trim();
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            let kind = parts.next().unwrap_or("");
            let port = parts.next().unwrap_or("0");
            in_video = kind == "video" && port != "0";
            continue;
        }
        if !in_video {
            continue;
        }
        if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let mut it = rest.splitn(2, char::is_whitespace);
            let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(pt) = pt.trim().parse::<u8>() else {
                continue;
            };
            let name = enc.trim().split('/').next().unwrap_or("").to_owned();
            if name.is_empty() || out.iter().any(|f| f.pt == pt) {
                continue;
            }
            out.push(OfferedFormat {
                pt,
                name,
                profile_level_id: None,
                packetization_mode: 0,
                apt: None,
            });
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            let mut it = rest.splitn(2, char::is_whitespace);
            let (Some(pt), Some(params)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(pt) = pt.trim().parse::<u8>() else {
                continue;
            };
            let Some(f) = out.iter_mut().find(|f| f.pt == pt) else {
                continue;
            };
            for kv in params.split(';') {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("profile-level-id") {
                    f.profile_level_id = parse_plid(v);
                } else if k.eq_ignore_ascii_case("packetization-mode") {
                    f.packetization_mode = v.parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("apt") {
                    f.apt = v.parse().ok();
                }
            }
        }
    }
    out
}

/// The `a=mid` of the first accepted (port not 0) video m-line.
pub fn first_video_mid(sdp: &str) -> Option<String> {
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r').trim();
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            in_video = parts.next() == Some("video") && parts.next().is_some_and(|p| p != "0");
        } else if in_video && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(mid.trim().to_owned());
        }
    }
    None
}

/// Rewrites the m-sections an answer rejects (port 0) in the form JSEP expects (RFC 8829
/// §5.3.1, RFC 8843 §7.3.3): port 0, the formats of the offered m-line with their `a=rtpmap` and
/// `a=fmtp` lines, its `a=mid`, and `a=inactive`; out of the BUNDLE group (as str0m already
/// leaves them).
///
/// str0m writes a rejected section as `m=audio 0 UDP/TLS/RTP/SAVPF 0` with `a=sendonly` and no
/// `a=rtpmap`; aiortc refuses such an answer ("Failed to set remote audio description send
/// parameters"), so its default offer (video and audio) failed. Transport attributes (ICE
/// credentials, fingerprint, setup, rtcp-mux) are kept, since aiortc requires them in every
/// section. Sections of the answer that are not rejected are copied unchanged; an answer whose
/// m-lines do not line up with the offer's is returned as is.
pub fn answer_rejected_m_lines(offer: &str, answer: &str) -> String {
    let offer_sections = split_sections(offer);
    let answer_sections = split_sections(answer);
    if offer_sections.len() != answer_sections.len() {
        return answer.to_owned();
    }
    let mut out = String::with_capacity(answer.len() + 256);
    for (i, (a, o)) in answer_sections.iter().zip(&offer_sections).enumerate() {
        if i == 0 {
            push_lines(&mut out, a);
            continue;
        }
        match rejected_section(a, o) {
            Some(lines) => push_lines(&mut out, &lines),
            None => push_lines(&mut out, a),
        }
    }
    out
}

/// The session part, then one `Vec` of lines per m-section (each starting with its `m=` line).
fn split_sections(sdp: &str) -> Vec<Vec<&str>> {
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push(line);
        }
    }
    sections
}

fn push_lines<S: AsRef<str>>(out: &mut String, lines: &[S]) {
    for l in lines {
        out.push_str(l.as_ref());
        out.push_str("\r\n");
    }
}

/// `m=<kind> <port> <proto> <fmt>...` split, or None for a line that is not an m-line.
fn m_line(line: &str) -> Option<(&str, &str, &str, Vec<&str>)> {
    let mut parts = line.strip_prefix("m=")?.split_whitespace();
    let kind = parts.next()?;
    let port = parts.next()?;
    let proto = parts.next()?;
    Some((kind, port, proto, parts.collect()))
}

/// The JSEP form of a rejected audio/video section `answer` answering `offer`, or None when the
/// section is not rejected (or is not audio/video).
fn rejected_section(answer: &[&str], offer: &[&str]) -> Option<Vec<String>> {
    let (kind, port, proto, _) = m_line(answer.first()?)?;
    if port != "0" || !(kind == "audio" || kind == "video") {
        return None;
    }
    let (okind, _, _, ofmts) = m_line(offer.first()?)?;
    if okind != kind || ofmts.is_empty() {
        return None;
    }
    let mut lines = vec![format!("m={kind} 0 {proto} {}", ofmts.join(" "))];
    // What describes media sent or received goes; what describes the transport stays.
    const DROP: &[&str] = &[
        "a=sendrecv",
        "a=sendonly",
        "a=recvonly",
        "a=inactive",
        "a=rtpmap:",
        "a=fmtp:",
        "a=rtcp-fb:",
        "a=extmap:",
        "a=ssrc:",
        "a=ssrc-group:",
        "a=msid:",
        "a=rid:",
        "a=simulcast:",
    ];
    let mut has_mid = false;
    for l in answer.iter().skip(1) {
        if DROP.iter().any(|d| l.starts_with(d)) {
            continue;
        }
        has_mid |= l.starts_with("a=mid:");
        lines.push((*l).to_owned());
    }
    if !has_mid && let Some(mid) = offer.iter().find(|l| l.starts_with("a=mid:")) {
        lines.push((*mid).to_owned());
    }
    for l in offer.iter().skip(1) {
        let Some(rest) = l
            .strip_prefix("a=rtpmap:")
            .or_else(|| l.strip_prefix("a=fmtp:"))
        else {
            continue;
        };
        let pt = rest.split_whitespace().next().unwrap_or("");
        if ofmts.contains(&pt) {
            lines.push((*l).to_owned());
        }
    }
    lines.push("a=inactive".to_owned());
    Some(lines)
}

fn parse_plid(v: &str) -> Option<[u8; 3]> {
    if v.len() != 6 || !v.is_ascii() {
        return None;
    }
    let b = |i: usize| u8::from_str_radix(&v[i..i + 2], 16).ok();
    Some([b(0)?, b(2)?, b(4)?])
}

/// Whether `name` is a real codec rather than a repair or redundancy format.
fn is_codec(name: &str) -> bool {
    !["rtx", "red", "ulpfec", "flexfec-03", "flexfec"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// The name shown to people: `H.264`, `H.265`, `VP8`.
fn display_name(name: &str) -> String {
    match name.to_ascii_uppercase().as_str() {
        "H264" => "H.264".to_owned(),
        "H265" => "H.265".to_owned(),
        "H266" => "H.266".to_owned(),
        "AV1X" => "AV1".to_owned(),
        other => other.to_owned(),
    }
}

/// The offer's video codecs for error messages: display names, deduplicated, in offer order.
pub fn offered_codec_names(formats: &[OfferedFormat]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for f in formats.iter().filter(|f| is_codec(&f.name)) {
        let n = display_name(&f.name);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// H.264 profiles as libwebrtc classifies `profile-level-id` (RFC 6184 table 5 plus constrained
/// high); the level is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    ConstrainedHigh,
    High,
    PredictiveHigh444,
    /// Anything else: compared by `profile_idc` alone.
    Other(u8),
}

/// Classifies `profile_idc` and the constraint flags (`profile-iop`).
pub fn h264_profile(plid: [u8; 3]) -> H264Profile {
    // (profile_idc, pattern over the 8 iop bits, MSB first: '1', '0' or 'x').
    const TABLE: &[(u8, &[u8; 8], H264Profile)] = &[
        (0x42, b"x1xx0000", H264Profile::ConstrainedBaseline),
        (0x4D, b"1xxx0000", H264Profile::ConstrainedBaseline),
        (0x58, b"11xx0000", H264Profile::ConstrainedBaseline),
        (0x42, b"x0xx0000", H264Profile::Baseline),
        (0x58, b"10xx0000", H264Profile::Baseline),
        (0x4D, b"0x0x0000", H264Profile::Main),
        (0x64, b"00000000", H264Profile::High),
        (0x64, b"00001100", H264Profile::ConstrainedHigh),
        (0xF4, b"00000000", H264Profile::PredictiveHigh444),
    ];
    let [idc, iop, _] = plid;
    for (p, pattern, profile) in TABLE {
        if *p != idc {
            continue;
        }
        let ok = pattern.iter().enumerate().all(|(i, c)| {
            let bit = (iop >> (7 - i)) & 1;
            match c {
                b'1' => bit == 1,
                b'0' => bit == 0,
                _ => true,
            }
        });
        if ok {
            return *profile;
        }
    }
    H264Profile::Other(idc)
}

/// The camera's `profile-level-id`: from the params, else from the SPS bytes.
fn camera_plid(params: &VideoParams) -> Option<[u8; 3]> {
    params
        .h264_profile_level_id
        .or_else(|| params.sps.get(1..4).and_then(|b| b.try_into().ok()))
}

/// Chooses the payload type to send the camera's video with, or explains why nothing fits.
///
/// Only H.264 is sent. Among offered H.264 formats with packetization-mode 1, the first whose
/// profile (profile_idc and constraint flags as libwebrtc classifies them, level ignored) matches
/// the camera's wins; then the first with the same `profile_idc` (a High camera and a
/// constrained-High offer); else the first with packetization-mode 1.
pub fn choose_h264(formats: &[OfferedFormat], params: &VideoParams) -> Result<H264Choice, Error> {
    let not_acceptable = || {
        let names = offered_codec_names(formats);
        let accepts = if names.is_empty() {
            "no video codecs".to_owned()
        } else {
            names.join(", ")
        };
        err!(
            NotAcceptable,
            "camera sends {}; offer accepts {accepts}",
            params.codec.display_name()
        )
    };
    if params.codec != Codec::H264 {
        return Err(not_acceptable());
    }
    let h264: Vec<&OfferedFormat> = formats
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("H264"))
        .collect();
    if h264.is_empty() {
        return Err(not_acceptable());
    }
    let mode1: Vec<&OfferedFormat> = h264
        .iter()
        .copied()
        .filter(|f| f.packetization_mode == 1)
        .collect();
    let Some(&first_mode1) = mode1.first() else {
        bail!(
            NotAcceptable,
            "camera sends H.264; offer accepts H.264 only with packetization-mode=0"
        );
    };
    let cam = camera_plid(params);
    let plid_of = |f: &OfferedFormat| f.profile_level_id.unwrap_or([0x42, 0xe0, 0x1f]);
    // Same profile class (e.g. constrained baseline) beats same profile_idc only (high camera,
    // constrained-high offer), which beats anything else; ties go to offer order.
    let score = |f: &OfferedFormat| match cam {
        Some(c) if h264_profile(plid_of(f)) == h264_profile(c) => 2,
        Some(c) if plid_of(f)[0] == c[0] => 1,
        _ => 0,
    };
    let mut chosen = first_mode1;
    for f in mode1.iter().copied() {
        if score(f) > score(chosen) {
            chosen = f;
        }
    }
    let profile_matches = score(chosen) > 0;
    let rtx = formats
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("rtx") && f.apt == Some(chosen.pt))
        .map(|f| f.pt);
    Ok(H264Choice {
        pt: chosen.pt,
        rtx,
        profile_level_id: plid_of(chosen),
        profile_matches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn params(codec: Codec, plid: Option<[u8; 3]>) -> VideoParams {
        VideoParams {
            codec,
            version: 1,
            width: 1280,
            height: 720,
            frame_rate: Some((25, 1)),
            rfc6381: String::new(),
            h264_profile_level_id: plid,
            vps: None,
            sps: Bytes::new(),
            pps: Bytes::new(),
        }
    }

    const CHROME_LIKE: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 112\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=fmtp:103 apt=102\r\n\
a=rtpmap:104 H264/90000\r\n\
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:105 rtx/90000\r\n\
a=fmtp:105 apt=104\r\n\
a=rtpmap:106 H264/90000\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:107 rtx/90000\r\n\
a=fmtp:107 apt=106\r\n\
a=rtpmap:108 H264/90000\r\n\
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\r\n\
a=rtpmap:109 rtx/90000\r\n\
a=fmtp:109 apt=108\r\n\
a=rtpmap:112 red/90000\r\n";

    #[test]
    fn picks_matching_profile() {
        let f = video_formats(CHROME_LIKE);
        assert_eq!(f.len(), 11);
        // High camera -> the 640c1f PT (same profile_idc; constrained high is the only high).
        let c = choose_h264(&f, &params(Codec::H264, Some([0x64, 0x00, 0x28]))).unwrap();
        assert_eq!((c.pt, c.rtx, c.profile_matches), (108, Some(109), true));
        // Constrained baseline camera -> 106, not the baseline 102 nor the mode-0 104.
        let c = choose_h264(&f, &params(Codec::H264, Some([0x42, 0xc0, 0x1e]))).unwrap();
        assert_eq!((c.pt, c.rtx, c.profile_matches), (106, Some(107), true));
        // Baseline camera -> 102.
        let c = choose_h264(&f, &params(Codec::H264, Some([0x42, 0x00, 0x0a]))).unwrap();
        assert_eq!((c.pt, c.profile_matches), (102, true));
        // Main camera: no main PT offered -> first mode-1 PT.
        let c = choose_h264(&f, &params(Codec::H264, Some([0x4d, 0x00, 0x29]))).unwrap();
        assert_eq!((c.pt, c.profile_matches), (102, false));
    }

    #[test]
    fn names_both_sides() {
        let f = video_formats(CHROME_LIKE);
        let e = choose_h264(&f, &params(Codec::H265, None)).unwrap_err();
        assert_eq!(e.kind(), base::ErrorKind::NotAcceptable);
        assert_eq!(e.message(), "camera sends H.265; offer accepts VP8, H.264");
        let vp8 = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\nm=video 0 UDP/TLS/RTP/SAVPF 98\r\n\
a=rtpmap:98 H264/90000\r\n";
        let e = choose_h264(&video_formats(vp8), &params(Codec::H264, None)).unwrap_err();
        assert_eq!(e.message(), "camera sends H.264; offer accepts VP8");
    }

    #[test]
    fn profiles() {
        assert_eq!(
            h264_profile([0x42, 0xe0, 0x1f]),
            H264Profile::ConstrainedBaseline
        );
        assert_eq!(h264_profile([0x42, 0x00, 0x1f]), H264Profile::Baseline);
        assert_eq!(h264_profile([0x4d, 0x00, 0x1f]), H264Profile::Main);
        assert_eq!(h264_profile([0x64, 0x00, 0x1f]), H264Profile::High);
        assert_eq!(
            h264_profile([0x64, 0x0c, 0x1f]),
            H264Profile::ConstrainedHigh
        );
        assert_eq!(h264_profile([0x6e, 0x00, 0x1f]), H264Profile::Other(0x6e));
        assert_eq!(parse_plid("zz0000"), None);
        assert_eq!(parse_plid("é0000"), None);
    }

    /// aiortc's default offer (video, then audio) and the answer str0m writes for it.
    const AIORTC_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=msid-semantic:WMS *\r\n\
m=video 40000 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102\r\nc=IN IP4 127.0.0.1\r\n\
a=recvonly\r\na=mid:0\r\na=rtcp-mux\r\na=rtpmap:97 VP8/90000\r\n\
a=rtpmap:99 H264/90000\r\n\
a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=ice-ufrag:oUfr\r\na=ice-pwd:opwd\r\na=setup:actpass\r\n\
m=audio 40001 UDP/TLS/RTP/SAVPF 96 9 0 8\r\nc=IN IP4 127.0.0.1\r\n\
a=recvonly\r\na=mid:1\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=rtcp-mux\r\n\
a=ssrc:123 cname:x\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=ice-ufrag:oUfr2\r\na=ice-pwd:opwd2\r\na=setup:actpass\r\n";

    const STR0M_ANSWER: &str = "v=0\r\no=str0m-1 2 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=fingerprint:sha-256 AA:BB\r\na=setup:passive\r\na=ice-lite\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 99\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:sU\r\na=ice-pwd:spwd\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n\
a=rtpmap:99 H264/90000\r\na=ssrc:5 cname:y\r\n\
a=candidate:1 1 udp 2130706175 127.0.0.1 8189 typ host\r\na=end-of-candidates\r\n\
m=audio 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:sU\r\na=ice-pwd:spwd\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\n";

    #[test]
    fn rejected_m_line_is_answered_as_jsep_expects() {
        let fixed = answer_rejected_m_lines(AIORTC_OFFER, STR0M_ANSWER);
        let (head, audio) = fixed.split_once("m=audio").expect("audio section");
        // Session part and the accepted video section are unchanged.
        assert_eq!(head, STR0M_ANSWER.split_once("m=audio").unwrap().0);
        assert_eq!(
            format!("m=audio{audio}"),
            "m=audio 0 UDP/TLS/RTP/SAVPF 96 9 0 8\r\n\
c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:sU\r\na=ice-pwd:spwd\r\na=mid:1\r\na=rtcp-mux\r\n\
a=rtpmap:96 opus/48000/2\r\na=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=inactive\r\n"
        );
        // Still out of the BUNDLE group.
        assert!(fixed.contains("a=group:BUNDLE 0\r\n"));
        // Nothing rejected: unchanged (modulo line endings); misaligned sections: as is.
        let video_only = STR0M_ANSWER.split_once("m=audio").unwrap().0;
        assert_eq!(answer_rejected_m_lines(video_only, video_only), video_only);
        assert_eq!(
            answer_rejected_m_lines(video_only, STR0M_ANSWER),
            STR0M_ANSWER
        );
        // A missing mid in the answer is taken from the offer.
        let no_mid = STR0M_ANSWER.replace("a=mid:1\r\n", "");
        assert!(answer_rejected_m_lines(AIORTC_OFFER, &no_mid).contains("a=mid:1\r\n"));
        // Every truncation of either side, and garbage, does not panic; a rewritten answer
        // still has one m-line per offered m-line.
        for cut in 0..=AIORTC_OFFER.len() {
            let offer = &AIORTC_OFFER[..cut];
            let a = answer_rejected_m_lines(offer, STR0M_ANSWER);
            assert_eq!(a.matches("m=").count(), STR0M_ANSWER.matches("m=").count());
            let _ =
                answer_rejected_m_lines(AIORTC_OFFER, &STR0M_ANSWER[..cut.min(STR0M_ANSWER.len())]);
        }
        for s in [
            "",
            "m=",
            "m=audio 0",
            "v=0\nm=audio 0 x\nm=video 0 y 1",
            "m=audio 0 P\r\n\u{e9}",
        ] {
            let _ = answer_rejected_m_lines(s, s);
            let _ = answer_rejected_m_lines(AIORTC_OFFER, s);
            let _ = answer_rejected_m_lines(s, STR0M_ANSWER);
        }
    }

    #[test]
    fn weird_sdp_does_not_panic() {
        for s in [
            "",
            "m=",
            "m=video",
            "m=video 9\na=rtpmap:\na=rtpmap:x\na=rtpmap:300 H264/9\na=fmtp:96",
            "m=video 9 x 96\na=rtpmap:96 H264\na=fmtp:96 profile-level-id=;packetization-mode",
        ] {
            let f = video_formats(s);
            let _ = choose_h264(&f, &params(Codec::H264, None));
        }
    }
}
