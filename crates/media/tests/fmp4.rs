//! `media::fmp4` on the fixture clips: box structure, timeline, sync flags, a stable digest, and
//! (with `VANTAGE_E2E=1` and ffprobe installed) playability.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use media::fmp4::{
    NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, Sample, SegmentStart, fragment, init_segment,
    init_segment_at, prft,
};
use media::{AccessUnit, Codec, VideoParams, split_access_units};

const H264: &[u8] = include_bytes!("../../../fixtures/clips/h264_a.h264");
const H265: &[u8] = include_bytes!("../../../fixtures/clips/h265_a.h265");
/// 25 fps on the 90 kHz clock.
const FRAME_TICKS: u32 = 3600;

/// (type, payload) of every box in `buf`; asserts that the sizes add up exactly.
fn boxes(buf: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        assert!(buf.len() - pos >= 8, "truncated box header at {pos}");
        let size = u32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && pos + size <= buf.len(),
            "bad box size {size} at {pos}"
        );
        out.push((
            buf[pos + 4..pos + 8].try_into().unwrap(),
            &buf[pos + 8..pos + size],
        ));
        pos += size;
    }
    assert_eq!(pos, buf.len());
    out
}

/// The payload of the only box of type `t` in `buf`.
fn child<'a>(buf: &'a [u8], t: &[u8; 4]) -> &'a [u8] {
    let found: Vec<&[u8]> = boxes(buf)
        .into_iter()
        .filter(|(bt, _)| bt == t)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(t));
    found[0]
}

/// Follows a path of container boxes.
fn path<'a>(buf: &'a [u8], p: &[&[u8; 4]]) -> &'a [u8] {
    p.iter().fold(buf, |b, t| child(b, t))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn clip(codec: Codec) -> (VideoParams, Vec<AccessUnit>) {
    let data = match codec {
        Codec::H264 => H264,
        Codec::H265 => H265,
    };
    let aus = split_access_units(codec, data);
    let params = VideoParams::from_key_access_unit(codec, &aus[0].data, 0).unwrap();
    (params, aus)
}

/// The access units grouped into GOPs (each starting at a key frame).
fn gops(aus: &[AccessUnit]) -> Vec<&[AccessUnit]> {
    let mut starts: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
    assert_eq!(starts[0], 0);
    starts.push(aus.len());
    starts.windows(2).map(|w| &aus[w[0]..w[1]]).collect()
}

/// One recording: the fragments (one per GOP) of the clip, starting at `base` with sequence
/// numbers from `seq`.
fn fragments(aus: &[AccessUnit], seq: u32, base: u64) -> Vec<Vec<u8>> {
    let mut t = base;
    gops(aus)
        .into_iter()
        .enumerate()
        .map(|(i, gop)| {
            let samples: Vec<Sample> = gop
                .iter()
                .map(|au| Sample {
                    data: &au.data,
                    duration: FRAME_TICKS,
                    is_key: au.is_key,
                })
                .collect();
            let f = fragment(seq + i as u32, t, &samples).unwrap();
            t += u64::from(FRAME_TICKS) * gop.len() as u64;
            f
        })
        .collect()
}

fn check_init(codec: Codec) -> Vec<u8> {
    let (params, _) = clip(codec);
    let init = init_segment(&params).unwrap();
    let top = boxes(&init);
    assert_eq!(
        top.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [*b"ftyp", *b"moov"]
    );
    let ftyp = top[0].1;
    assert_eq!(&ftyp[..4], b"isom");
    assert_eq!(&ftyp[8..], b"isomiso6mp41");
    let moov = top[1].1;
    assert_eq!(u32_at(child(moov, b"mvhd"), 4 + 8), 90_000);
    let tkhd = path(moov, &[b"trak", b"tkhd"]);
    assert_eq!(u32_at(tkhd, 4 + 8), 1, "track id");
    assert_eq!(u32_at(tkhd, tkhd.len() - 8), 640 << 16);
    assert_eq!(u32_at(tkhd, tkhd.len() - 4), 360 << 16);
    let mdia = path(moov, &[b"trak", b"mdia"]);
    assert_eq!(u32_at(child(mdia, b"mdhd"), 4 + 8), 90_000);
    assert_eq!(&child(mdia, b"hdlr")[8..12], b"vide");
    let stbl = path(mdia, &[b"minf", b"stbl"]);
    for t in [b"stts", b"stsc", b"stco"] {
        assert_eq!(u32_at(child(stbl, t), 4), 0, "empty {t:?}");
    }
    assert_eq!(&child(stbl, b"stsz")[4..], &[0; 8]);
    let stsd = child(stbl, b"stsd");
    assert_eq!(u32_at(stsd, 4), 1);
    let entries = boxes(&stsd[8..]);
    assert_eq!(entries.len(), 1);
    let (fourcc, entry) = entries[0];
    // The visual sample entry's fixed part is 78 bytes; then its boxes.
    assert_eq!(&entry[24..28], &[0x02, 0x80, 0x01, 0x68], "640x360");
    let config = boxes(&entry[78..]);
    assert_eq!(config.len(), 1);
    match codec {
        Codec::H264 => {
            assert_eq!(&fourcc, b"avc1");
            assert_eq!(&config[0].0, b"avcC");
            let c = config[0].1;
            assert_eq!(&c[..6], &[1, 0x64, 0x00, 0x1e, 0xff, 0xe1]);
            let sps_len = u16::from_be_bytes([c[6], c[7]]) as usize;
            assert_eq!(&c[8..8 + sps_len], &params.sps[..]);
            let p = 8 + sps_len;
            assert_eq!(c[p], 1);
            let pps_len = u16::from_be_bytes([c[p + 1], c[p + 2]]) as usize;
            assert_eq!(&c[p + 3..p + 3 + pps_len], &params.pps[..]);
            // High profile: 4:2:0, 8-bit, no SPS extensions.
            assert_eq!(&c[p + 3 + pps_len..], &[0xfd, 0xf8, 0xf8, 0]);
        }
        Codec::H265 => {
            assert_eq!(&fourcc, b"hvc1");
            assert_eq!(&config[0].0, b"hvcC");
            let c = config[0].1;
            // hvc1.1.6.L63.90: Main, compatibility 0x60000000, constraints 0x90, level 63.
            assert_eq!(c[0], 1);
            assert_eq!(c[1], 0x01);
            assert_eq!(u32_at(c, 2), 0x6000_0000);
            assert_eq!(&c[6..12], &[0x90, 0, 0, 0, 0, 0]);
            assert_eq!(c[12], 63);
            assert_eq!(&c[13..15], &[0xf0, 0x00]);
            assert_eq!(&c[15..18], &[0xfc, 0xfd, 0xf8], "4:2:0");
            assert_eq!(c[18], 0xf8, "8-bit chroma");
            assert_eq!(c[21] & 3, 3, "lengthSizeMinusOne");
            assert_eq!(c[22], 3, "arrays");
            let mut p = 23;
            let sets = [
                (32, params.vps.as_ref().unwrap()),
                (33, &params.sps),
                (34, &params.pps),
            ];
            for (t, nal) in sets {
                assert_eq!(c[p], 0x80 | t);
                assert_eq!(u16::from_be_bytes([c[p + 1], c[p + 2]]), 1);
                let len = u16::from_be_bytes([c[p + 3], c[p + 4]]) as usize;
                assert_eq!(&c[p + 5..p + 5 + len], &nal[..]);
                p += 5 + len;
            }
            assert_eq!(p, c.len());
        }
    }
    let trex = path(moov, &[b"mvex", b"trex"]);
    assert_eq!((u32_at(trex, 4), u32_at(trex, 8)), (1, 1));
    init
}

fn check_fragments(codec: Codec) -> Vec<Vec<u8>> {
    let (_, aus) = clip(codec);
    let frags = fragments(&aus, 1, 0);
    let gops = gops(&aus);
    assert_eq!(frags.len(), 5);
    for (i, (f, gop)) in frags.iter().zip(&gops).enumerate() {
        let top = boxes(f);
        assert_eq!(
            top.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [*b"moof", *b"mdat"]
        );
        let (moof, mdat) = (top[0].1, top[1].1);
        assert_eq!(u32_at(child(moof, b"mfhd"), 4), i as u32 + 1);
        let traf = child(moof, b"traf");
        let tfhd = child(traf, b"tfhd");
        assert_eq!(u32_at(tfhd, 0), 0x02_0000, "default-base-is-moof");
        assert_eq!(u32_at(tfhd, 4), 1);
        let tfdt = child(traf, b"tfdt");
        assert_eq!(tfdt[0], 1, "tfdt version 1");
        let base = u64::from_be_bytes(tfdt[4..12].try_into().unwrap());
        assert_eq!(base, (i * 50) as u64 * u64::from(FRAME_TICKS));
        let trun = child(traf, b"trun");
        assert_eq!(u32_at(trun, 0), 0x701);
        let n = u32_at(trun, 4) as usize;
        assert_eq!(n, gop.len());
        assert_eq!(n, 50);
        assert_eq!(u32_at(trun, 8) as usize, moof.len() + 8 + 8, "data offset");
        let mut total = 0;
        for (j, au) in gop.iter().enumerate() {
            let e = 12 + 12 * j;
            assert_eq!(u32_at(trun, e), FRAME_TICKS);
            let size = u32_at(trun, e + 4) as usize;
            // 4-byte start codes become 4-byte lengths: same size.
            assert_eq!(size, au.data.len());
            assert_eq!(
                u32_at(trun, e + 8),
                if au.is_key {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                }
            );
            assert_eq!(au.is_key, j == 0);
            // Walk the length prefixes of this sample.
            let sample = &mdat[total..total + size];
            let mut p = 0;
            while p < sample.len() {
                let len = u32_at(sample, p) as usize;
                assert!(len > 0);
                p += 4 + len;
            }
            assert_eq!(p, sample.len());
            total += size;
        }
        assert_eq!(total, mdat.len());
    }
    frags
}

#[test]
fn h264_init_segment_structure() {
    check_init(Codec::H264);
}

#[test]
fn h265_init_segment_structure() {
    check_init(Codec::H265);
}

#[test]
fn h264_fragments_per_gop() {
    check_fragments(Codec::H264);
}

#[test]
fn h265_fragments_per_gop() {
    check_fragments(Codec::H265);
}

#[test]
fn output_is_deterministic() {
    for codec in [Codec::H264, Codec::H265] {
        let mut a = check_init(codec);
        a.extend(check_fragments(codec).concat());
        let mut b = check_init(codec);
        b.extend(check_fragments(codec).concat());
        assert_eq!(fnv1a(&a), fnv1a(&b));
    }
}

/// FNV-1a digests of the complete recordings (init + five fragments) of the committed fixture
/// clips. Update them deliberately when the box layout changes or the fixtures are regenerated.
#[test]
fn recording_digests_are_stable() {
    for (codec, want) in [(Codec::H264, H264_FNV), (Codec::H265, H265_FNV)] {
        let mut file = check_init(codec);
        file.extend(check_fragments(codec).concat());
        assert_eq!(format!("{:016x}", fnv1a(&file)), want, "{codec}");
    }
}

const H264_FNV: &str = "58e396f4cb3973ad";
const H265_FNV: &str = "56866a9c8cab89c1";

/// A recorder's start: 2026-12-01T00:00:00Z on the 90 kHz Unix-epoch timeline.
const WALL_SECS: i64 = 1_796_083_200;
const WALL_90K: u64 = WALL_SECS as u64 * 90_000;

/// The init segment of a file recorded from `WALL_90K` on whose first fragment is decoded at
/// `first` (0 as the recorder writes it; more when the file's first GOP was lost).
fn recorded_init(codec: Codec, first: u64) -> Vec<u8> {
    let (params, _) = clip(codec);
    init_segment_at(
        &params,
        None,
        SegmentStart {
            decode_time_90k: first,
            unix_secs: WALL_SECS,
        },
    )
    .unwrap()
}

/// A file as the recorder writes it, starting at wall-clock `wall_90k`: the init segment with
/// creation times, then one fragment per GOP whose `tfdt`s start at 0, each after a `prft` with
/// its wall-clock time.
fn recorded(codec: Codec, wall_90k: u64) -> Vec<u8> {
    let (_, aus) = clip(codec);
    let mut file = recorded_init(codec, 0);
    let mut t = 0u64;
    for f in fragments(&aus, 1, 0) {
        file.extend_from_slice(&prft((wall_90k + t) as i64, t));
        // The fragment's tfdt is `t`.
        let tfdt = f.windows(4).position(|w| w == b"tfdt").unwrap() + 8;
        assert_eq!(&f[tfdt..tfdt + 8], &t.to_be_bytes());
        let samples = u32_at(&f, f.windows(4).position(|w| w == b"trun").unwrap() + 8);
        t += u64::from(FRAME_TICKS) * u64::from(samples);
        file.extend(f);
    }
    file
}

#[test]
fn recorded_init_segment_has_creation_times_and_an_edit_list_only_when_needed() {
    let created = (WALL_SECS as u64 + 2_082_844_800).to_be_bytes(); // Seconds since 1904.
    for codec in [Codec::H264, Codec::H265] {
        let plain = check_init(codec);
        let init = recorded_init(codec, 0);
        let moov = boxes(&init)[1].1;
        let mvhd = child(moov, b"mvhd");
        assert_eq!(mvhd[0], 1, "mvhd version 1");
        assert_eq!(&mvhd[4..12], &created, "seconds since 1904");
        assert_eq!(&mvhd[4..12], &mvhd[12..20], "modification = creation");
        assert_eq!(u32_at(mvhd, 20), 90_000, "timescale");
        assert_eq!(&mvhd[24..32], &[0; 8], "duration unknown");
        assert_eq!(mvhd.len(), 112);
        let trak = child(moov, b"trak");
        let kids: Vec<[u8; 4]> = boxes(trak).iter().map(|(t, _)| *t).collect();
        assert_eq!(kids, [*b"tkhd", *b"mdia"], "media from 0: no edit list");
        let tkhd = child(trak, b"tkhd");
        assert_eq!(tkhd[0], 1, "tkhd version 1");
        assert_eq!((&tkhd[4..12], &tkhd[12..20]), (&created[..], &created[..]));
        let mdhd = path(trak, &[b"mdia", b"mdhd"]);
        assert_eq!(mdhd[0], 1, "mdhd version 1");
        assert_eq!((&mdhd[4..12], &mdhd[12..20]), (&created[..], &created[..]));
        assert_eq!(u32_at(mdhd, 20), 90_000, "timescale");
        // Everything else is the plain init segment's.
        let plain_moov = boxes(&plain)[1].1;
        assert_eq!(child(moov, b"mvex"), child(plain_moov, b"mvex"));
        let (mdia, plain_mdia) = (child(trak, b"mdia"), path(plain_moov, &[b"trak", b"mdia"]));
        for b in [b"hdlr", b"minf"] {
            assert_eq!(child(mdia, b), child(plain_mdia, b));
        }

        // The first GOP was lost: the file's media starts 2 s in, and an edit list presents it
        // from 0.
        let init = recorded_init(codec, 180_000);
        let trak = child(boxes(&init)[1].1, b"trak");
        let kids: Vec<[u8; 4]> = boxes(trak).iter().map(|(t, _)| *t).collect();
        assert_eq!(kids, [*b"tkhd", *b"edts", *b"mdia"]);
        let elst = path(trak, &[b"edts", b"elst"]);
        assert_eq!(u32_at(elst, 0), 1 << 24, "version 1");
        assert_eq!(u32_at(elst, 4), 1, "one edit");
        assert_eq!(&elst[8..16], &[0; 8], "segment_duration: the whole file");
        assert_eq!(
            u64::from_be_bytes(elst[16..24].try_into().unwrap()),
            180_000,
            "media_time = the first tfdt"
        );
        assert_eq!(u32_at(elst, 24), 0x0001_0000, "rate 1.0");
        assert_eq!(elst.len(), 28);
    }
}

/// FNV-1a digests of recordings as the recorder writes them (init with creation times, five
/// fragments from 0, each after its `prft`). Update them deliberately when the layout changes.
#[test]
fn recorded_file_digests_are_stable() {
    for (codec, want) in [
        (Codec::H264, H264_RECORDED_FNV),
        (Codec::H265, H265_RECORDED_FNV),
    ] {
        let file = recorded(codec, WALL_90K);
        assert_eq!(format!("{:016x}", fnv1a(&file)), want, "{codec}");
    }
}

const H264_RECORDED_FNV: &str = "452706d624357f41";
const H265_RECORDED_FNV: &str = "187d7c6cb9f44c6b";

fn e2e() -> bool {
    std::env::var("VANTAGE_E2E").is_ok_and(|v| v == "1")
}

/// Runs ffprobe on `bytes` written to a temp file; returns its JSON output.
fn ffprobe(name: &str, bytes: &[u8]) -> String {
    ffprobe_with(name, bytes, &[])
}

/// ffprobe with extra arguments (`-show_format`, say).
fn ffprobe_with(name: &str, bytes: &[u8], extra: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("vantage-fmp4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-count_frames",
            "-of",
            "json",
        ])
        .args(extra)
        .arg(&file)
        .output()
        .expect("ffprobe installed");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
    std::fs::remove_file(&file).unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `"key": value` in ffprobe's JSON (first occurrence), without quotes.
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": ");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing: {json}"))
        + pat.len();
    let rest = &json[at..];
    let end = rest.find([',', '\n']).unwrap();
    rest[..end].trim_matches('"')
}

fn check_ffprobe(json: &str, codec: Codec, frames: usize) {
    let name = match codec {
        Codec::H264 => "h264",
        Codec::H265 => "hevc",
    };
    assert_eq!(json_field(json, "codec_name"), name, "{json}");
    assert_eq!(json_field(json, "width"), "640");
    assert_eq!(json_field(json, "height"), "360");
    assert_eq!(json_field(json, "nb_read_frames"), frames.to_string());
}

#[test]
fn ffprobe_plays_recordings() {
    if !e2e() {
        return;
    }
    for codec in [Codec::H264, Codec::H265] {
        let mut file = check_init(codec);
        file.extend(check_fragments(codec).concat());
        check_ffprobe(&ffprobe(&format!("{codec:?}.mp4"), &file), codec, 250);
    }
}

#[test]
fn ffprobe_counts_concatenated_segments() {
    if !e2e() {
        return;
    }
    for codec in [Codec::H264, Codec::H265] {
        let (_, aus) = clip(codec);
        // Two consecutive 10 s segments on one timeline: the second continues sequence numbers
        // and decode times where the first ended.
        let first = fragments(&aus, 1, 0);
        let second = fragments(&aus, 6, 250 * u64::from(FRAME_TICKS));
        let mut file = check_init(codec);
        file.extend(first.concat());
        file.extend(second.concat());
        let json = ffprobe(&format!("{codec:?}-concat.mp4"), &file);
        check_ffprobe(&json, codec, 500);
        assert_eq!(json_field(&json, "duration"), "20.000000", "{json}");
    }
}

/// A recorded file (fragments from 0, `prft`s with the wall-clock time) plays on its own: ffprobe
/// reports start 0 and the file's length as its duration, and its packets present from 0 to that
/// length. Two consecutive files play in sequence as a user would play them, through ffmpeg's
/// concat demuxer, every frame of both decoded in order.
#[test]
fn ffprobe_recorded_files_start_at_zero_and_last_their_length() {
    if !e2e() {
        return;
    }
    for codec in [Codec::H264, Codec::H265] {
        let file = recorded(codec, WALL_90K);
        let json = ffprobe_with(
            &format!("{codec:?}-recorded.mp4"),
            &file,
            &[
                "-show_format",
                "-show_entries",
                "packet=pts_time,duration_time",
            ],
        );
        check_ffprobe(&json, codec, 250);
        let (first, end) = packet_span(&json);
        assert_eq!((first, end), (0.0, 10.0), "{codec}");
        assert_eq!(json_field(&json, "start_time"), "0.000000", "{json}");
        let format = &json[json.find("\"format\"").unwrap()..];
        assert_eq!(json_field(format, "start_time"), "0.000000", "{json}");
        assert_eq!(json_field(format, "duration"), "10.000000", "{json}");

        // Two consecutive 10 s files, through the concat demuxer.
        let dir = std::env::temp_dir().join(format!(
            "vantage-fmp4-concat-{codec:?}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.mp4"), &file).unwrap();
        std::fs::write(dir.join("b.mp4"), recorded(codec, WALL_90K + 900_000)).unwrap();
        std::fs::write(dir.join("list.txt"), "file 'a.mp4'\nfile 'b.mp4'\n").unwrap();
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "concat", "-safe", "0", "-i"])
            .arg(dir.join("list.txt"))
            .args(["-f", "framemd5", "-"])
            .output()
            .expect("ffmpeg installed");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
        // framemd5: one line per decoded frame, `stream, dts, pts, duration, size, md5`.
        let pts: Vec<i64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(',').nth(2).unwrap().trim().parse().unwrap())
            .collect();
        assert_eq!(pts.len(), 500, "{codec}: every frame of both files");
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "{codec}: in order");
    }
}

/// The first packet's presentation time and the end of the last (pts + duration), seconds, from
/// ffprobe's JSON with `-show_entries packet=pts_time,duration_time`.
fn packet_span(json: &str) -> (f64, f64) {
    let num = |key: &str, from: &str| -> Vec<f64> {
        let pat = format!("\"{key}\": \"");
        from.match_indices(&pat)
            .map(|(at, _)| {
                let rest = &from[at + pat.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    };
    let packets = &json[json.find("\"packets\"").unwrap()..json.find("\"streams\"").unwrap()];
    let pts = num("pts_time", packets);
    let dur = num("duration_time", packets);
    assert_eq!(pts.len(), dur.len());
    let first = pts.iter().copied().fold(f64::MAX, f64::min);
    let end = pts
        .iter()
        .zip(&dur)
        .map(|(p, d)| p + d)
        .fold(f64::MIN, f64::max);
    ((first * 1e6).round() / 1e6, (end * 1e6).round() / 1e6)
}
