//! [`read_init`]: what playback needs from a segment's init segment (`ftyp` + `moov`).

use super::boxes::{BoxRef, Reader, children, first_box, need, show};
use crate::Codec;
use base::{Error, bail, err};

/// Largest init segment read. Ours are about 1 KiB (most of it the parameter sets); the cap
/// bounds what [`read_init`] copies and keeps every box [`super::mse_init`] writes far below
/// 32-bit sizes.
pub const MAX_INIT_LEN: usize = 1 << 20;

/// A segment file's tracks, as [`read_init`] found them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitInfo {
    pub video: VideoTrack,
    /// The first sound track with an `mp4a` sample entry, if any.
    pub audio: Option<AudioTrack>,
}

/// The video track of an init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoTrack {
    pub track_id: u32,
    pub codec: Codec,
    /// From the visual sample entry.
    pub width: u16,
    pub height: u16,
    /// `mdhd` timescale (90000 in Vantage's files).
    pub timescale: u32,
    /// The whole first sample entry box (`avc1`/`avc3` with `avcC`, `hvc1`/`hev1` with `hvcC`),
    /// header included, to copy as it is into another `stsd`.
    pub sample_entry: Vec<u8>,
    /// `media_time` of the track's first non-empty edit, if it has an edit list (the "first GOP
    /// lost" case of design 0006: the file presents from this decode time).
    pub edit_media_time: Option<i64>,
}

/// The audio track of an init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AudioTrack {
    pub track_id: u32,
    /// The `mdhd` timescale, which Vantage's writer sets to the sample rate.
    pub sample_rate: u32,
    /// `channelcount` of the `mp4a` entry.
    pub channels: u16,
    /// The whole `mp4a` sample entry box (with its `esds`), header included.
    pub sample_entry: Vec<u8>,
    /// As [`VideoTrack::edit_media_time`], in samples.
    pub edit_media_time: Option<i64>,
}

/// Reads the tracks of an init segment: `init` holds the file's top-level boxes up to and
/// including the `moov` (what follows the `moov` is not looked at, so a longer prefix of the file
/// is fine). The video track is the first `trak` with handler `vide`; the audio track the first
/// with handler `soun` and an `mp4a` sample entry.
///
/// Fails with `DataLoss` for a malformed or truncated `moov` or no video track, and with
/// `InvalidArgument` for a video codec other than H.264 and H.265 or an init segment larger than
/// [`MAX_INIT_LEN`].
pub fn read_init(init: &[u8]) -> Result<InitInfo, Error> {
    let mut rest = init;
    let moov = loop {
        if rest.is_empty() {
            bail!(DataLoss, "init segment without a moov box");
        }
        let b = first_box(rest)?;
        if &b.fourcc == b"moov" {
            break b;
        }
        rest = rest.get(b.whole.len()..).unwrap_or_default();
    };
    let moov_end = (init.len() - rest.len()).saturating_add(moov.whole.len());
    if moov_end > MAX_INIT_LEN {
        bail!(
            InvalidArgument,
            "init segment of {moov_end} bytes is larger than {MAX_INIT_LEN}"
        );
    }
    let mut video = None;
    let mut audio = None;
    for b in children(moov.body)? {
        if &b.fourcc != b"trak" {
            continue;
        }
        let t = read_trak(b.body)?;
        match &t.handler {
            b"vide" if video.is_none() => video = Some(video_track(t)?),
            b"soun" if audio.is_none() && &t.entry.fourcc == b"mp4a" => {
                audio = Some(audio_track(t)?)
            }
            _ => {}
        }
    }
    let Some(video) = video else {
        bail!(DataLoss, "init segment without a video track");
    };
    if audio.as_ref().is_some_and(|a| a.track_id == video.track_id) {
        bail!(
            DataLoss,
            "audio and video tracks share track_ID {}",
            video.track_id
        );
    }
    Ok(InitInfo { video, audio })
}

/// The parts of a `trak` both kinds of track need.
struct Trak<'a> {
    track_id: u32,
    handler: [u8; 4],
    timescale: u32,
    entry: BoxRef<'a>,
    edit_media_time: Option<i64>,
}

fn read_trak(trak: &[u8]) -> Result<Trak<'_>, Error> {
    let mut r = Reader::new(need(trak, b"tkhd")?, "tkhd");
    let (version, _) = r.version_flags()?;
    r.skip(if version == 1 { 16 } else { 8 })?; // creation and modification times
    let track_id = r.u32()?;

    let mdia = need(trak, b"mdia")?;
    let mut r = Reader::new(need(mdia, b"mdhd")?, "mdhd");
    let (version, _) = r.version_flags()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        bail!(DataLoss, "track {track_id} has timescale 0");
    }
    let mut r = Reader::new(need(mdia, b"hdlr")?, "hdlr");
    r.skip(8)?; // version/flags, pre_defined
    let handler = r.fourcc()?;

    let stbl = need(need(mdia, b"minf")?, b"stbl")?;
    let mut r = Reader::new(need(stbl, b"stsd")?, "stsd");
    r.version_flags()?;
    if r.u32()? == 0 {
        bail!(DataLoss, "track {track_id} has no sample entry");
    }
    let entry = first_box(r.rest())?;

    let edit_media_time = match super::boxes::child(trak, b"edts")? {
        Some(edts) => match super::boxes::child(edts, b"elst")? {
            Some(elst) => first_edit(elst)?,
            None => None,
        },
        None => None,
    };
    Ok(Trak {
        track_id,
        handler,
        timescale,
        entry,
        edit_media_time,
    })
}

/// The `media_time` of an `elst`'s first non-empty edit (empty edits have `media_time` -1).
fn first_edit(elst: &[u8]) -> Result<Option<i64>, Error> {
    let mut r = Reader::new(elst, "elst");
    let (version, _) = r.version_flags()?;
    let count = r.u32()?;
    for _ in 0..count {
        // Bounded: each entry consumes 12 or 20 bytes, and running out is an error.
        let media_time = if version == 1 {
            r.u64()?;
            r.i64()?
        } else {
            r.u32()?;
            i64::from(r.i32()?)
        };
        r.u32()?; // media_rate
        if media_time != -1 {
            return Ok(Some(media_time));
        }
    }
    Ok(None)
}

/// Bytes of a `VisualSampleEntry`'s fixed fields (ISO/IEC 14496-12 12.1.3) before its boxes.
const VISUAL_ENTRY_FIELDS: usize = 78;
/// Bytes of an `AudioSampleEntry`'s fixed fields (version 0) before its boxes.
const AUDIO_ENTRY_FIELDS: usize = 28;

fn video_track(t: Trak<'_>) -> Result<VideoTrack, Error> {
    let (codec, config) = match &t.entry.fourcc {
        b"avc1" | b"avc3" => (Codec::H264, b"avcC"),
        b"hvc1" | b"hev1" => (Codec::H265, b"hvcC"),
        other => bail!(
            InvalidArgument,
            "video sample entry {} is not H.264 or H.265",
            show(other)
        ),
    };
    let mut r = Reader::new(t.entry.body, "visual sample entry");
    r.skip(24)?; // reserved, data_reference_index, pre_defined, reserved
    let width = r.u16()?;
    let height = r.u16()?;
    let boxes = t
        .entry
        .body
        .get(VISUAL_ENTRY_FIELDS..)
        .ok_or_else(|| err!(DataLoss, "visual sample entry is truncated"))?;
    need(boxes, config)?;
    Ok(VideoTrack {
        track_id: t.track_id,
        codec,
        width,
        height,
        timescale: t.timescale,
        sample_entry: t.entry.whole.to_vec(),
        edit_media_time: t.edit_media_time,
    })
}

fn audio_track(t: Trak<'_>) -> Result<AudioTrack, Error> {
    let mut r = Reader::new(t.entry.body, "audio sample entry");
    r.skip(16)?; // reserved, data_reference_index, reserved
    let channels = r.u16()?;
    let boxes = t
        .entry
        .body
        .get(AUDIO_ENTRY_FIELDS..)
        .ok_or_else(|| err!(DataLoss, "audio sample entry is truncated"))?;
    need(boxes, b"esds")?;
    Ok(AudioTrack {
        track_id: t.track_id,
        sample_rate: t.timescale,
        channels,
        sample_entry: t.entry.whole.to_vec(),
        edit_media_time: t.edit_media_time,
    })
}
