//! `media::mp4` on segment files written by `media::fmp4` from the fixture clips: the readers
//! against what the writer wrote, virtual MP4s materialized and parsed back, MSE fragments, and
//! (with `VANTAGE_E2E=1` and ffmpeg installed) what ffprobe and ffmpeg make of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use media::fmp4::{AudioSample, Sample, SegmentStart, fragment_av, init_segment_at, prft};
use media::mp4::{
    Builder, FragmentSamples, InitInfo, Metadata, Piece, SampleInfo, Slice, TrackFragment,
    VirtualMp4, mse_init, read_fragment, read_init, remux_moof,
};
use media::nal::annexb_nals;
use media::{AudioCodec, AudioParams, Codec, VideoParams, split_access_units};

const H264_A: &[u8] = include_bytes!("../../../fixtures/clips/h264_a.h264");
const H264_B: &[u8] = include_bytes!("../../../fixtures/clips/h264_b.h264");
const H265_A: &[u8] = include_bytes!("../../../fixtures/clips/h265_a.h265");
const AAC: &[u8] = include_bytes!("../../../fixtures/clips/aac_16k_mono.adts");
const RATE: u32 = 16_000;
/// The audio of every fragment starts this many samples after its video (6.25 ms).
const AUDIO_LAG: u64 = 100;
const WALL_SECS: i64 = 1_796_083_200;

/// Raw AAC frames and the AudioSpecificConfig of the ADTS fixture.
fn aac() -> (Vec<&'static [u8]>, AudioParams) {
    let mut frames = Vec::new();
    let mut config = [0; 2];
    let mut p = 0;
    while p + 7 <= AAC.len() {
        let h = &AAC[p..p + 7];
        assert_eq!(h[0], 0xff);
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        let freq = (h[2] >> 2) & 0xf;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        frames.push(&AAC[p + header..p + len]);
        config = [
            ((h[2] >> 6) + 1) << 3 | (freq >> 1),
            ((freq & 1) << 7) | (channels << 3),
        ];
        p += len;
    }
    let params = AudioParams {
        codec: AudioCodec::Aac,
        sample_rate: RATE,
        channels: 1,
        rfc6381: "mp4a.40.2".to_owned(),
        config: bytes::Bytes::copy_from_slice(&config),
    };
    (frames, params)
}

/// A segment file as the recorder writes it, and what went into it.
struct File {
    bytes: Vec<u8>,
    init_len: usize,
    /// (offset, length) of each `moof`.
    moofs: Vec<(usize, usize)>,
    /// Per fragment: each video sample as written (length-prefixed NAL units) and each audio
    /// frame.
    video: Vec<Vec<Vec<u8>>>,
    audio: Vec<Vec<Vec<u8>>>,
    /// Each fragment's video tfdt.
    tfdts: Vec<u64>,
}

impl File {
    fn init(&self) -> InitInfo {
        read_init(&self.bytes[..self.init_len]).unwrap()
    }

    fn moof(&self, i: usize) -> &[u8] {
        let (o, l) = self.moofs[i];
        &self.bytes[o..o + l]
    }

    fn fragment(&self, i: usize) -> FragmentSamples {
        read_fragment(self.moof(i), self.moofs[i].0 as u64).unwrap()
    }
}

/// A recorded segment of `gops` whole GOPs of `clip` (25 fps) from decode time `first_tfdt`,
/// with AAC audio (starting [`AUDIO_LAG`] samples after the video) when `audio`.
fn recorded(codec: Codec, clip: &[u8], gops: usize, audio: bool, first_tfdt: u64) -> File {
    let aus = split_access_units(codec, clip);
    let params = VideoParams::from_key_access_unit(codec, &aus[0].data, 0).unwrap();
    let (frames, ap) = aac();
    let start = SegmentStart {
        decode_time_90k: first_tfdt,
        unix_secs: WALL_SECS,
    };
    let mut bytes = init_segment_at(&params, audio.then_some(&ap), start).unwrap();
    let init_len = bytes.len();
    let mut keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
    keys.push(aus.len());
    let mut file = File {
        bytes: Vec::new(),
        init_len,
        moofs: Vec::new(),
        video: Vec::new(),
        audio: Vec::new(),
        tfdts: Vec::new(),
    };
    let mut t = first_tfdt;
    let audio_base = (first_tfdt * u64::from(RATE)).div_ceil(90_000) + AUDIO_LAG;
    let mut next_frame = 0u64;
    for (g, w) in keys.windows(2).take(gops).enumerate() {
        let video: Vec<Sample> = aus[w[0]..w[1]]
            .iter()
            .map(|au| Sample {
                data: &au.data,
                duration: 3600,
                is_key: au.is_key,
            })
            .collect();
        let video_end = t + 3600 * video.len() as u64;
        let base = audio_base + next_frame * 1024;
        let mut a = Vec::new();
        while audio && (audio_base + next_frame * 1024) * 90_000 < video_end * u64::from(RATE) {
            a.push(AudioSample {
                data: frames[next_frame as usize % frames.len()],
                duration: 1024,
            });
            next_frame += 1;
        }
        let frag = fragment_av(g as u32 + 1, t, &video, Some((base, &a))).unwrap();
        let wall = WALL_SECS * 90_000 + (t - first_tfdt) as i64;
        bytes.extend_from_slice(&prft(wall, t));
        let moof_len = u32::from_be_bytes(frag[..4].try_into().unwrap()) as usize;
        file.moofs.push((bytes.len(), moof_len));
        bytes.extend_from_slice(&frag);
        file.video.push(
            video
                .iter()
                .map(|s| {
                    let mut v = Vec::new();
                    for nal in annexb_nals(s.data) {
                        v.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                        v.extend_from_slice(nal);
                    }
                    v
                })
                .collect(),
        );
        file.audio.push(a.iter().map(|s| s.data.to_vec()).collect());
        file.tfdts.push(t);
        t = video_end;
    }
    file.bytes = bytes;
    file
}

fn materialize(v: &VirtualMp4, files: &[&[u8]]) -> Vec<u8> {
    read_range(v, files, 0..v.len)
}

fn read_range(v: &VirtualMp4, files: &[&[u8]], range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in v.slices(range) {
        match s {
            Slice::Header(h) => out.extend_from_slice(h),
            Slice::File {
                source,
                offset,
                len,
            } => out.extend_from_slice(
                &files[source as usize][offset as usize..(offset + len) as usize],
            ),
        }
    }
    out
}

// --- A minimal MP4 reader for checking the output (asserting on structure). ---

fn boxes(buf: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let size32 = u32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap()) as u64;
        let (header, size) = if size32 == 1 {
            (
                16,
                u64::from_be_bytes(buf[pos + 8..pos + 16].try_into().unwrap()),
            )
        } else {
            (8, size32)
        };
        let size = size as usize;
        assert!(
            size >= header && pos + size <= buf.len(),
            "bad box at {pos}"
        );
        out.push((
            buf[pos + 4..pos + 8].try_into().unwrap(),
            &buf[pos + header..pos + size],
        ));
        pos += size;
    }
    out
}

fn all<'a>(buf: &'a [u8], t: &[u8; 4]) -> Vec<&'a [u8]> {
    boxes(buf)
        .into_iter()
        .filter(|(bt, _)| bt == t)
        .map(|(_, b)| b)
        .collect()
}

fn child<'a>(buf: &'a [u8], t: &[u8; 4]) -> &'a [u8] {
    let found = all(buf, t);
    assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(t));
    found[0]
}

fn has(buf: &[u8], t: &[u8; 4]) -> bool {
    !all(buf, t).is_empty()
}

fn path<'a>(buf: &'a [u8], p: &[&[u8; 4]]) -> &'a [u8] {
    p.iter().fold(buf, |b, t| child(b, t))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// A track of the output, its tables expanded.
#[derive(Debug)]
struct Track {
    timescale: u32,
    entries: u32,
    durations: Vec<u32>,
    /// (offset, size, stsd index) of each sample.
    samples: Vec<(u64, u32, u32)>,
    sync: Option<Vec<u32>>,
    co64: bool,
    /// (segment_duration, media_time) of each edit.
    edits: Vec<(u64, i64)>,
    tkhd_duration: u64,
    mdhd_duration: u64,
}

fn entries(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let n = u32_at(b, 4) as usize;
    let rest = &b[8..];
    let w = (rest.len() / n.max(1)).max(1);
    rest.chunks(w).take(n)
}

fn parse_track(trak: &[u8]) -> Track {
    let tkhd = child(trak, b"tkhd");
    let tkhd_duration = if tkhd[0] == 1 {
        u64_at(tkhd, 28)
    } else {
        u64::from(u32_at(tkhd, 20))
    };
    let elst = path(trak, &[b"edts", b"elst"]);
    let edits = entries(elst)
        .map(|e| {
            if elst[0] == 1 {
                (u64_at(e, 0), u64_at(e, 8) as i64)
            } else {
                (u64::from(u32_at(e, 0)), i64::from(u32_at(e, 4) as i32))
            }
        })
        .collect();
    let mdia = child(trak, b"mdia");
    let mdhd = child(mdia, b"mdhd");
    let (timescale, mdhd_duration) = if mdhd[0] == 1 {
        (u32_at(mdhd, 20), u64_at(mdhd, 24))
    } else {
        (u32_at(mdhd, 12), u64::from(u32_at(mdhd, 16)))
    };
    let stbl = path(mdia, &[b"minf", b"stbl"]);
    let stsd = child(stbl, b"stsd");
    let mut durations = Vec::new();
    for e in entries(child(stbl, b"stts")) {
        for _ in 0..u32_at(e, 0) {
            durations.push(u32_at(e, 4));
        }
    }
    let stsz = child(stbl, b"stsz");
    assert_eq!(u32_at(stsz, 4), 0, "sizes per sample");
    let sizes: Vec<u32> = (0..u32_at(stsz, 8) as usize)
        .map(|i| u32_at(stsz, 12 + 4 * i))
        .collect();
    let co64 = has(stbl, b"co64");
    let chunks: Vec<u64> = if co64 {
        assert!(!has(stbl, b"stco"));
        entries(child(stbl, b"co64"))
            .map(|e| u64_at(e, 0))
            .collect()
    } else {
        entries(child(stbl, b"stco"))
            .map(|e| u64::from(u32_at(e, 0)))
            .collect()
    };
    let stsc: Vec<(u32, u32, u32)> = entries(child(stbl, b"stsc"))
        .map(|e| (u32_at(e, 0), u32_at(e, 4), u32_at(e, 8)))
        .collect();
    let mut samples = Vec::new();
    let mut s = 0;
    for (c, &off) in chunks.iter().enumerate() {
        let chunk = c as u32 + 1;
        let &(_, per, entry) = stsc.iter().rev().find(|e| e.0 <= chunk).unwrap();
        let mut pos = off;
        for _ in 0..per {
            samples.push((pos, sizes[s], entry));
            pos += u64::from(sizes[s]);
            s += 1;
        }
    }
    assert_eq!(s, sizes.len(), "stsc covers every sample");
    assert_eq!(durations.len(), sizes.len(), "stts covers every sample");
    let sync = has(stbl, b"stss").then(|| {
        let stss = child(stbl, b"stss");
        (0..u32_at(stss, 4) as usize)
            .map(|i| u32_at(stss, 8 + 4 * i))
            .collect()
    });
    Track {
        timescale,
        entries: u32_at(stsd, 4),
        durations,
        samples,
        sync,
        co64,
        edits,
        tkhd_duration,
        mdhd_duration,
    }
}

/// The moov and the tracks of a materialized file; checks the top-level layout.
fn parse_mp4(mp4: &[u8]) -> (Vec<u8>, Vec<Track>) {
    let top = boxes(mp4);
    let kinds: Vec<[u8; 4]> = top.iter().map(|(t, _)| *t).collect();
    assert_eq!(kinds, [*b"ftyp", *b"moov", *b"mdat"]);
    let moov = top[1].1;
    let tracks = all(moov, b"trak").into_iter().map(parse_track).collect();
    (moov.to_vec(), tracks)
}

fn sample_bytes<'a>(mp4: &'a [u8], s: &(u64, u32, u32)) -> &'a [u8] {
    &mp4[s.0 as usize..(s.0 + u64::from(s.1)) as usize]
}

// --- Readers ---

#[test]
fn read_init_reads_the_writers_tracks() {
    let f = recorded(Codec::H264, H264_A, 1, true, 0);
    let info = f.init();
    let v = &info.video;
    assert_eq!((v.track_id, v.codec), (1, Codec::H264));
    assert_eq!((v.width, v.height, v.timescale), (640, 360, 90_000));
    assert_eq!(&v.sample_entry[4..8], b"avc1");
    assert_eq!(
        u32_at(&v.sample_entry, 0) as usize,
        v.sample_entry.len(),
        "the whole box"
    );
    assert!(v.sample_entry.windows(4).any(|w| w == b"avcC"));
    assert_eq!(v.edit_media_time, None);
    let a = info.audio.as_ref().unwrap();
    assert_eq!((a.track_id, a.sample_rate, a.channels), (2, RATE, 1));
    assert_eq!(&a.sample_entry[4..8], b"mp4a");
    assert_eq!(u32_at(&a.sample_entry, 0) as usize, a.sample_entry.len());
    assert_eq!(a.edit_media_time, None);
    // The entry is the one in the file, byte for byte.
    let at = f.bytes.windows(4).position(|w| w == b"avc1").unwrap() - 4;
    assert_eq!(&f.bytes[at..at + v.sample_entry.len()], &v.sample_entry[..]);

    // The "first GOP lost" file: edit lists on both tracks.
    let f = recorded(Codec::H265, H265_A, 1, true, 180_000);
    let info = f.init();
    assert_eq!(info.video.codec, Codec::H265);
    assert_eq!(&info.video.sample_entry[4..8], b"hvc1");
    assert_eq!(info.video.edit_media_time, Some(180_000));
    assert_eq!(info.audio.unwrap().edit_media_time, Some(32_000));
    // Video only.
    let f = recorded(Codec::H264, H264_A, 1, false, 0);
    assert!(f.init().audio.is_none());
    // A longer prefix of the file reads the same.
    assert_eq!(read_init(&f.bytes).unwrap(), f.init());
}

#[test]
fn read_init_refuses_damage_without_panicking() {
    let f = recorded(Codec::H264, H264_A, 1, true, 0);
    let init = &f.bytes[..f.init_len];
    for n in 0..init.len() {
        let e = read_init(&init[..n]).unwrap_err();
        assert_eq!(e.kind(), base::ErrorKind::DataLoss, "{n}: {e}");
    }
    // Every single-byte change either reads or fails; none panics.
    let mut ok = 0;
    for i in 0..init.len() {
        let mut b = init.to_vec();
        b[i] ^= 0xff;
        ok += usize::from(read_init(&b).is_ok());
    }
    assert!(ok > 0 && ok < init.len(), "{ok}");
    // An unknown video codec.
    let mut b = init.to_vec();
    let at = b.windows(4).position(|w| w == b"avc1").unwrap();
    b[at..at + 4].copy_from_slice(b"vp09");
    assert_eq!(
        read_init(&b).unwrap_err().kind(),
        base::ErrorKind::InvalidArgument
    );
}

#[test]
fn read_fragment_finds_every_sample_where_the_writer_put_it() {
    for (codec, clip) in [(Codec::H264, H264_A), (Codec::H265, H265_A)] {
        let f = recorded(codec, clip, 3, true, 0);
        for i in 0..3 {
            let fr = f.fragment(i);
            assert_eq!(fr.sequence, i as u32 + 1);
            assert_eq!(fr.video.track_id, 1);
            assert_eq!(fr.video.base_decode_time, f.tfdts[i]);
            assert_eq!(fr.video.samples.len(), f.video[i].len());
            for (j, (s, want)) in fr.video.samples.iter().zip(&f.video[i]).enumerate() {
                assert_eq!(s.size as usize, want.len());
                assert_eq!(
                    &f.bytes[s.offset as usize..s.offset as usize + want.len()],
                    &want[..]
                );
                assert_eq!(s.duration, 3600);
                assert_eq!(s.is_sync, j == 0);
            }
            let a = fr.audio.as_ref().unwrap();
            assert_eq!(a.track_id, 2);
            assert_eq!(a.samples.len(), f.audio[i].len());
            let first_audio: usize = f.audio[..i].iter().map(Vec::len).sum();
            assert_eq!(
                a.base_decode_time,
                AUDIO_LAG + 1024 * first_audio as u64,
                "audio tfdt"
            );
            for (s, want) in a.samples.iter().zip(&f.audio[i]) {
                assert_eq!(
                    &f.bytes[s.offset as usize..s.offset as usize + s.size as usize],
                    &want[..]
                );
                assert!(s.is_sync);
                assert_eq!(s.duration, 1024);
            }
            // The mdat payload is exactly the video samples then the audio samples.
            let (o, l) = f.moofs[i];
            let payload = (o + l + 8) as u64;
            assert_eq!(fr.video.byte_range().start, payload);
            assert_eq!(a.byte_range().start, fr.video.byte_range().end);
            let mdat_len = u32_at(&f.bytes, o + l) as u64;
            assert_eq!(fr.byte_range(), payload..payload + mdat_len - 8);
            assert_eq!(
                fr.video.duration(),
                3600 * f.video[i].len() as u64,
                "duration"
            );
        }
    }
}

#[test]
fn read_fragment_refuses_damage_without_panicking() {
    let f = recorded(Codec::H264, H264_A, 1, true, 0);
    let moof = f.moof(0);
    for n in 0..moof.len() {
        assert!(read_fragment(&moof[..n], 100).is_err(), "{n}");
    }
    let mut ok = 0;
    for i in 0..moof.len() {
        let mut b = moof.to_vec();
        b[i] ^= 0x80;
        ok += usize::from(read_fragment(&b, 100).is_ok());
    }
    assert!(ok > 0, "sizes and durations can change");
    // Not a moof; data before the end of the moof.
    assert!(read_fragment(f.init().video.sample_entry.as_slice(), 0).is_err());
    let mut b = moof.to_vec();
    let trun = b.windows(4).position(|w| w == b"trun").unwrap();
    b[trun + 12..trun + 16].copy_from_slice(&8u32.to_be_bytes()); // data_offset
    assert!(read_fragment(&b, 0).is_err());
}

/// A `moof` as other writers make them: `tfdt` version 0, sizes, durations and flags from `tfhd`
/// defaults, first-sample-flags for the key frame.
fn moof_with_defaults(seq: u32, tfdt: u32, count: u32, size: u32) -> Vec<u8> {
    let be = |v: u32| v.to_be_bytes();
    let mut tfhd = Vec::new();
    tfhd.extend(be(0x02_0038)); // default-base-is-moof, duration, size, flags
    tfhd.extend(be(1));
    tfhd.extend(be(3000));
    tfhd.extend(be(size));
    tfhd.extend(be(0x0101_0000)); // non-sync
    let mut trun = Vec::new();
    trun.extend(be(0x005)); // data offset, first sample flags
    trun.extend(be(count));
    trun.extend(be(0)); // patched
    trun.extend(be(0x0200_0000));
    let boxed = |t: &[u8; 4], body: &[u8]| {
        let mut b = be(body.len() as u32 + 8).to_vec();
        b.extend_from_slice(t);
        b.extend_from_slice(body);
        b
    };
    let mut tfdt_body = be(0).to_vec();
    tfdt_body.extend(be(tfdt));
    let mut traf = boxed(b"tfhd", &tfhd);
    traf.extend(boxed(b"tfdt", &tfdt_body));
    let trun_at = traf.len();
    traf.extend(boxed(b"trun", &trun));
    let mut mfhd = be(0).to_vec();
    mfhd.extend(be(seq));
    let mut body = boxed(b"mfhd", &mfhd);
    let traf_at = body.len();
    body.extend(boxed(b"traf", &traf));
    let mut moof = boxed(b"moof", &body);
    let off = moof.len() as u32 + 8;
    let at = 8 + traf_at + 8 + trun_at + 8 + 8;
    moof[at..at + 4].copy_from_slice(&be(off));
    moof
}

#[test]
fn read_fragment_takes_tfhd_defaults() {
    let moof = moof_with_defaults(9, 45_000, 4, 100);
    let fr = read_fragment(&moof, 1000).unwrap();
    assert_eq!(fr.sequence, 9);
    assert!(fr.audio.is_none());
    assert_eq!(fr.video.base_decode_time, 45_000);
    let first = 1000 + moof.len() as u64 + 8;
    let want: Vec<SampleInfo> = (0..4)
        .map(|i| SampleInfo {
            offset: first + 100 * i,
            size: 100,
            duration: 3000,
            is_sync: i == 0,
        })
        .collect();
    assert_eq!(fr.video.samples, want);
    // A huge count with every field defaulted is refused, not allocated.
    let moof = moof_with_defaults(1, 0, u32::MAX, 1);
    assert!(read_fragment(&moof, 0).is_err());
}

// --- The virtual MP4 ---

/// Pushes fragments `frags` of `file` (numbered `source`), the last with `end`.
fn push_all(
    b: &mut Builder,
    file: &File,
    source: u32,
    frags: std::ops::Range<usize>,
    end: Option<u64>,
) -> Vec<i64> {
    let info = file.init();
    let last = frags.end - 1;
    frags
        .map(|i| {
            b.push(&info, source, &file.fragment(i), end.filter(|_| i == last))
                .unwrap()
        })
        .collect()
}

#[test]
fn virtual_mp4_round_trips_samples_edits_and_ranges() {
    // Two recordings (A/V); the second's timeline starts again at 0. Start 1.5 s into the first
    // (mid-GOP), go on across the second file ("gap removed") and end 1.02 s into its second
    // fragment.
    let f1 = recorded(Codec::H264, H264_A, 3, true, 0);
    let f2 = recorded(Codec::H264, H264_A, 2, true, 0);
    let start = 136_800; // Frame 38 of the first GOP.
    let meta = Metadata {
        created_unix_secs: WALL_SECS,
        title: Some("Front door".to_owned()),
        comment: Some("Vantage export".to_owned()),
    };
    let mut b = Builder::new(start, meta);
    let p1 = push_all(&mut b, &f1, 7, 0..3, None);
    let end = f2.tfdts[1] + 91_800;
    let p2 = push_all(&mut b, &f2, 3, 0..2, Some(end));
    let gop = 50 * 3600;
    assert_eq!(p1, [-136_800, gop - 136_800, 2 * gop - 136_800]);
    assert_eq!(
        p2,
        [3 * gop - 136_800, 4 * gop - 136_800],
        "where the gap was removed"
    );
    assert!(
        b.push(&f2.init(), 3, &f2.fragment(1), None).is_err(),
        "after the end"
    );
    let v = b.build().unwrap();

    let mut sources: Vec<&[u8]> = vec![&[]; 8];
    sources[7] = &f1.bytes;
    sources[3] = &f2.bytes;
    let mp4 = materialize(&v, &sources);
    assert_eq!(mp4.len() as u64, v.len);
    let mut direct = v.header.clone();
    for p in &v.pieces {
        direct
            .extend_from_slice(&sources[p.source as usize][p.offset as usize..][..p.len as usize]);
    }
    assert_eq!(direct, mp4);
    // One piece per fragment (its video and audio are adjacent), but the last fragment's cut
    // video and audio are two.
    assert_eq!(v.pieces.len(), 6);
    assert_eq!(v.pieces[0].source, 7);
    assert_eq!(v.pieces[4].source, 3);
    let last = f2.fragment(1);
    assert_eq!(v.pieces[4].offset, last.video.byte_range().start);
    assert_eq!(v.pieces[5].offset, last.audio.unwrap().byte_range().start);

    let (moov, tracks) = parse_mp4(&mp4);
    assert_eq!(tracks.len(), 2);
    let (video, audio) = (&tracks[0], &tracks[1]);
    // Video: whole GOPs, then the samples of the last fragment decoded before the end (26: the
    // 26th starts at 90_000 < 91_800, the 27th at 93_600).
    let frames = 3 * 50 + 50 + 26;
    assert_eq!(v.video_samples, frames as u64);
    assert_eq!(video.samples.len(), frames);
    assert_eq!(video.timescale, 90_000);
    assert_eq!(video.entries, 1);
    assert!(!video.co64);
    assert!(video.durations.iter().all(|&d| d == 3600));
    assert_eq!(video.mdhd_duration, 3600 * frames as u64);
    let want: Vec<&Vec<u8>> = f1
        .video
        .iter()
        .flatten()
        .chain(f2.video[0].iter())
        .chain(f2.video[1][..26].iter())
        .collect();
    for (s, w) in video.samples.iter().zip(&want) {
        assert_eq!(sample_bytes(&mp4, s), &w[..]);
    }
    assert_eq!(
        video.sync.as_deref(),
        Some(&[1, 51, 101, 151, 201][..]),
        "key frames"
    );
    // Presented from the start instant for the requested duration.
    let duration = (4 * gop + 91_800 - 136_800) as u64;
    assert_eq!(video.edits, [(duration, 136_800)]);
    assert_eq!(video.tkhd_duration, duration);
    assert_eq!(v.duration_90k, duration);
    assert_eq!(u32_at(child(&moov, b"mvhd"), 16), duration as u32);

    // Audio: every frame decoded before the end, in order, each at its place relative to its
    // fragment's video.
    assert_eq!(audio.timescale, RATE);
    assert_eq!(audio.sync, None, "all sync");
    let end_samples = (end * u64::from(RATE)).div_ceil(90_000);
    let last: Vec<&Vec<u8>> = f2.audio[1]
        .iter()
        .enumerate()
        .filter(|(j, _)| AUDIO_LAG + 1024 * ((f2.audio[0].len() + j) as u64) < end_samples)
        .map(|(_, a)| a)
        .collect();
    let want: Vec<&Vec<u8>> = f1
        .audio
        .iter()
        .flatten()
        .chain(f2.audio[0].iter())
        .chain(last)
        .collect();
    assert_eq!(audio.samples.len(), want.len());
    for (s, w) in audio.samples.iter().zip(&want) {
        assert_eq!(sample_bytes(&mp4, s), &w[..]);
    }
    // The second file's first audio frame starts AUDIO_LAG after its first video frame, which is
    // at 3 GOPs (6 s = 96000 samples) in the output: the last frame of the first file absorbs
    // the difference.
    let n1: usize = f1.audio.iter().map(Vec::len).sum();
    let at: u64 = audio.durations[..n1].iter().map(|&d| u64::from(d)).sum();
    assert_eq!(at, 96_000);
    // The audio edit starts at the same instant as the video's: 1.52 s = 24320 samples, less the
    // lag.
    assert_eq!(audio.edits.len(), 1);
    let (audio_duration, media_time) = audio.edits[0];
    assert_eq!(media_time, 24_320 - AUDIO_LAG as i64);
    assert!(audio_duration <= duration && audio_duration + 1024 * 90_000 / 16_000 >= duration);

    // Title and comment.
    let ilst = path(&moov, &[b"udta", b"meta"]);
    let ilst = child(&ilst[4..], b"ilst");
    assert_eq!(&child(child(ilst, b"\xa9nam"), b"data")[8..], b"Front door");
    assert_eq!(
        &child(child(ilst, b"\xa9cmt"), b"data")[8..],
        b"Vantage export"
    );

    // Any range reads the same bytes as the whole file's.
    let len = v.len;
    let h = v.header.len() as u64;
    let p0 = v.pieces[0].len;
    for r in [
        0..len,
        0..1,
        5..h,
        h - 3..h + 10,
        h..h + p0,
        h + p0 - 1..h + p0 + 1,
        len - 7..len,
        len..len,
        len - 1..len + 100,
        std::ops::Range {
            start: 200,
            end: 100,
        },
    ] {
        let want = if r.start < r.end.min(len) {
            &mp4[r.start as usize..r.end.min(len) as usize]
        } else {
            &[][..]
        };
        assert_eq!(read_range(&v, &sources, r.clone()), want, "{r:?}");
    }
    let n = v.slices(h - 3..h + p0 + 10).count();
    assert_eq!(n, 3, "header, first piece, second piece");

    // The ETag: stable, and different when the sources or bytes differ.
    let ids = |s: u32| u64::from(s) + 1000;
    let tag = v.etag(ids);
    assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() > 40);
    assert_eq!(tag, v.etag(ids));
    assert_ne!(tag, v.etag(|s| u64::from(s) + 1001));
    let mut b = Builder::new(start, Metadata::default());
    push_all(&mut b, &f1, 7, 0..3, None);
    push_all(&mut b, &f2, 3, 0..2, Some(end));
    assert_ne!(b.build().unwrap().etag(ids), tag, "another title");

    if e2e() {
        let out = probe(&mp4, "round_trip");
        let video = stream(&out, 0);
        assert_eq!(field(video, "codec_name"), "h264");
        assert_eq!(field(video, "start_time").parse::<f64>().unwrap(), 0.0);
        // Frames presented: from the start instant (frame 38) to the end.
        assert_eq!(field(video, "nb_read_frames"), (frames - 38).to_string());
        let dur: f64 = field(format(&out), "duration").parse().unwrap();
        let want = duration as f64 / 90_000.0;
        assert!((dur - want).abs() <= 0.04, "{dur} vs {want}");
        let audio = stream(&out, 1);
        assert_eq!(field(audio, "codec_name"), "aac");
        assert!(field(audio, "start_time").parse::<f64>().unwrap().abs() < 0.001);
        assert_eq!(field(format(&out), "TAG:title"), "Front door");
        assert_eq!(field(format(&out), "TAG:comment"), "Vantage export");
        decodes_cleanly(&mp4, "round_trip");
    }
}

#[test]
fn audio_that_starts_after_the_start_instant_gets_an_empty_edit() {
    let f = recorded(Codec::H264, H264_A, 2, true, 0);
    let mut b = Builder::new(0, Metadata::default());
    assert_eq!(push_all(&mut b, &f, 0, 0..2, None), [0, 180_000]);
    let v = b.build().unwrap();
    let mp4 = materialize(&v, &[&f.bytes]);
    let (_, tracks) = parse_mp4(&mp4);
    assert_eq!(tracks[0].edits, [(360_000, 0)]);
    // 100 samples at 16 kHz = 562.5 ticks, rounded.
    let lag = 563;
    let audio_samples: u64 = tracks[1].durations.iter().map(|&d| u64::from(d)).sum();
    let audio_90k = (audio_samples * 90_000).div_ceil(16_000);
    let shown = (360_000 - lag).min(audio_90k);
    assert_eq!(tracks[1].edits, [(lag, -1), (shown, 0)]);
    assert_eq!(tracks[1].tkhd_duration, lag + shown);
    if e2e() {
        let out = probe(&mp4, "empty_edit");
        assert_eq!(field(stream(&out, 0), "nb_read_frames"), "100");
        let start: f64 = field(stream(&out, 1), "start_time").parse().unwrap();
        assert!((start - 0.00625).abs() < 0.001, "{start}");
        decodes_cleanly(&mp4, "empty_edit");
    }
}

#[test]
fn changed_parameter_sets_get_a_second_sample_entry() {
    // Main profile after High: two avc1 entries; stsc points each file's chunks at its own.
    let f1 = recorded(Codec::H264, H264_A, 2, false, 0);
    let f2 = recorded(Codec::H264, H264_B, 2, false, 0);
    assert_ne!(f1.init().video.sample_entry, f2.init().video.sample_entry);
    let mut b = Builder::new(0, Metadata::default());
    push_all(&mut b, &f1, 0, 0..2, None);
    push_all(&mut b, &f2, 1, 0..2, None);
    push_all(&mut b, &f1, 0, 0..1, None); // Back to the first: its entry again.
    let v = b.build().unwrap();
    let mp4 = materialize(&v, &[&f1.bytes, &f2.bytes]);
    let (moov, tracks) = parse_mp4(&mp4);
    assert_eq!(tracks.len(), 1, "no audio track without audio");
    let t = &tracks[0];
    assert_eq!(t.entries, 2);
    let stsd = path(&moov, &[b"trak", b"mdia", b"minf", b"stbl", b"stsd"]);
    let e1 = &f1.init().video.sample_entry;
    let e2 = &f2.init().video.sample_entry;
    assert_eq!(&stsd[8..8 + e1.len()], &e1[..]);
    assert_eq!(&stsd[8 + e1.len()..], &e2[..]);
    let per_sample: Vec<u32> = t.samples.iter().map(|s| s.2).collect();
    let want: Vec<u32> = [1; 100]
        .into_iter()
        .chain([2; 100])
        .chain([1; 50])
        .collect();
    assert_eq!(per_sample, want);
    for (s, w) in t
        .samples
        .iter()
        .zip(f1.video.iter().flatten().chain(f2.video.iter().flatten()))
    {
        assert_eq!(sample_bytes(&mp4, s), &w[..]);
    }
    if e2e() {
        let out = probe(&mp4, "two_entries");
        assert_eq!(field(stream(&out, 0), "nb_read_frames"), "250");
        decodes_cleanly(&mp4, "two_entries");
    }
}

#[test]
fn chunk_offsets_past_4_gib_use_co64_and_a_64_bit_mdat() {
    let f = recorded(Codec::H264, H264_A, 1, true, 0);
    let info = f.init();
    // Fragments of a fictitious 6 GB file: two of one 3 GB key frame each, with one audio frame.
    let fake = |i: u64| FragmentSamples {
        sequence: i as u32 + 1,
        video: TrackFragment {
            track_id: 1,
            base_decode_time: i * 3600,
            samples: vec![SampleInfo {
                offset: 1000 + i * 3_000_001_000,
                size: 3_000_000_000,
                duration: 3600,
                is_sync: true,
            }],
        },
        audio: Some(TrackFragment {
            track_id: 2,
            base_decode_time: AUDIO_LAG + 1024 * i,
            samples: vec![SampleInfo {
                offset: 1000 + i * 3_000_001_000 + 3_000_000_000,
                size: 1000,
                duration: 1024,
                is_sync: true,
            }],
        }),
    };
    let mut b = Builder::new(0, Metadata::default());
    b.push(&info, 0, &fake(0), None).unwrap();
    b.push(&info, 0, &fake(1), None).unwrap();
    let v = b.build().unwrap();
    assert_eq!(
        v.pieces,
        [Piece {
            source: 0,
            offset: 1000,
            len: 6_000_002_000
        }]
    );
    let h = v.header.len() as u64;
    assert_eq!(v.len, h + 6_000_002_000);
    // The header parses on its own (the mdat header says 64-bit size).
    let top = boxes(&v.header[..v.header.len() - 16]);
    let (_, tracks) = (top[1].1, all(top[1].1, b"trak"));
    let video = parse_track(tracks[0]);
    let audio = parse_track(tracks[1]);
    assert!(video.co64 && audio.co64);
    assert_eq!(
        video.samples.iter().map(|s| s.0).collect::<Vec<_>>(),
        [h, h + 3_000_001_000]
    );
    assert_eq!(
        audio.samples.iter().map(|s| s.0).collect::<Vec<_>>(),
        [h + 3_000_000_000, h + 6_000_001_000]
    );
    let mdat = &v.header[v.header.len() - 16..];
    assert_eq!(u32_at(mdat, 0), 1);
    assert_eq!(&mdat[4..8], b"mdat");
    assert_eq!(u64_at(mdat, 8), 6_000_002_000 + 16);
    // A read at the end of the second sample maps into the file.
    let s: Vec<Slice> = v.slices(v.len - 10..v.len).collect();
    assert_eq!(
        s,
        [Slice::File {
            source: 0,
            offset: 1000 + 6_000_002_000 - 10,
            len: 10
        }]
    );

    // The same with 1.5 GB samples fits 32-bit offsets.
    let mut b = Builder::new(0, Metadata::default());
    let mut small = fake(0);
    small.video.samples[0].size = 1_500_000_000;
    small.audio.as_mut().unwrap().samples[0].offset = 1000 + 1_500_000_000;
    b.push(&info, 0, &small, None).unwrap();
    let v = b.build().unwrap();
    let top = boxes(&v.header[..v.header.len() - 8]);
    assert_eq!(&v.header[v.header.len() - 4..], b"mdat");
    assert_eq!(
        u32_at(&v.header, v.header.len() - 8),
        1_500_001_000 + 8,
        "8-byte mdat header"
    );
    let video = parse_track(all(top[1].1, b"trak")[0]);
    assert!(!video.co64);
}

#[test]
fn a_start_inside_a_frame_presents_from_that_frame() {
    // 1 ms into frame 38 (frames of 3600 ticks): the edit starts at frame 38, not inside it
    // (FFmpeg-based players, Chromium's <video src> among them, drop a frame that begins before
    // the edit and showed frame 39 first); the end stays where it was asked.
    let f = recorded(Codec::H264, H264_A, 2, true, 0);
    let start = 38 * 3600 + 90;
    let mut b = Builder::new(start, Metadata::default());
    let at = b.push(&f.init(), 0, &f.fragment(0), None).unwrap();
    assert_eq!(at, -(38 * 3600), "presented from frame 38's start");
    let end = f.tfdts[1] + 3600;
    b.push(&f.init(), 0, &f.fragment(1), Some(end)).unwrap();
    let v = b.build().unwrap();
    let duration = end - 38 * 3600;
    assert_eq!(v.duration_90k, duration);
    let mut sources: Vec<&[u8]> = vec![&[]];
    sources[0] = &f.bytes;
    let mp4 = materialize(&v, &sources);
    let (_, tracks) = parse_mp4(&mp4);
    assert_eq!(tracks[0].edits, [(duration, 38 * 3600)]);
    if e2e() {
        let out = probe(&mp4, "inside_a_frame");
        // Frames 38..=50 of the first GOP and the first of the second: all presented.
        assert_eq!(field(stream(&out, 0), "nb_read_frames"), "13");
    }
}

#[test]
fn builder_refuses_what_it_cannot_present() {
    let f = recorded(Codec::H264, H264_A, 2, true, 0);
    let info = f.init();
    // Start before the first fragment.
    let mut b = Builder::new(0, Metadata::default());
    let f2 = recorded(Codec::H264, H264_A, 2, true, 90_000);
    assert!(b.push(&f2.init(), 0, &f2.fragment(0), None).is_err());
    // Not a key frame first.
    let mut fr = f.fragment(0);
    fr.video.samples.remove(0);
    assert!(
        Builder::new(0, Metadata::default())
            .push(&info, 0, &fr, None)
            .is_err()
    );
    // Track ids that are not the file's.
    let mut fr = f.fragment(0);
    fr.video.track_id = 5;
    assert!(
        Builder::new(0, Metadata::default())
            .push(&info, 0, &fr, None)
            .is_err()
    );
    // Nothing pushed; start at or after the end.
    assert!(Builder::new(0, Metadata::default()).build().is_err());
    let mut b = Builder::new(180_000, Metadata::default());
    b.push(&info, 0, &f.fragment(0), None).unwrap();
    assert!(b.build().is_err());
    let mut b = Builder::new(3600, Metadata::default());
    b.push(&info, 0, &f.fragment(0), Some(3600)).unwrap();
    assert!(b.build().is_err());
    // Audio at another rate.
    let mut other = info.clone();
    other.audio.as_mut().unwrap().sample_rate = 48_000;
    let mut b = Builder::new(0, Metadata::default());
    b.push(&info, 0, &f.fragment(0), None).unwrap();
    assert!(b.push(&other, 1, &f.fragment(1), None).is_err());
}

/// A long range: an hour at 25 fps (90k video samples, ~56k audio frames) builds in
/// O(samples): a moov of a few MB.
#[test]
fn an_hour_of_samples_builds() {
    let f = recorded(Codec::H264, H264_A, 1, true, 0);
    let info = f.init();
    let fr = f.fragment(0);
    let per = fr.video.samples.len(); // 50
    let mut b = Builder::new(0, Metadata::default());
    let t0 = std::time::Instant::now();
    for i in 0..(90_000 / per) {
        let mut g = fr.clone();
        g.video.base_decode_time = (i * per * 3600) as u64;
        g.audio.as_mut().unwrap().base_decode_time = AUDIO_LAG + (i * per * 640) as u64;
        b.push(&info, i as u32, &g, None).unwrap();
    }
    let v = b.build().unwrap();
    assert_eq!(v.video_samples, 90_000);
    assert!(v.header.len() < 4 << 20, "{}", v.header.len());
    assert_eq!(v.duration_90k, 90_000 * 3600);
    assert!(t0.elapsed().as_secs() < 20, "{:?}", t0.elapsed());
}

// --- MSE ---

#[test]
fn mse_init_and_remuxed_fragments() {
    let f = recorded(Codec::H264, H264_A, 3, true, 0);
    let info = f.init();
    let init = mse_init(&info);
    // It reads back as the same tracks, without edit lists, with mvex.
    assert_eq!(read_init(&init).unwrap(), info);
    let moov = child(&init, b"moov");
    assert_eq!(all(child(moov, b"mvex"), b"trex").len(), 2);
    assert!(all(moov, b"trak").iter().all(|t| !has(t, b"edts")));

    // Fragments on the wall-clock timeline, renumbered.
    let wall = WALL_SECS as u64 * 90_000;
    let mut mse = init.clone();
    for i in 0..3 {
        let fr = f.fragment(i);
        let vt = wall + f.tfdts[i];
        let at = wall * u64::from(RATE) / 90_000 + fr.audio.as_ref().unwrap().base_decode_time;
        let moof = remux_moof(f.moof(i), 100 + i as u32, vt, Some(at)).unwrap();
        assert_eq!(moof.len(), f.moof(i).len(), "same size");
        let back = read_fragment(&moof, 0).unwrap();
        assert_eq!(back.sequence, 100 + i as u32);
        assert_eq!(back.video.base_decode_time, vt);
        assert_eq!(back.audio.as_ref().unwrap().base_decode_time, at);
        // Same sample tables, relative to the moof.
        let shift = |t: &TrackFragment, by: u64| -> Vec<SampleInfo> {
            t.samples
                .iter()
                .map(|s| SampleInfo {
                    offset: s.offset - by,
                    ..*s
                })
                .collect()
        };
        assert_eq!(shift(&back.video, 0), shift(&fr.video, f.moofs[i].0 as u64));
        mse.extend_from_slice(&moof);
        let (o, l) = f.moofs[i];
        let mdat_len = u32_at(&f.bytes, o + l) as usize;
        mse.extend_from_slice(&f.bytes[o + l..o + l + mdat_len]);
    }
    // No audio tfdt for a fragment with audio.
    assert_eq!(
        remux_moof(f.moof(0), 1, 0, None).unwrap_err().kind(),
        base::ErrorKind::InvalidArgument
    );
    assert!(remux_moof(&f.moof(0)[..50], 1, 0, Some(0)).is_err());

    // A version 0 tfdt becomes version 1: the moof grows by 4 and so do the data offsets.
    let moof = moof_with_defaults(1, 45_000, 4, 100);
    let out = remux_moof(&moof, 2, 1 << 40, None).unwrap();
    assert_eq!(out.len(), moof.len() + 4);
    let before = read_fragment(&moof, 0).unwrap();
    let after = read_fragment(&out, 0).unwrap();
    assert_eq!(after.video.base_decode_time, 1 << 40);
    assert_eq!(
        after.video.samples[0].offset,
        before.video.samples[0].offset + 4
    );
    assert_eq!(after.video.samples[0].offset, out.len() as u64 + 8);

    if e2e() {
        let out = probe(&mse, "mse");
        let start: f64 = field(stream(&out, 0), "start_time").parse().unwrap();
        assert!((start - WALL_SECS as f64).abs() < 0.001, "{start}");
        assert_eq!(field(stream(&out, 0), "nb_read_frames"), "150");
        let astart: f64 = field(stream(&out, 1), "start_time").parse().unwrap();
        assert!(
            (astart - WALL_SECS as f64 - 0.00625).abs() < 0.001,
            "{astart}"
        );
        decodes_cleanly(&mse, "mse");
    }
}

// --- ffprobe / ffmpeg (VANTAGE_E2E=1) ---

fn e2e() -> bool {
    std::env::var("VANTAGE_E2E").is_ok_and(|v| v == "1")
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vantage-mp4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.mp4"));
    std::fs::write(&file, bytes).unwrap();
    file
}

/// ffprobe's `-show_format -show_streams -count_frames` in its flat `key=value` output.
fn probe(bytes: &[u8], name: &str) -> String {
    let file = temp_file(name, bytes);
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-count_frames",
        ])
        .args(["-of", "default"])
        .arg(&file)
        .output()
        .expect("VANTAGE_E2E=1 but ffprobe could not be run");
    std::fs::remove_file(&file).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// The `i`th `[STREAM]` section.
fn stream(out: &str, i: usize) -> &str {
    out.split("[STREAM]")
        .nth(i + 1)
        .and_then(|s| s.split("[/STREAM]").next())
        .unwrap_or_else(|| panic!("no stream {i}: {out}"))
}

fn format(out: &str) -> &str {
    out.split("[FORMAT]")
        .nth(1)
        .unwrap_or_else(|| panic!("no format: {out}"))
}

fn field<'a>(section: &'a str, key: &str) -> &'a str {
    section
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} missing: {section}"))
}

/// `ffmpeg -v error -i f.mp4 -f null -` decodes every stream without a message.
fn decodes_cleanly(bytes: &[u8], name: &str) {
    let file = temp_file(name, bytes);
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .expect("VANTAGE_E2E=1 but ffmpeg could not be run");
    std::fs::remove_file(&file).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
}
