//! Regenerates the committed seed corpora in `fuzz/seeds/<target>/` from the fixtures and from the
//! hand-written cases below. Deterministic: running it twice gives the same files.
//!
//! `cargo run -p fuzzing --example make_seeds [output-dir]` (default: `fuzz/seeds`). Each target's
//! folder is emptied first, so a removed case disappears too.
//!
//! Seeds stay small (a few KB per target): media is cut to the first access units or frames and
//! slice data is truncated (no parser here decodes pixels), so the mutator's edits land on headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use media::fmp4::{
    AudioSample, Sample, SegmentStart, fragment, fragment_av, init_segment, init_segment_at,
    init_segment_av, prft,
};
use media::nal::{annexb_nals, nal_type};
use media::{Codec, VideoParams, split_access_units};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(path: &str) -> Vec<u8> {
    let p = repo().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Out {
    dir: PathBuf,
    total: usize,
}

impl Out {
    fn target(&mut self, target: &str) {
        let d = self.dir.join(target);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create seed folder");
    }

    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let p = self.dir.join(target).join(name);
        std::fs::write(&p, data).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        self.total += data.len();
        println!("{:>6}  {target}/{name}", data.len());
    }
}

/// The first `n` access units of a clip with every NAL unit cut to `max_nal` bytes, in Annex B
/// with alternating 4- and 3-byte start codes.
fn head(codec: Codec, clip: &[u8], n: usize, max_nal: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, au) in split_access_units(codec, clip).iter().take(n).enumerate() {
        for nal in annexb_nals(&au.data) {
            out.extend_from_slice(if i % 2 == 0 {
                &[0, 0, 0, 1]
            } else {
                &[0, 0, 1]
            });
            out.extend_from_slice(&nal[..nal.len().min(max_nal)]);
        }
    }
    out
}

/// The parameter-set NAL units of a clip's first key frame, by NAL type.
fn parameter_sets(codec: Codec, clip: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let aus = split_access_units(codec, clip);
    annexb_nals(&aus[0].data)
        .filter_map(|nal| {
            let t = nal_type(codec, nal)?;
            let ps = match codec {
                Codec::H264 => t == 7 || t == 8,
                Codec::H265 => (32..=34).contains(&t),
            };
            ps.then(|| (t, nal.to_vec()))
        })
        .collect()
}

/// A recording segment: an init segment and `frags` fragments of `per` samples each (their NAL
/// units cut to 48 bytes), with `audio` AAC frames per fragment when audio is given.
fn segment(
    codec: Codec,
    clip: &[u8],
    frags: usize,
    per: usize,
    audio: Option<(&media::AudioParams, &[Vec<u8>])>,
) -> Vec<u8> {
    segment_from(codec, clip, frags, per, audio, None)
}

/// A segment as the recorder writes it since issue 9: creation times in the init segment (and an
/// edit list when the first fragment is decoded after 0), a `prft` before every fragment giving
/// its wall-clock time.
fn recorded_segment(
    codec: Codec,
    clip: &[u8],
    frags: usize,
    per: usize,
    start: SegmentStart,
) -> Vec<u8> {
    segment_from(codec, clip, frags, per, None, Some(start))
}

fn segment_from(
    codec: Codec,
    clip: &[u8],
    frags: usize,
    per: usize,
    audio: Option<(&media::AudioParams, &[Vec<u8>])>,
    recorded: Option<SegmentStart>,
) -> Vec<u8> {
    let aus = split_access_units(codec, clip);
    let params = VideoParams::from_key_access_unit(codec, &aus[0].data, 1).expect("params");
    let mut out = match (audio, recorded) {
        (a, Some(start)) => init_segment_at(&params, a.map(|(a, _)| a), start),
        (Some((a, _)), None) => init_segment_av(&params, Some(a)),
        (None, None) => init_segment(&params),
    }
    .expect("init segment");
    let mut t = recorded.map_or(0, |r| r.decode_time_90k);
    let cut: Vec<Vec<u8>> = aus
        .iter()
        .take(frags * per)
        .map(|au| {
            let mut v = Vec::new();
            for nal in annexb_nals(&au.data) {
                v.extend_from_slice(&[0, 0, 0, 1]);
                v.extend_from_slice(&nal[..nal.len().min(48)]);
            }
            v
        })
        .collect();
    for f in 0..frags {
        let samples: Vec<Sample> = cut[f * per..(f + 1) * per]
            .iter()
            .enumerate()
            .map(|(i, d)| Sample {
                data: d,
                duration: 3600,
                // The fixture's first access unit is a key frame; the cut keeps it first.
                is_key: i == 0,
            })
            .collect();
        let seq = f as u32 + 1;
        let frag = match audio {
            Some((_, frames)) => {
                let a: Vec<AudioSample> = frames
                    .iter()
                    .map(|d| AudioSample {
                        data: &d[..d.len().min(24)],
                        duration: 1024,
                    })
                    .collect();
                fragment_av(
                    seq,
                    t,
                    &samples,
                    Some((f as u64 * 1024 * a.len() as u64, &a)),
                )
            }
            None => fragment(seq, t, &samples),
        }
        .expect("fragment");
        if let Some(r) = recorded {
            let wall = r.unix_secs * 90_000 + (t - r.decode_time_90k) as i64;
            out.extend_from_slice(&prft(wall, t));
        }
        out.extend_from_slice(&frag);
        t += 3600 * per as u64;
    }
    out
}

/// A video-only `moof` of 4 samples of 100 bytes whose durations, sizes and flags are `tfhd`
/// defaults (the key frame's flags in first-sample-flags), with a version 0 `tfdt`.
fn moof_with_defaults() -> Vec<u8> {
    let boxed = |t: &[u8; 4], body: &[u8]| {
        let mut b = (body.len() as u32 + 8).to_be_bytes().to_vec();
        b.extend_from_slice(t);
        b.extend_from_slice(body);
        b
    };
    let words = |w: &[u32]| w.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
    // default-base-is-moof, default duration, size and flags (non-sync).
    let mut traf = boxed(b"tfhd", &words(&[0x02_0038, 1, 3000, 100, 0x0101_0000]));
    traf.extend(boxed(b"tfdt", &words(&[0, 45_000])));
    // data offset (after the moof of 100 bytes and the mdat header), first-sample-flags: sync.
    traf.extend(boxed(b"trun", &words(&[0x005, 4, 108, 0x0200_0000])));
    let mut body = boxed(b"mfhd", &words(&[0, 9]));
    body.extend(boxed(b"traf", &traf));
    let moof = boxed(b"moof", &body);
    assert_eq!(moof.len(), 100);
    moof
}

/// Sets `protection_absent` to 0 in the first ADTS frame and inserts its 2 CRC bytes (not a real
/// CRC: the parser skips it), so the 9-byte header form has a seed.
fn with_crc(adts: &[u8]) -> Vec<u8> {
    let len =
        (usize::from(adts[3] & 3) << 11) | (usize::from(adts[4]) << 3) | usize::from(adts[5] >> 5);
    let new_len = len + 2;
    let mut h = adts[..7].to_vec();
    h[1] &= !1;
    h[3] = (h[3] & !3) | ((new_len >> 11) & 3) as u8;
    h[4] = (new_len >> 3) as u8;
    h[5] = (h[5] & 0x1f) | (((new_len & 7) as u8) << 5);
    let mut out = h;
    out.extend_from_slice(&[0xab, 0xcd]);
    out.extend_from_slice(&adts[7..len]);
    out.extend_from_slice(&adts[len..]);
    out
}

const RTSP: &[(&str, &str)] = &[
    (
        "options.txt",
        "OPTIONS rtsp://127.0.0.1:8554/live/cam-a RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: ffmpeg\r\n\r\n",
    ),
    (
        "describe.txt",
        "DESCRIBE rtsp://127.0.0.1:8554/h264_a?x=1#f RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\
         Authorization: Digest username=\"u\", realm=\"vantage\", nonce=\"abc\", \
         uri=\"rtsp://127.0.0.1:8554/h264_a\", response=\"0123456789abcdef\"\r\n\r\n",
    ),
    (
        "setup_play_pipelined.txt",
        "SETUP rtsp://h/cam/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n\
         PLAY rtsp://h/cam/ RTSP/1.0\r\nCSeq: 4\r\nSession: 12345678\r\nRange: npt=0.000-\r\n\r\n\
         \r\nGET_PARAMETER rtsp://h/cam/ RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\n\r\n\
         TEARDOWN * RTSP/1.0\nCSeq: 6\n\n",
    ),
    (
        "setup_udp.txt",
        "SETUP rtsp://h:554/cam/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n\
         Transport: RTP/AVP;unicast;client_port=50000-50001\r\n\r\n",
    ),
    (
        "announce_body.txt",
        "ANNOUNCE rtsp://h/cam RTSP/1.0\r\nCSeq: 7\r\nContent-Type: application/sdp\r\n\
         Content-Length: 24\r\n\r\nv=0\r\nm=video 0 RTP/AVP 96\r\n",
    ),
    (
        "response.txt",
        "RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n",
    ),
];

/// An interleaved RTCP receiver report followed by a keepalive request.
fn rtsp_interleaved() -> Vec<u8> {
    let mut v = vec![b'$', 1, 0, 8, 0x80, 0xc9, 0, 1, 0x12, 0x34, 0x56, 0x78];
    v.extend_from_slice(b"GET_PARAMETER rtsp://h/cam/ RTSP/1.0\r\nCSeq: 9\r\nSession: 1\r\n\r\n");
    v
}

const SDP_CHROME: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 49 50\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
a=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\na=rtpmap:104 H264/90000\r\n\
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=640c1f\r\n\
a=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=104\r\na=rtpmap:49 H265/90000\r\n\
a=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\na=rtpmap:50 rtx/90000\r\n\
a=fmtp:50 apt=49\r\n";

const SDP_MINIMAL: &str = "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 126\na=mid:v\n\
a=rtpmap:126 h264/90000\na=fmtp:126 profile-level-id=4D0028;packetization-mode=1\n";

const CONFIG_ENV: &str = "milestone:\n  server_url: \"http://192.168.1.9\"\n  \
rtsp_base_url: \"rtsp://192.168.1.9:554\"\n  recording_server: \"192.168.1.9:7563\"\n  \
username: \"rta-integration\"\n  password: \"secret\"\n  method: onvif_bridge\n\
agencies:\n  - { id: METRO, name: \"Metro\", name_ar: \"مترو\", max_streams: 30 }\n\
cameras:\n  - id: cam-1\n    agency: METRO\n    rtsp_url: \"rtsp://10.0.0.1/s\"\n    \
recording: continuous\n    retention_days: 90\n    substreams: { low: \"rtsp://10.0.0.1/low\" }\n\
--env\nVANTAGE__LIVE__IDLE_GRACE=15s\nVANTAGE__LIMITS__MAX_STREAMS=abc\n\
VANTAGE__STORAGE__MAX_USAGE=500GB\nMILESTONE_API_PORT=8081\nMILESTONE_PASSWORD=p@ss\n";

const CONFIG_BAD: &str = "agencies: [{ id: METRO, max_streams: 30 }]\ncameras:\n  \
- { id: c1, agency: METRO, rtsp_url: \"rtsp://u:topsecret@10.1.1.1/s\" }\n  \
- { id: c1, agency: NOPE, rtsp_url: \"::\" }\n  \
- { id: c2, agency: METRO, rtsp_url: \"rtsp://h/s?user=admin&password=x\", recording: sometimes }\n\
storage: { max_usage: 101% }\nlimits: { lease: 10q }\n";

const VMS_JSON: &[(&str, &str)] = &[
    (
        "well_known_uris.json",
        r#"{"ProductVersion":"25.1.1804.0","UnsecureManagementServer":"http://ms/","IdentityProvider":" http://ms/IDP ","ApiGateways":["http://ms/api/",7,null]}"#,
    ),
    (
        "openid_configuration.json",
        r#"{"issuer":"http://ms/IDP","token_endpoint":"http://ms/IDP/connect/token","server_version":"25.1","grant_types_supported":["password"]}"#,
    ),
    (
        "token_error.json",
        r#"{"error":"invalid_grant","error_description":"invalid_username_or_password","error_code":"InvalidCredentials"}"#,
    ),
    ("timestamp.txt", "2023-09-07T22:24:41.4330000+04:30"),
    ("gis_point.txt", "POINT (-96.16593 41.27878)"),
];

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| repo().join("fuzz/seeds"), PathBuf::from);
    let mut out = Out { dir, total: 0 };
    let h264_a = fixture("fixtures/clips/h264_a.h264");
    let h264_c = fixture("fixtures/clips/h264_c.h264");
    let h265_a = fixture("fixtures/clips/h265_a.h265");
    let aac = fixture("fixtures/clips/aac_16k_mono.adts");

    // annexb_split: selector byte (bit 0: H.265; the rest: payload size / 16), then Annex B.
    let t = "annexb_split";
    out.target(t);
    for (name, sel, codec, clip) in [
        ("h264_mtu1200.bin", 150u8, Codec::H264, &h264_a),
        ("h264_mtu64.bin", 8, Codec::H264, &h264_c),
        ("h265_mtu1200.bin", 151, Codec::H265, &h265_a),
        ("h265_mtu48.bin", 7, Codec::H265, &h265_a),
    ] {
        let mut v = vec![sel];
        v.extend(head(codec, clip, 3, 200));
        out.put(t, name, &v);
    }

    // sps_parse: raw parameter-set NAL units (header included, no start code).
    let t = "sps_parse";
    out.target(t);
    for (label, codec, clip) in [
        ("h264_high", Codec::H264, &h264_a),
        (
            "h264_main",
            Codec::H264,
            &fixture("fixtures/clips/h264_b.h264"),
        ),
        ("h264_baseline", Codec::H264, &h264_c),
        ("h265_main", Codec::H265, &h265_a),
    ] {
        for (typ, nal) in parameter_sets(codec, clip) {
            out.put(t, &format!("{label}_nal{typ}.bin"), &nal);
        }
    }

    let t = "rtsp_request";
    out.target(t);
    for (name, text) in RTSP {
        out.put(t, name, text.as_bytes());
    }
    out.put(t, "interleaved_then_request.bin", &rtsp_interleaved());

    let t = "sdp_offer";
    out.target(t);
    out.put(
        t,
        "aiortc_1.16_recvonly_offer.sdp",
        &fixture("fixtures/sdp/aiortc_1.16_recvonly_offer.sdp"),
    );
    out.put(t, "chrome_like_audio_video.sdp", SDP_CHROME.as_bytes());
    out.put(t, "minimal_lf.sdp", SDP_MINIMAL.as_bytes());

    let t = "config_load";
    out.target(t);
    out.put(t, "example.yaml", &fixture("vantage.example.yaml"));
    out.put(t, "milestone_with_env.yaml", CONFIG_ENV.as_bytes());
    out.put(t, "every_problem.yaml", CONFIG_BAD.as_bytes());

    let t = "vms_json";
    out.target(t);
    for name in [
        "xprotect_25.1_cameras.json",
        "xprotect_2023_cameras_numbers_as_strings.json",
        "xprotect_2023_hardware.json",
        "xprotect_2023_recording_servers.json",
        "xprotect_2023_camera_groups.json",
        "xprotect_25.1_token.json",
        "xprotect_25.1_error_unknown_resource.json",
    ] {
        out.put(
            t,
            name,
            &fixture(&format!("crates/vms/tests/fixtures/{name}")),
        );
    }
    for (name, text) in VMS_JSON {
        out.put(t, name, text.as_bytes());
    }

    let t = "vms_soap";
    out.target(t);
    for name in [
        "xprotect_scs_login_response_constructed.xml",
        "xprotect_sequences_get_entry.xml",
        "xprotect_sequences_get_response_constructed.xml",
    ] {
        out.put(
            t,
            name,
            &fixture(&format!("crates/vms/tests/fixtures/{name}")),
        );
    }

    // fmp4_scan: segments as the recorder writes them (video only, H.264 and H.265; and A/V).
    let t = "fmp4_scan";
    out.target(t);
    out.put(
        t,
        "h264_2x3.mp4",
        &segment(Codec::H264, &h264_a, 2, 3, None),
    );
    out.put(
        t,
        "h265_1x2.mp4",
        &segment(Codec::H265, &h265_a, 1, 2, None),
    );
    let start = |decode_time_90k| SegmentStart {
        decode_time_90k,
        unix_secs: 1_796_089_055,
    };
    out.put(
        t,
        "h264_recorded_prft_2x3.mp4",
        &recorded_segment(Codec::H264, &h264_a, 2, 3, start(0)),
    );
    // The file's first fragment was lost: an edit list maps its decode time to 0.
    out.put(
        t,
        "h264_recorded_edit_list_1x2.mp4",
        &recorded_segment(Codec::H264, &h264_a, 1, 2, start(180_000)),
    );
    let (aparams, aframes) = rtsp_server::audio::parse_adts(&aac).expect("aac fixture");
    let frames: Vec<Vec<u8>> = aframes.iter().take(3).map(|f| f.to_vec()).collect();
    out.put(
        t,
        "h264_aac_2x2.mp4",
        &segment(Codec::H264, &h264_a, 2, 2, Some((&aparams, &frames))),
    );

    // mp4_read_init: init segments as the recorder writes them (H.264 + AAC with the edit lists
    // of a file whose first fragment was lost; H.265 video only) and an MSE init segment.
    let t = "mp4_read_init";
    out.target(t);
    let av = segment_from(
        Codec::H264,
        &h264_a,
        1,
        2,
        Some((&aparams, &frames)),
        Some(start(180_000)),
    );
    let h265 = recorded_segment(Codec::H265, &h265_a, 1, 2, start(0));
    let init_of = |file: &[u8]| file[..media::scan::scan_bytes(file).init_len as usize].to_vec();
    out.put(t, "h264_aac_edit_list_init.mp4", &init_of(&av));
    out.put(t, "h265_init.mp4", &init_of(&h265));
    let info = media::mp4::read_init(&init_of(&av)).expect("init segment");
    out.put(t, "h264_aac_mse_init.mp4", &media::mp4::mse_init(&info));

    // mp4_read_fragment: the `moof`s of those segments (A/V, video only), and one as other writers
    // make them (tfhd defaults, first-sample-flags, a version 0 tfdt).
    let t = "mp4_read_fragment";
    out.target(t);
    for (name, file) in [("h264_aac_moof.bin", &av), ("h265_moof.bin", &h265)] {
        let f = &media::scan::scan_bytes(file).fragments[0];
        let at = f.offset as usize + media::fmp4::PRFT_LEN; // After the prft.
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        out.put(t, name, &file[at..at + len]);
    }
    out.put(t, "defaults_tfdt_v0_moof.bin", &moof_with_defaults());

    // adts_parse: the first frames of the AAC fixture, and one with a CRC.
    let t = "adts_parse";
    out.target(t);
    let mut end = 0;
    for f in aframes.iter().take(6) {
        end += f.len() + 7;
    }
    out.put(t, "aac_lc_16k_mono_6_frames.adts", &aac[..end]);
    let two = aframes[0].len() + aframes[1].len() + 14;
    out.put(t, "crc_then_plain.adts", &with_crc(&aac[..two]));

    // export_manifest: manifests signed with `fuzzing::export_seed_key()` (Ed25519 signatures
    // are deterministic), indented and compact, with and without an agency, and two that fail.
    let t = "export_manifest";
    out.target(t);
    let key = fuzzing::export_seed_key();
    let manifest = evidence::Manifest {
        format: evidence::FORMAT.into(),
        export_id: "0193a5c2-7d4e-7000-8000-000000000001".into(),
        camera_id: "cam-1".into(),
        camera_name: "Front door \u{645}\u{62f}\u{62e}\u{644}".into(),
        agency: Some("METRO".into()),
        start_time: "2026-11-21T08:00:00Z".into(),
        end_time: "2026-11-21T12:05:00.5+04:00".into(),
        file_name: "0193a5c2-7d4e-7000-8000-000000000001.mp4".into(),
        file_size: 48_213_504,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        video_frames: 7500,
        audio: true,
        created_by: "alice".into(),
        created_at: "2026-11-21T09:00:00.123Z".into(),
        vantage_version: "0.1.0".into(),
    };
    let signed = evidence::SignedManifest::sign(manifest.clone(), &key).expect("sign");
    out.put(
        t,
        "signed.json",
        signed.to_json_pretty().expect("json").as_bytes(),
    );
    let plain = evidence::Manifest {
        agency: None,
        audio: false,
        ..manifest.clone()
    };
    let signed_plain = evidence::SignedManifest::sign(plain, &key).expect("sign");
    out.put(
        t,
        "signed_compact_no_agency.json",
        &serde_json::to_vec(&signed_plain).expect("json"),
    );
    // Found by the replay: a key_id naming another key than public_key (the block is unsigned).
    let mut mismatch = signed_plain.clone();
    mismatch.signature.key_id.replace_range(..1, "9");
    out.put(
        t,
        "key_id_mismatch.json",
        &serde_json::to_vec(&mismatch).expect("json"),
    );
    let mut tampered = signed.clone();
    tampered.manifest.camera_id = "cam-2".into();
    out.put(
        t,
        "tampered_camera_id.json",
        tampered.to_json_pretty().expect("json").as_bytes(),
    );
    let dup = signed.to_json_pretty().expect("json").replacen(
        "\"camera_id\"",
        "\"camera_id\": \"cam-9\",\n    \"camera_id\"",
        1,
    );
    out.put(t, "duplicate_key.json", dup.as_bytes());

    // jwt_verify: tokens issued at `fuzzing::JWT_NOW` with the `iam` crate's test keys: the
    // node's own (valid, expired), an identity provider's RS256 with permissions, the same with
    // `alg: none`, and an RS256 token with a kid, NUL, a JWKS holding that key.
    let t = "jwt_verify";
    out.target(t);
    let now = fuzzing::JWT_NOW;
    let local = fuzzing::jwt_verifier().local.expect("local issuer");
    let agencies = ["METRO".to_owned()];
    let who = iam::Subject {
        user_id: "u-1",
        username: "amal",
        role: "operator",
        agencies: &agencies,
        session_id: "s-1",
    };
    out.put(
        t,
        "local.bin",
        local.issue(&who, now).expect("issue").0.as_bytes(),
    );
    out.put(
        t,
        "local_expired.bin",
        local.issue(&who, now - 3600).expect("issue").0.as_bytes(),
    );
    let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(
        fixture("crates/iam/testdata/rsa_a.pem").as_slice(),
    )
    .expect("rsa key");
    let claims = |iss: &str| {
        serde_json::json!({
            "iss": iss, "aud": "vantage", "sub": "f81d4fae", "preferred_username": "k.saeed",
            "nbf": now, "exp": now + 300, "role": "viewer", "agency": ["BUS"],
            "permissions": "camera:POLICE:view camera:POLICE:export camera:*:view"
        })
    };
    let rs = |kid: Option<&str>, iss: &str| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, &claims(iss), &rsa).expect("sign")
    };
    let pem_token = rs(None, "https://idp.fuzz/pem");
    out.put(t, "rs256_pem.bin", pem_token.as_bytes());
    let payload = pem_token.split('.').nth(1).expect("claims");
    out.put(
        t,
        "alg_none.bin",
        format!("eyJhbGciOiJub25lIn0.{payload}.").as_bytes(),
    );
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa, jsonwebtoken::Algorithm::RS256)
        .expect("jwk");
    jwk.common.key_id = Some("k1".into());
    let set = jsonwebtoken::jwk::JwkSet { keys: vec![jwk] };
    let mut v = rs(Some("k1"), "https://idp.fuzz/jwks").into_bytes();
    v.push(0);
    v.extend(serde_json::to_vec(&set).expect("jwks"));
    out.put(t, "rs256_jwks.bin", &v);

    println!("{:>6}  bytes in all", out.total);
}
