//! The bodies of Vantage's fuzz targets, one `pub fn <target>(data: &[u8])` each.
//!
//! Every body feeds untrusted bytes to a parser and asserts what must hold for any input: no panic,
//! and the parser's invariants (bounds, order, round-trips where one exists). The same functions
//! run in two places:
//! - `fuzz/fuzz_targets/<target>.rs`: the libFuzzer targets (`cargo fuzz run <target>`, nightly);
//! - `tests/replay.rs`: an ordinary `cargo test` on stable that replays the committed seed corpus
//!   in `fuzz/seeds/<target>/` and a few thousand inputs derived from it by the deterministic
//!   mutator in [`mutate`], so CI exercises every target without a nightly toolchain.
//!
//! A failing input found either way reproduces with `cargo test -p fuzzing --test replay` once it
//! is added to `fuzz/seeds/<target>/`.
//!
//! This crate is test harness, not product code: a broken invariant is reported by panicking (that
//! is what libFuzzer and the replay test detect), so `unwrap`/`expect` on what a body just checked
//! are allowed here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod mutate;
pub mod replay;

use media::Codec;
use media::nal::annexb_nals;
use media::rtp::{MIN_PAYLOAD_SIZE, packetize};
use media::{ParameterSets, VideoParams};
use rtsp_server::AudioClip;
use rtsp_server::audio::parse_adts;
use rtsp_server::request::{Message, parse_message, uri_path};

/// A target's name and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name of its folder in `fuzz/seeds/` and its binary in `fuzz/`.
pub const TARGETS: [Target; 14] = [
    ("annexb_split", annexb_split),
    ("sps_parse", sps_parse),
    ("rtsp_request", rtsp_request),
    ("sdp_offer", sdp_offer),
    ("config_load", config_load),
    ("vms_json", vms_json),
    ("vms_soap", vms_soap),
    ("fmp4_scan", fmp4_scan),
    ("adts_parse", adts_parse),
    ("mp4_read_init", mp4_read_init),
    ("mp4_read_fragment", mp4_read_fragment),
    ("export_manifest", export_manifest),
    ("http_range", http_range),
    ("jwt_verify", jwt_verify),
];

/// Splitting arbitrary bytes into access units, then packetizing them, never panics and keeps the
/// output well-formed: the access units hold the input's NAL units in order (a prefix of them:
/// trailing NAL units without a picture are dropped), and the RTP payloads reassemble into the
/// access unit's NAL units.
///
/// The first byte selects the codec (bit 0) and the payload size (`(byte >> 1) * 16`).
pub fn annexb_split(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let codec = if sel & 1 == 0 {
        Codec::H264
    } else {
        Codec::H265
    };
    let mtu = usize::from(sel >> 1) * 16;
    let input_nals: Vec<&[u8]> = annexb_nals(rest).collect();
    let mut next_nal = 0;
    for au in media::split_access_units(codec, rest) {
        assert!(au.data.starts_with(&[0, 0, 0, 1]));
        let nals: Vec<&[u8]> = annexb_nals(&au.data).collect();
        assert!(!nals.is_empty());
        for nal in &nals {
            assert_eq!(
                Some(nal),
                input_nals.get(next_nal),
                "access unit NAL units are the input's, in order"
            );
            next_nal += 1;
        }
        let _ = ParameterSets::from_access_unit(codec, &au.data);
        let payloads = packetize(codec, &au.data, mtu);
        for (i, p) in payloads.iter().enumerate() {
            assert!(p.data.len() <= mtu.max(MIN_PAYLOAD_SIZE));
            assert_eq!(p.marker, i + 1 == payloads.len(), "marker on the last only");
        }
        if let Some(sent) = expected_rtp_nals(codec, &nals) {
            assert_eq!(depacketize(codec, &payloads), sent, "RTP round-trip");
        }
    }
}

/// The NAL units `packetize` sends for an access unit (it drops AUDs, and H.265 NAL units shorter
/// than their header), or `None` when one of them has a fragmentation-unit type of its own, which
/// a receiver cannot tell from a real fragment (so no round-trip is defined).
fn expected_rtp_nals<'a>(codec: Codec, nals: &[&'a [u8]]) -> Option<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    for &nal in nals {
        let t = media::nal::nal_type(codec, nal);
        let (skip, fu) = match codec {
            Codec::H264 => (t == Some(9), t == Some(28)),
            Codec::H265 => (nal.len() < 2 || t == Some(35), t == Some(49)),
        };
        if fu {
            return None;
        }
        if !skip {
            out.push(nal);
        }
    }
    Some(out)
}

/// A minimal receiver: single NAL unit packets as they are, fragmentation units (H.264 FU-A,
/// H.265 FU) joined back into their NAL unit.
fn depacketize(codec: Codec, payloads: &[media::rtp::RtpPayload]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    for p in payloads {
        let d = &p.data[..];
        let (is_fu, header_len) = match codec {
            Codec::H264 => (d.first().is_some_and(|b| b & 0x1f == 28), 2),
            Codec::H265 => (d.first().is_some_and(|b| (b >> 1) & 0x3f == 49), 3),
        };
        if !is_fu {
            assert!(open.is_none(), "a fragmented NAL unit was not ended");
            out.push(d.to_vec());
            continue;
        }
        assert!(d.len() > header_len, "empty fragment");
        let fu = d[header_len - 1];
        let (start, end, typ) = (fu & 0x80 != 0, fu & 0x40 != 0, fu & 0x3f);
        if start {
            assert!(open.is_none(), "a fragmented NAL unit was not ended");
            open = Some(match codec {
                Codec::H264 => vec![(d[0] & 0xe0) | (typ & 0x1f)],
                Codec::H265 => vec![(d[0] & 0x81) | (typ << 1), d[1]],
            });
        }
        let nal = open.as_mut().expect("fragment without a start");
        nal.extend_from_slice(&d[header_len..]);
        if end {
            out.extend(open.take());
        }
    }
    assert!(open.is_none(), "a fragmented NAL unit was not ended");
    out
}

/// SPS parsing and `VideoParams` construction never panic on arbitrary bytes.
pub fn sps_parse(data: &[u8]) {
    let _ = media::sps::parse_h264_sps(data);
    if let Some(s) = media::sps::parse_h265_sps(data) {
        let _ = s.rfc6381();
    }
    let mut r = media::bits::BitReader::new(data);
    while r.read_ue().is_some() {}
    for codec in [Codec::H264, Codec::H265] {
        let ps = ParameterSets {
            vps: Some(data.to_vec().into()),
            sps: Some(data.to_vec().into()),
            pps: Some(data.to_vec().into()),
        };
        if let Ok(p) = VideoParams::from_parameter_sets(codec, &ps, 0) {
            assert_eq!(p.codec, codec);
            let _ = p.sdp_fmtp();
        }
    }
}

/// The RTSP request parser never panics, never claims more bytes than it was given, and parses a
/// stream of pipelined messages to the end or to an error. An interleaved frame is exactly its
/// 4-byte header and the length it announces.
pub fn rtsp_request(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((msg, used))) = parse_message(rest) {
        assert!(used > 0 && used <= rest.len());
        match msg {
            Message::Request(r) => {
                let _ = r.path();
                let _ = r.header("CSeq");
                assert!(r.body.len() < used);
            }
            Message::Interleaved { channel, data } => {
                assert_eq!(rest[0], b'$');
                assert_eq!(channel, rest[1]);
                assert_eq!(used, 4 + data.len());
                assert_eq!(&data[..], &rest[4..used]);
            }
        }
        rest = &rest[used..];
    }
    if let Ok(s) = std::str::from_utf8(data)
        && let Some(p) = uri_path(s)
    {
        assert!(p.starts_with('/'));
        assert!(!p.contains(['?', '#']));
    }
}

/// SDP offers arrive from any WHEP client: scanning their video formats and choosing a payload
/// type must never panic, and the choice for an H.264 camera (High and Baseline) is an offered
/// H.264 format with packetization-mode 1 (its RTX an offered `rtx` repairing it), or a refusal
/// exactly when the offer has none.
pub fn sdp_offer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let formats = webrtc::sdp::video_formats(text);
    let _ = webrtc::sdp::offered_codec_names(&formats);
    let _ = webrtc::sdp::first_video_mid(text);
    let usable = formats
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("H264") && f.packetization_mode == 1);
    for camera in h264_cameras() {
        match webrtc::sdp::choose_h264(&formats, camera) {
            Ok(c) => {
                assert!(formats.iter().any(|f| f.pt == c.pt
                    && f.name.eq_ignore_ascii_case("H264")
                    && f.packetization_mode == 1));
                if let Some(rtx) = c.rtx {
                    assert!(formats.iter().any(|f| f.pt == rtx
                        && f.name.eq_ignore_ascii_case("rtx")
                        && f.apt == Some(c.pt)));
                }
            }
            Err(_) => assert!(!usable, "refused an offer with H.264 packetization-mode 1"),
        }
    }
}

/// Two H.264 cameras (High and Baseline, from the fixture clips' parameter sets).
fn h264_cameras() -> &'static [VideoParams] {
    static CAMERAS: std::sync::OnceLock<Vec<VideoParams>> = std::sync::OnceLock::new();
    CAMERAS.get_or_init(|| {
        let high: &[&[u8]] = &[
            include_bytes!("../../../fuzz/seeds/sps_parse/h264_high_nal7.bin"),
            include_bytes!("../../../fuzz/seeds/sps_parse/h264_high_nal8.bin"),
        ];
        let baseline: &[&[u8]] = &[
            include_bytes!("../../../fuzz/seeds/sps_parse/h264_baseline_nal7.bin"),
            include_bytes!("../../../fuzz/seeds/sps_parse/h264_baseline_nal8.bin"),
        ];
        [high, baseline]
            .iter()
            .map(|ps| {
                let sets = ParameterSets {
                    vps: None,
                    sps: Some(ps[0].to_vec().into()),
                    pps: Some(ps[1].to_vec().into()),
                };
                VideoParams::from_parameter_sets(Codec::H264, &sets, 0)
                    .expect("fixture parameter sets")
            })
            .collect()
    })
}

/// Configuration files and VANTAGE__* overrides come from administrators: every input gets a list
/// of problems or a configuration, never a panic. The input is a YAML document, optionally
/// followed by `\n--env\n` and `NAME=value` lines.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (doc, env) = text.split_once("\n--env\n").unwrap_or((text, ""));
    let env = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    if let Err(problems) = settings::load_str(doc, env) {
        assert!(!problems.is_empty(), "a rejected configuration says why");
    }
}

/// XProtect REST/IDP JSON parsers: must never panic, whatever the gateway sends.
pub fn vms_json(data: &[u8]) {
    let _ = vms::parse_cameras(data);
    let _ = vms::parse_hardware(data);
    let _ = vms::parse_recording_servers(data);
    let _ = vms::parse_camera_groups(data);
    let _ = vms::parse_rest_error(data);
    let _ = vms::parse_token_response(data);
    let _ = vms::parse_well_known_uris(data);
    let _ = vms::parse_openid_configuration(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vms::parse_timestamp(s);
        let _ = vms::parse_gis_point(s);
    }
}

/// XProtect SOAP answers (ServerCommandService Login, RecorderCommandService SequencesGet) and
/// timestamps: must never panic.
pub fn vms_soap(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = vms::parse_login_result(&s);
    let _ = vms::parse_sequences(&s);
    let _ = vms::parse_timestamp(&s);
}

/// Scanning arbitrary bytes as a recording segment never panics, and what it reports is
/// consistent: fragments lie in order inside the valid prefix, which lies inside the input, and
/// scanning the valid prefix again finds the same thing.
pub fn fmp4_scan(data: &[u8]) {
    let s = media::scan::scan_bytes(data);
    assert_eq!(s.total_len, data.len() as u64);
    assert!(s.valid_len <= data.len() as u64);
    assert!(s.init_len <= s.valid_len);
    if s.init_len == 0 {
        assert!(s.fragments.is_empty());
        assert_eq!(s.valid_len, 0);
    }
    let mut pos = s.init_len;
    for f in &s.fragments {
        assert!(f.offset >= pos);
        assert!(f.samples > 0);
        pos = f.offset + f.len;
    }
    assert_eq!(
        s.fragments.last().map_or(s.init_len, |f| f.offset + f.len),
        s.valid_len
    );
    let _ = (s.start_90k(), s.end_90k());
    let again = media::scan::scan_bytes(&data[..s.valid_len as usize]);
    assert_eq!(again.fragments, s.fragments);
    assert_eq!(again.valid_len, s.valid_len);
    assert_eq!(again.init_len, s.init_len);
    assert_eq!(again.codec, s.codec);
}

/// The ADTS parser never panics, and what it accepts is consistent: whole frames covering the
/// input, each a non-empty raw AAC frame that fits the 13-bit AU-header size, and a 2-byte
/// AudioSpecificConfig that agrees with the reported parameters.
pub fn adts_parse(data: &[u8]) {
    let Ok((params, frames)) = parse_adts(data) else {
        assert!(AudioClip::from_adts(data).is_err());
        return;
    };
    assert!(!frames.is_empty());
    let raw: usize = frames.iter().map(|f| f.len()).sum();
    let headers = data.len() - raw;
    // Each frame has a 7-byte header, or 9 with its CRC.
    assert!(headers >= 7 * frames.len() && headers <= 9 * frames.len());
    assert!(frames.iter().all(|f| !f.is_empty() && f.len() < 8192));
    assert_eq!(params.config.len(), 2);
    let object_type = params.config[0] >> 3;
    assert_eq!(params.rfc6381, format!("mp4a.40.{object_type}"));
    assert!(params.sample_rate >= 7350 && params.sample_rate <= 96_000);
    assert!(params.channels >= 1 && params.channels <= 8);
    let clip = AudioClip::from_adts(data).expect("parse_adts accepted it");
    assert_eq!(clip.frames().len(), frames.len());
    assert_eq!(clip.params(), &params);
}

/// Reading arbitrary bytes as an init segment never panics, and what it accepts is consistent:
/// whole sample entry boxes of the kinds it reports, a non-zero timescale, and an MSE init segment
/// built from it that reads back as the same tracks (without edit lists).
pub fn mp4_read_init(data: &[u8]) {
    let Ok(info) = media::mp4::read_init(data) else {
        return;
    };
    let v = &info.video;
    let fourcc = &v.sample_entry[4..8];
    match v.codec {
        Codec::H264 => assert!(fourcc == b"avc1" || fourcc == b"avc3"),
        Codec::H265 => assert!(fourcc == b"hvc1" || fourcc == b"hev1"),
    }
    assert!(v.timescale > 0);
    assert!(v.sample_entry.len() <= data.len());
    if let Some(a) = &info.audio {
        assert_eq!(&a.sample_entry[4..8], b"mp4a");
        assert!(a.sample_rate > 0);
        assert_ne!(a.track_id, v.track_id);
    }
    let init = media::mp4::mse_init(&info);
    let back = media::mp4::read_init(&init).expect("mse_init output reads back");
    assert_eq!(back.video.sample_entry, v.sample_entry);
    assert_eq!(
        (back.video.codec, back.video.width, back.video.height),
        (v.codec, v.width, v.height)
    );
    assert_eq!(
        (back.video.track_id, back.video.timescale),
        (v.track_id, v.timescale)
    );
    assert_eq!(back.video.edit_media_time, None);
    assert_eq!(
        back.audio
            .as_ref()
            .map(|a| (&a.sample_entry, a.sample_rate, a.channels, a.track_id)),
        info.audio
            .as_ref()
            .map(|a| (&a.sample_entry, a.sample_rate, a.channels, a.track_id))
    );
}

/// Reading arbitrary bytes as a `moof` never panics, and what it accepts is consistent: each
/// track's samples back to back after the `moof`, the audio right after the video, within
/// `MAX_FRAGMENT_SAMPLES`; and remuxing it gives a `moof` that reads back with the new sequence
/// number and decode times and the same samples at the same places relative to its end.
pub fn mp4_read_fragment(data: &[u8]) {
    const AT: u64 = 1 << 20;
    let Ok(f) = media::mp4::read_fragment(data, AT) else {
        return;
    };
    let moof_len = u64::from(u32::from_be_bytes(data[..4].try_into().unwrap()));
    let moof_len = if moof_len == 1 {
        u64::from_be_bytes(data[8..16].try_into().unwrap())
    } else {
        moof_len
    };
    let tracks: Vec<&media::mp4::TrackFragment> =
        std::iter::once(&f.video).chain(&f.audio).collect();
    let mut next = f.video.samples[0].offset;
    assert!(next >= AT + moof_len, "data inside the moof");
    let mut count = 0;
    for t in &tracks {
        assert!(!t.samples.is_empty());
        for s in &t.samples {
            assert_eq!(s.offset, next, "samples back to back");
            next = s.offset + u64::from(s.size);
        }
        assert_eq!(t.byte_range().end, next);
        count += t.samples.len();
    }
    assert!(count <= media::mp4::MAX_FRAGMENT_SAMPLES);
    assert_eq!(f.byte_range(), f.video.samples[0].offset..next);

    let audio_tfdt = f.audio.as_ref().map(|_| 456);
    let Ok(out) = media::mp4::remux_moof(data, 7, 123, audio_tfdt) else {
        return;
    };
    let back = media::mp4::read_fragment(&out, 0).expect("remuxed moof reads back");
    assert_eq!(back.sequence, 7);
    assert_eq!(back.video.base_decode_time, 123);
    assert_eq!(back.audio.as_ref().map(|a| a.base_decode_time), audio_tfdt);
    let rel = |t: &media::mp4::TrackFragment, end: u64| -> Vec<(u64, u32, u32, bool)> {
        t.samples
            .iter()
            .map(|s| (s.offset - end, s.size, s.duration, s.is_sync))
            .collect()
    };
    assert_eq!(
        rel(&back.video, out.len() as u64),
        rel(&f.video, AT + moof_len)
    );
    assert_eq!(
        back.audio.as_ref().map(|a| rel(a, out.len() as u64)),
        f.audio.as_ref().map(|a| rel(a, AT + moof_len))
    );
}

/// A `Range` header (the input as text) against a body of a length taken from the input's first
/// eight bytes never panics, and a range it grants lies inside the body and is not empty; a
/// playback `duration` parses to a positive finite time or nothing.
pub fn http_range(data: &[u8]) {
    use api::playback::{Ranged, byte_range, parse_duration};
    let (len, text) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (u64::from_le_bytes(*n) >> (n[0] % 64), rest),
        None => (0, data),
    };
    let text = String::from_utf8_lossy(text);
    match byte_range(Some(&text), len) {
        Ranged::Part(r) => assert!(r.start < r.end && r.end <= len, "{r:?} of {len}"),
        Ranged::Whole | Ranged::Unsatisfiable => {}
    }
    if let Some(d) = parse_duration(&text) {
        assert!(d > std::time::Duration::ZERO);
    }
}

/// The key that signs the `export_manifest` seeds (fixed, so `make_seeds` is reproducible and the
/// body can check against a known `--public-key`).
pub fn export_seed_key() -> evidence::SigningKey {
    evidence::SigningKey::from_seed(&[0x5e; 32])
}

/// Export manifests arrive with exports handed to anyone (courts, other agencies): parsing and
/// verifying one never panics, always reports at least one check, and agrees with itself: a
/// manifest verified against the seed key is verified against its own key too, and one that
/// verifies still does after its JSON is re-laid out (compact and indented), with well-formed
/// typed fields.
pub fn export_manifest(data: &[u8]) {
    let pem = export_seed_key().public_key_pem();
    let (own, object) = evidence::verify_manifest(data, None);
    let (trusted, _) = evidence::verify_manifest(data, Some(&pem));
    for r in [&own, &trusted] {
        assert!(!r.checks.is_empty());
        let text = r.to_string();
        assert_eq!(text.ends_with("result: verified\n"), r.ok(), "{text}");
        assert_eq!(text.lines().count(), r.checks.len() + 1);
    }
    if trusted.ok() {
        assert!(
            own.ok(),
            "verified against the seed key but not its own:\n{own}"
        );
    }
    if !own.ok() {
        return;
    }
    let object = object.expect("a verified manifest has its object");
    assert_eq!(
        own.get("signature").map(|c| c.outcome),
        Some(evidence::Outcome::Pass)
    );
    let v: serde_json::Value = serde_json::from_slice(data).expect("verified JSON parses");
    assert_eq!(v.get("manifest"), Some(&serde_json::Value::Object(object)));
    for text in [
        serde_json::to_vec(&v).expect("compact"),
        serde_json::to_vec_pretty(&v).expect("indented"),
    ] {
        let (again, _) = evidence::verify_manifest(&text, None);
        assert!(again.ok(), "re-laid out, it fails:\n{again}");
    }
    let signed: evidence::SignedManifest = serde_json::from_value(v).expect("typed manifest");
    assert!(signed.manifest.problems().is_empty());
}

/// The time the `jwt_verify` target verifies at (Unix seconds; its seeds are issued then).
pub const JWT_NOW: u64 = 1_800_000_000;

/// The `jwt_verify` target's verifier: the node's own issuer `vantage:fuzz` (the `iam` crate's
/// test Ed25519 key), an identity provider `https://idp.fuzz/pem` with the test RSA key `rsa_a`
/// as PEM, and one `https://idp.fuzz/jwks` whose key set comes from the input.
pub fn jwt_verifier() -> iam::Verifier {
    const ED: &str = include_str!("../../iam/testdata/ed_node.pem");
    const ED_PUB: &str = include_str!("../../iam/testdata/ed_node.pub.pem");
    const RSA_PUB: &str = include_str!("../../iam/testdata/rsa_a.pub.pem");
    let local = iam::LocalIssuer::new(
        "vantage:fuzz",
        ED.as_bytes(),
        ED_PUB.as_bytes(),
        std::time::Duration::from_secs(900),
        5,
    )
    .unwrap();
    let ext = |issuer: &str, keys| {
        iam::ExternalIssuer::new(iam::IssuerConfig {
            issuer: issuer.into(),
            audiences: vec!["vantage".into()],
            keys,
            algorithms: vec![iam::Algorithm::RS256, iam::Algorithm::ES256],
            leeway: 60,
            claims: iam::ClaimMap::default(),
        })
        .unwrap()
    };
    iam::Verifier {
        local: Some(local),
        external: vec![
            ext("https://idp.fuzz/pem", iam::KeySource::Pem(RSA_PUB.into())),
            ext(
                "https://idp.fuzz/jwks",
                iam::KeySource::JwksUrl("https://idp.fuzz/jwks/certs".into()),
            ),
        ],
    }
}

/// A bearer token (the input up to its first NUL, as text), after the `https://idp.fuzz/jwks`
/// issuer took the rest of the input as its JWKS document, never panics the verifier; what it
/// accepts names a configured issuer, a subject, roles Vantage knows and an expiry not passed;
/// what it refuses says why without repeating the token.
pub fn jwt_verify(data: &[u8]) {
    let (token, jwks) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let v = jwt_verifier();
    if let Some(doc) = jwks
        && let Ok(n) = v.external[1].set_jwks(doc)
    {
        assert_eq!(v.external[1].key_ids().len(), n);
    }
    let token = String::from_utf8_lossy(token);
    match v.verify(&token, JWT_NOW) {
        Ok(id) => {
            assert!(
                [
                    "vantage:fuzz",
                    "https://idp.fuzz/pem",
                    "https://idp.fuzz/jwks"
                ]
                .contains(&id.issuer.as_str())
            );
            assert!(!id.subject.is_empty());
            assert!(id.expires_at + 60 > JWT_NOW);
            assert!(
                id.grants
                    .iter()
                    .all(|g| iam::ROLES.contains(&g.role.as_str()))
            );
            assert!(
                id.grants.windows(2).all(|w| w[0] < w[1]),
                "sorted, no repeats"
            );
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                token.len() < 24 || !shown.contains(token.as_ref()),
                "the error repeats the token: {shown}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    /// The `export_manifest` seeds are what their names say, so the replay starts from manifests
    /// that verify (the deep end of the body) as well as ones that fail.
    #[test]
    fn export_manifest_seeds_verify_or_fail_as_named() {
        let pem = super::export_seed_key().public_key_pem();
        for (name, data) in crate::replay::load_seeds("export_manifest") {
            let (r, _) = evidence::verify_manifest(&data, Some(&pem));
            let failed: Vec<&str> = r.failures().map(|c| c.name).collect();
            let expected: &[&str] = match name.as_str() {
                n if n.starts_with("signed") => &[],
                "key_id_mismatch.json" => &["key"],
                "tampered_camera_id.json" => &["signature"],
                "duplicate_key.json" => &["manifest"],
                other => panic!("unexpected seed {other}"),
            };
            assert_eq!(failed, expected, "{name}:\n{r}");
        }
    }
}
