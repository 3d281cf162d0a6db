//! The fMP4 reader: scans recording segment files (fragmented MP4 as written by [`crate::fmp4`])
//! to find how much of a file is intact after a crash: the process may be killed at any byte
//! while writing, so a file may end inside the init segment or inside a fragment. Pure: it reads
//! through a [`Source`] (a slice here; `recorder::scan` implements one over a file and cuts torn
//! files back).
//!
//! A segment file is `ftyp` + `moov` (the init segment) followed by `moof` + `mdat` pairs. The
//! scan accepts a fragment only when its `moof` parses and its `mdat` is complete and exactly as
//! large as the `trun` sample sizes of all its tracks say, with each track's samples where the
//! writer puts them (video first, then audio); it stops at the first unit that is incomplete or
//! invalid. Timing and sample counts come from the video track.
//! Every byte is untrusted: no panics, checked arithmetic, and allocations are bounded by
//! [`MAX_META_BOX_LEN`] whatever the size fields say.

#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;

/// Largest `moov` or `moof` box accepted. Ours are a few KiB (a `moof` grows by 16 bytes per
/// sample); the cap keeps a corrupt size field from driving a huge read.
pub const MAX_META_BOX_LEN: u64 = 4 << 20;

/// One complete media fragment (`moof` + `mdat`, and the `prft` right before the `moof` if
/// there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Byte offset of the fragment in the file: of its `prft`, else of its `moof`.
    pub offset: u64,
    /// Bytes of the fragment (`prft` if any, `moof`, `mdat`).
    pub len: u64,
    /// `mfhd` sequence number.
    pub sequence: u32,
    /// `tfdt` base media decode time (90 kHz): the time in the file (from 0 in files with
    /// `prft`s).
    pub base_decode_time: u64,
    /// Wall-clock time of the first video sample, 90 kHz ticks since the Unix epoch: from the
    /// video track's `prft` right before the `moof`; without one (files written before `prft`s,
    /// whose `tfdt`s are wall-clock times), the `tfdt` itself.
    pub wall_90k: u64,
    /// Sum of the video sample durations (90 kHz).
    pub duration: u64,
    /// Video samples.
    pub samples: u32,
    /// The first video sample is a sync sample (key frame).
    pub starts_with_key: bool,
    /// Samples of the audio track (0 for a video-only fragment or file).
    pub audio_samples: u32,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// `"h264"` (`avc1`/`avc3`) or `"h265"` (`hvc1`/`hev1`) from the `stsd` sample entry of the
    /// video track.
    pub codec: Option<String>,
    /// `"aac"` when the init segment has an audio track with an `mp4a` sample entry.
    pub audio: Option<String>,
    /// Bytes of `ftyp` + `moov`; 0 if the init segment is incomplete or invalid.
    pub init_len: u64,
    pub fragments: Vec<FragmentInfo>,
    /// End of the last complete fragment, or of the init segment if there is no fragment, or 0.
    pub valid_len: u64,
    /// Bytes scanned (the file's length).
    pub total_len: u64,
}

impl Scan {
    /// Wall-clock time of the first fragment (90 kHz ticks since the Unix epoch; see
    /// [`FragmentInfo::wall_90k`]).
    pub fn start_90k(&self) -> Option<u64> {
        self.fragments.first().map(|f| f.wall_90k)
    }

    /// Wall-clock time just after the last sample (the last fragment's wall-clock time + its
    /// duration).
    pub fn end_90k(&self) -> Option<u64> {
        self.fragments
            .last()
            .and_then(|f| f.wall_90k.checked_add(f.duration))
    }
}

/// What a `prft` box says: the wall-clock time of a decode time of a track.
#[derive(Clone, Copy, Debug)]
struct Prft {
    /// Where the box starts.
    pos: u64,
    track_id: u32,
    ntp: u64,
    media_time: u64,
}

/// Parses a `prft` body (version 0: 32-bit media time, 1: 64-bit).
fn parse_prft(pos: u64, b: &[u8]) -> Option<Prft> {
    let media_time = match b.first()? {
        0 => u64::from(be_u32(b, 16)?),
        1 => be_u64(b, 16)?,
        _ => return None,
    };
    Some(Prft {
        pos,
        track_id: be_u32(b, 4)?,
        ntp: be_u64(b, 8)?,
        media_time,
    })
}

/// Largest `prft` body read (ours are 24 bytes).
const MAX_PRFT_LEN: u64 = 64;

/// Scans an in-memory segment. Never fails: the result describes the valid prefix.
pub fn scan_bytes(buf: &[u8]) -> Scan {
    match scan_source(&mut SliceSource(buf)) {
        Ok(s) => s,
        Err(never) => match never {},
    }
}

/// Random-access bytes of known length: a slice ([`scan_bytes`]) or a file.
pub trait Source {
    type Err;
    fn size(&self) -> u64;
    /// `len` bytes at `off`; callers keep `off + len <= self.size()`.
    fn read(&mut self, off: u64, len: usize) -> Result<Cow<'_, [u8]>, Self::Err>;
}

struct SliceSource<'a>(&'a [u8]);

impl Source for SliceSource<'_> {
    type Err = std::convert::Infallible;

    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read(&mut self, off: u64, len: usize) -> Result<Cow<'_, [u8]>, Self::Err> {
        // Callers stay in range; an out-of-range read yields nothing, which parses as invalid.
        let b = usize::try_from(off)
            .ok()
            .and_then(|o| self.0.get(o..)?.get(..len))
            .unwrap_or(&[]);
        Ok(Cow::Borrowed(b))
    }
}

/// A box header that fits in the data.
#[derive(Clone, Copy, Debug)]
struct Header {
    fourcc: [u8; 4],
    /// 8, or 16 with a 64-bit `largesize`.
    header_len: u64,
    /// Whole box, header included.
    size: u64,
}

enum ParsedHeader {
    Ok(Header),
    /// Too few bytes to tell.
    Incomplete,
    /// `size` 0 ("to end of file", never written by us) or smaller than the header.
    Invalid,
}

/// Parses a box header from the start of `b` (which may be shorter than 16 bytes).
fn parse_header(b: &[u8]) -> ParsedHeader {
    let (Some(size32), Some(fourcc)) = (be_u32(b, 0), b.get(4..8)) else {
        return ParsedHeader::Incomplete;
    };
    let mut fc = [0; 4];
    fc.copy_from_slice(fourcc);
    let (header_len, size) = match size32 {
        0 => return ParsedHeader::Invalid,
        1 => match be_u64(b, 8) {
            Some(large) => (16, large),
            None => return ParsedHeader::Incomplete,
        },
        s => (8, u64::from(s)),
    };
    if size < header_len {
        return ParsedHeader::Invalid;
    }
    ParsedHeader::Ok(Header {
        fourcc: fc,
        header_len,
        size,
    })
}

/// Reads the header of the box at `pos`; `None` if it is incomplete, invalid or runs past the end.
fn read_header<S: Source>(src: &mut S, pos: u64) -> Result<Option<Header>, S::Err> {
    let total = src.size();
    let Some(avail) = total.checked_sub(pos) else {
        return Ok(None);
    };
    let n = avail.min(16) as usize; // At most 16: fits.
    let h = match parse_header(&src.read(pos, n)?) {
        ParsedHeader::Ok(h) => h,
        ParsedHeader::Incomplete | ParsedHeader::Invalid => return Ok(None),
    };
    if h.size > avail {
        return Ok(None);
    }
    Ok(Some(h))
}

/// Reads the body of the box at `pos` if it is no larger than [`MAX_META_BOX_LEN`].
fn read_body<'a, S: Source>(
    src: &'a mut S,
    pos: u64,
    h: &Header,
) -> Result<Option<Cow<'a, [u8]>>, S::Err> {
    let body_len = h.size - h.header_len; // size >= header_len: checked by parse_header.
    if h.size > MAX_META_BOX_LEN {
        return Ok(None);
    }
    let Some(start) = pos.checked_add(h.header_len) else {
        return Ok(None);
    };
    // Fits usize: at most MAX_META_BOX_LEN.
    Ok(Some(src.read(start, body_len as usize)?))
}

/// Sample defaults from `trex` (used when neither `tfhd` nor `trun` gives a value).
#[derive(Clone, Copy, Debug, Default)]
struct Defaults {
    duration: u32,
    size: Option<u32>,
    flags: u32,
}

/// Scans the segment in `src`, reading only box headers and the `moov`/`moof` bodies (media
/// payloads are skipped), so large files are cheap. Fails only when `src` does.
pub fn scan_source<S: Source>(src: &mut S) -> Result<Scan, S::Err> {
    let total_len = src.size();
    let mut scan = Scan {
        total_len,
        ..Scan::default()
    };

    // Init segment: ftyp then moov.
    let Some(ftyp) = read_header(src, 0)? else {
        return Ok(scan);
    };
    if &ftyp.fourcc != b"ftyp" {
        return Ok(scan);
    }
    let moov_pos = ftyp.size;
    let Some(moov) = read_header(src, moov_pos)? else {
        return Ok(scan);
    };
    if &moov.fourcc != b"moov" {
        return Ok(scan);
    }
    let tracks = match read_body(src, moov_pos, &moov)? {
        Some(body) => parse_moov(&body),
        None => return Ok(scan),
    };
    let Some(init_len) = moov_pos.checked_add(moov.size) else {
        return Ok(scan);
    };
    scan.codec = tracks.codec.map(str::to_owned);
    scan.audio = tracks.audio_codec.map(str::to_owned);
    scan.init_len = init_len;
    scan.valid_len = init_len;

    // Fragments, with complete filler boxes allowed between them. A `prft` of the video track
    // right before a `moof` belongs to that fragment.
    let mut pos = init_len;
    let mut prft: Option<Prft> = None;
    loop {
        let Some(h) = read_header(src, pos)? else {
            break;
        };
        let Some(end) = pos.checked_add(h.size) else {
            break;
        };
        match &h.fourcc {
            b"moof" => {
                let Some(mut info) = read_fragment(src, pos, &h, &tracks)? else {
                    break;
                };
                pos = pos.saturating_add(info.len); // Within total_len: checked.
                if let Some(p) = prft.take() {
                    info.len = pos - p.pos; // p.pos < the moof's position.
                    info.offset = p.pos;
                    let wall = i128::from(crate::fmp4::ntp_to_unix_90k(p.ntp))
                        + i128::from(info.base_decode_time)
                        - i128::from(p.media_time);
                    info.wall_90k = u64::try_from(wall.max(0)).unwrap_or(u64::MAX);
                }
                scan.valid_len = pos;
                scan.fragments.push(info);
            }
            b"prft" => {
                prft = if h.size - h.header_len <= MAX_PRFT_LEN {
                    read_body(src, pos, &h)?
                        .and_then(|b| parse_prft(pos, &b))
                        .filter(|p| p.track_id == tracks.video_id)
                } else {
                    None
                };
                pos = end;
            }
            b"free" | b"skip" | b"styp" | b"sidx" | b"emsg" => {
                prft = None;
                pos = end;
            }
            _ => break,
        }
    }
    Ok(scan)
}

/// Reads the fragment whose `moof` (header `h`) is at `pos`; `None` unless it is complete and
/// consistent.
fn read_fragment<S: Source>(
    src: &mut S,
    pos: u64,
    h: &Header,
    tracks: &Tracks,
) -> Result<Option<FragmentInfo>, S::Err> {
    let Some(moof) = (match read_body(src, pos, h)? {
        Some(body) => parse_moof(&body, tracks),
        None => None,
    }) else {
        return Ok(None);
    };
    let Some(mdat_pos) = pos.checked_add(h.size) else {
        return Ok(None);
    };
    let Some(mdat) = read_header(src, mdat_pos)? else {
        return Ok(None);
    };
    let payload_len = mdat.size - mdat.header_len; // size >= header_len: checked.
    if &mdat.fourcc != b"mdat" || payload_len != moof.sizes {
        return Ok(None);
    }
    let Some(payload_start) = mdat_pos.checked_add(mdat.header_len) else {
        return Ok(None);
    };
    if !data_offsets_fit(&moof.trafs, pos, payload_start, payload_len) {
        return Ok(None);
    }
    let Some(len) = h.size.checked_add(mdat.size) else {
        return Ok(None);
    };
    let Some(video) = moof.trafs.get(moof.video) else {
        return Ok(None); // Never: parse_moof's invariant.
    };
    let audio_samples = moof
        .audio
        .and_then(|a| moof.trafs.get(a))
        .map_or(0, |t| t.samples);
    Ok(Some(FragmentInfo {
        offset: pos,
        len,
        sequence: moof.sequence,
        base_decode_time: video.base_decode_time,
        wall_90k: video.base_decode_time,
        duration: video.duration,
        samples: video.samples,
        starts_with_key: video.starts_with_key,
        audio_samples,
    }))
}

/// Whether the tracks' samples lie where the writer puts them: the tracks one after another in
/// `moof` order from the start of the `mdat` payload (at `payload_start`, `payload_len` bytes),
/// so each track's first data offset must point right after the previous tracks' samples, and
/// every `trun` with a data offset inside the payload. Offsets count from the `tfhd`
/// base-data-offset if present, else from the `moof` (at `moof_pos`); for a later track without
/// default-base-is-moof, from the end of the previous track's data. A `trun` without a data
/// offset is not checked (its samples follow the previous `trun`'s).
fn data_offsets_fit(trafs: &[Traf], moof_pos: u64, payload_start: u64, payload_len: u64) -> bool {
    let payload_start = i128::from(payload_start);
    let payload_end = payload_start + i128::from(payload_len);
    let mut cursor = payload_start; // Where the next track's samples must start.
    for (i, traf) in trafs.iter().enumerate() {
        let base = match traf.base_data_offset {
            Some(b) => i128::from(b),
            None if i == 0 || traf.default_base_is_moof => i128::from(moof_pos),
            None => cursor,
        };
        for (j, trun) in traf.truns.iter().enumerate() {
            let Some(off) = trun.data_offset else {
                continue;
            };
            let start = base + i128::from(off);
            if j == 0 && start != cursor {
                return false;
            }
            if start < payload_start || start + i128::from(trun.sizes) > payload_end {
                return false;
            }
        }
        cursor += i128::from(traf.sizes);
    }
    true
}

/// Splits a box body into its child boxes; `None` unless they tile it exactly.
fn children(mut b: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let ParsedHeader::Ok(h) = parse_header(b) else {
            return None;
        };
        let size = usize::try_from(h.size).ok()?;
        let body = b.get(h.header_len as usize..size)?; // header_len is 8 or 16.
        out.push((h.fourcc, body));
        b = b.get(size..)?;
    }
    Some(out)
}

/// The first child box named `fourcc`.
fn child<'a>(b: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    children(b)?
        .into_iter()
        .find(|(fc, _)| fc == fourcc)
        .map(|(_, body)| body)
}

/// What the `moov` says about its tracks.
#[derive(Clone, Copy, Debug)]
struct Tracks {
    /// The video codec, from the sample entry of the video track.
    codec: Option<&'static str>,
    /// The audio codec, when a track has an audio sample entry we know.
    audio_codec: Option<&'static str>,
    /// `track_ID` of the video track ([`crate::fmp4::TRACK_ID`] if unknown).
    video_id: u32,
    /// `track_ID` of the audio track, if any.
    audio_id: Option<u32>,
    /// `trex` defaults of the video and audio tracks.
    video_defaults: Defaults,
    audio_defaults: Defaults,
}

/// One `trak`: its `track_ID`, handler type and first sample entry's type.
struct Trak {
    id: Option<u32>,
    handler: Option<[u8; 4]>,
    entry: Option<[u8; 4]>,
}

fn parse_trak(trak: &[u8]) -> Trak {
    let id = (|| {
        let tkhd = child(trak, b"tkhd")?;
        // version 1 has 64-bit creation and modification times.
        match tkhd.first()? {
            0 => be_u32(tkhd, 12),
            1 => be_u32(tkhd, 20),
            _ => None,
        }
    })();
    let mdia = child(trak, b"mdia");
    let handler = (|| {
        let hdlr = child(mdia?, b"hdlr")?;
        hdlr.get(8..12)?.try_into().ok()
    })();
    let entry = (|| {
        let stbl = [b"minf", b"stbl"]
            .iter()
            .try_fold(mdia?, |b, fc| child(b, fc))?;
        let stsd = child(stbl, b"stsd")?;
        // version/flags, entry_count, then the first sample entry's header.
        stsd.get(12..16)?.try_into().ok()
    })();
    Trak { id, handler, entry }
}

/// Best-effort look into `moov`: the video track (the first with handler `vide`, else the first
/// track) and its codec, the audio track (the first with handler `soun`) and its codec, and the
/// `trex` defaults of both.
fn parse_moov(moov: &[u8]) -> Tracks {
    let kids = children(moov).unwrap_or_default();
    let mut first = None;
    let mut video = None;
    let mut audio = None;
    for (fc, body) in &kids {
        if fc != b"trak" {
            continue;
        }
        let t = parse_trak(body);
        match &t.handler {
            Some(h) if h == b"vide" && video.is_none() => video = Some(t),
            Some(h) if h == b"soun" && audio.is_none() => audio = Some(t),
            _ if first.is_none() => first = Some(t),
            _ => {}
        }
        if video.is_some() && audio.is_some() {
            break;
        }
    }
    let video = video.or(first);
    let codec = match video.as_ref().and_then(|t| t.entry).as_ref() {
        Some(b"avc1" | b"avc3") => Some("h264"),
        Some(b"hvc1" | b"hev1") => Some("h265"),
        _ => None,
    };
    let audio_codec = match audio.as_ref().and_then(|t| t.entry).as_ref() {
        Some(b"mp4a") => Some("aac"),
        _ => None,
    };
    let video_id = video.and_then(|t| t.id).unwrap_or(crate::fmp4::TRACK_ID);
    let audio_id = audio.and_then(|t| t.id).filter(|&id| id != video_id);

    // trex of each track; the first trex stands in for a video track without its own.
    let mut first_trex = None;
    let mut video_defaults = None;
    let mut audio_defaults = None;
    let mvex = kids
        .iter()
        .find(|(fc, _)| fc == b"mvex")
        .and_then(|(_, b)| children(b));
    for (fc, trex) in mvex.unwrap_or_default() {
        if &fc != b"trex" {
            continue;
        }
        let Some((id, d)) = parse_trex(trex) else {
            continue;
        };
        first_trex.get_or_insert(d);
        if id == video_id {
            video_defaults.get_or_insert(d);
        } else if Some(id) == audio_id {
            audio_defaults.get_or_insert(d);
        }
    }
    Tracks {
        codec,
        audio_codec,
        video_id,
        audio_id,
        video_defaults: video_defaults.or(first_trex).unwrap_or_default(),
        audio_defaults: audio_defaults.unwrap_or_default(),
    }
}

/// A `trex`'s `track_ID` and sample defaults.
fn parse_trex(trex: &[u8]) -> Option<(u32, Defaults)> {
    Some((
        be_u32(trex, 4)?,
        Defaults {
            duration: be_u32(trex, 12)?,
            size: Some(be_u32(trex, 16)?).filter(|&s| s != 0),
            flags: be_u32(trex, 20)?,
        },
    ))
}

/// What a `moof` says about its fragment.
#[derive(Debug)]
struct Moof {
    sequence: u32,
    /// The tracks' fragments, in `moof` order.
    trafs: Vec<Traf>,
    /// Index in `trafs` of the video track's (the one with its `track_ID`, else the first).
    video: usize,
    /// Index in `trafs` of the audio track's, if the fragment has one.
    audio: Option<usize>,
    /// Sum of the sample sizes of all tracks: must equal the mdat payload.
    sizes: u64,
}

/// What a `traf` says about one track's part of a fragment.
#[derive(Debug)]
struct Traf {
    track_id: u32,
    base_decode_time: u64,
    duration: u64,
    samples: u32,
    /// Sum of the sample sizes.
    sizes: u64,
    starts_with_key: bool,
    truns: Vec<Trun>,
    /// `tfhd` base-data-offset (absolute), if present.
    base_data_offset: Option<u64>,
    /// `tfhd` default-base-is-moof.
    default_base_is_moof: bool,
}

#[derive(Debug)]
struct Trun {
    data_offset: Option<i32>,
    /// Sum of this run's sample sizes.
    sizes: u64,
}

/// `sample_is_non_sync_sample` in `sample_flags`.
const NON_SYNC: u32 = 0x0001_0000;

/// Parses a `moof` body: one `mfhd` and one or more `traf`s (one per track, at most one for each
/// of the video and audio tracks), each with `tfhd`, `tfdt` and at least one `trun`. Other
/// children are ignored.
fn parse_moof(body: &[u8], tracks: &Tracks) -> Option<Moof> {
    let kids = children(body)?;
    let mut mfhd = None;
    let mut trafs = Vec::new();
    for (fc, b) in kids {
        match &fc {
            b"mfhd" if mfhd.is_none() => mfhd = Some(b),
            b"mfhd" => return None, // Duplicate.
            b"traf" => trafs.push(parse_traf(b, tracks)?),
            _ => {}
        }
    }
    let sequence = be_u32(mfhd?, 4)?;
    if trafs.is_empty() {
        return None;
    }
    let mut video = None;
    let mut audio = None;
    let mut sizes = 0u64;
    for (i, t) in trafs.iter().enumerate() {
        if t.track_id == tracks.video_id && video.replace(i).is_some() {
            return None; // Duplicate.
        }
        if Some(t.track_id) == tracks.audio_id && audio.replace(i).is_some() {
            return None; // Duplicate.
        }
        sizes = sizes.checked_add(t.sizes)?;
    }
    let video = match video {
        Some(v) => v,
        // Without the video track's traf the first stands in for it, unless it is the audio's.
        None if audio == Some(0) => return None,
        None => 0,
    };
    Some(Moof {
        sequence,
        trafs,
        video,
        audio: audio.filter(|&a| a != video),
        sizes,
    })
}

/// Parses a `traf` body with `tfhd`, `tfdt` and at least one `trun` holding at least one sample
/// in all. Sample defaults come from the `tfhd`, else the track's `trex`.
fn parse_traf(traf: &[u8], tracks: &Tracks) -> Option<Traf> {
    let mut tfhd = None;
    let mut tfdt = None;
    let mut truns = Vec::new();
    for (fc, b) in children(traf)? {
        match &fc {
            b"tfhd" if tfhd.is_none() => tfhd = Some(b),
            b"tfdt" if tfdt.is_none() => tfdt = Some(b),
            b"trun" => truns.push(b),
            b"tfhd" | b"tfdt" => return None, // Duplicate.
            _ => {}
        }
    }

    // tfhd: version/flags, track_ID, then optional fields in flag order.
    let mut r = Reader::new(tfhd?);
    let tf_flags = r.u32()? & 0x00ff_ffff;
    let track_id = r.u32()?;
    let trex = if Some(track_id) == tracks.audio_id {
        tracks.audio_defaults
    } else {
        tracks.video_defaults
    };
    let base_data_offset = if tf_flags & 0x01 != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    if tf_flags & 0x02 != 0 {
        r.u32()?; // sample_description_index
    }
    let def_duration = if tf_flags & 0x08 != 0 {
        r.u32()?
    } else {
        trex.duration
    };
    let def_size = if tf_flags & 0x10 != 0 {
        Some(r.u32()?)
    } else {
        trex.size
    };
    let def_flags = if tf_flags & 0x20 != 0 {
        r.u32()?
    } else {
        trex.flags
    };
    if !r.is_empty() {
        return None;
    }

    let mut r = Reader::new(tfdt?);
    let base_decode_time = match r.u32()? >> 24 {
        0 => u64::from(r.u32()?),
        1 => r.u64()?,
        _ => return None,
    };
    if !r.is_empty() {
        return None;
    }

    if truns.is_empty() {
        return None;
    }
    let mut m = Traf {
        track_id,
        base_decode_time,
        duration: 0,
        samples: 0,
        sizes: 0,
        starts_with_key: false,
        truns: Vec::with_capacity(truns.len()),
        base_data_offset,
        default_base_is_moof: tf_flags & 0x02_0000 != 0,
    };
    for trun in truns {
        let mut r = Reader::new(trun);
        let flags = r.u32()? & 0x00ff_ffff;
        let count = r.u32()?;
        let data_offset = if flags & 0x001 != 0 {
            Some(r.i32()?)
        } else {
            None
        };
        let first_flags = if flags & 0x004 != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        let per_sample: u64 = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&bit| flags & bit != 0)
            .map(|_| 4)
            .sum();
        // The entries must fill the rest of the box exactly; this bounds `count` too.
        if u64::from(count).checked_mul(per_sample)? != r.remaining() as u64 {
            return None;
        }
        if flags & 0x200 == 0 && def_size.is_none() && count != 0 {
            return None; // No way to know the sample sizes.
        }
        if count != 0 && m.samples == 0 {
            // The fragment's first sample: its flags come from first-sample-flags, its own entry
            // (the first 0x400 word after an optional duration and size), or the defaults.
            let own = if flags & 0x400 != 0 {
                let skip = 4 * (usize::from(flags & 0x100 != 0) + usize::from(flags & 0x200 != 0));
                be_u32(r.0, skip)
            } else {
                None
            };
            let f = first_flags.or(own).unwrap_or(def_flags);
            m.starts_with_key = f & NON_SYNC == 0;
        }
        let mut run_sizes = 0u64;
        if per_sample == 0 {
            // Every sample takes the defaults: multiply rather than loop over an untrusted count.
            let n = u64::from(count);
            let size = u64::from(def_size.unwrap_or(0));
            m.duration = m
                .duration
                .checked_add(n.checked_mul(u64::from(def_duration))?)?;
            run_sizes = n.checked_mul(size)?;
        } else {
            // Bounded: each iteration consumes `per_sample` (> 0) bytes of the box.
            for _ in 0..count {
                let duration = if flags & 0x100 != 0 {
                    r.u32()?
                } else {
                    def_duration
                };
                let size = if flags & 0x200 != 0 {
                    r.u32()?
                } else {
                    def_size?
                };
                if flags & 0x400 != 0 {
                    r.u32()?; // sample_flags: only the first sample's matter (read above).
                }
                if flags & 0x800 != 0 {
                    r.u32()?; // composition time offset
                }
                m.duration = m.duration.checked_add(u64::from(duration))?;
                run_sizes = run_sizes.checked_add(u64::from(size))?;
            }
        }
        m.samples = m.samples.checked_add(count)?;
        m.sizes = m.sizes.checked_add(run_sizes)?;
        m.truns.push(Trun {
            data_offset,
            sizes: run_sizes,
        });
    }
    if m.samples == 0 {
        return None;
    }
    Some(m)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Big-endian cursor that returns `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader(b)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }

    fn remaining(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;
    use crate::fmp4::{AudioSample, Sample, fragment, fragment_av, init_segment, init_segment_av};
    use crate::{AccessUnit, AudioCodec, AudioParams, Codec, VideoParams, split_access_units};
    use std::io::{Read, Seek, SeekFrom};

    /// A file as a [`Source`] (the tests compare the streaming scan of a file with the scan of
    /// its bytes; `recorder::scan::scan_file` is the production one).
    struct FileSource {
        file: std::fs::File,
        len: u64,
    }

    impl Source for FileSource {
        type Err = std::io::Error;

        fn size(&self) -> u64 {
            self.len
        }

        fn read(&mut self, off: u64, len: usize) -> Result<Cow<'_, [u8]>, Self::Err> {
            let mut buf = vec![0; len];
            self.file.seek(SeekFrom::Start(off))?;
            self.file.read_exact(&mut buf)?;
            Ok(Cow::Owned(buf))
        }
    }

    fn scan_file(path: &std::path::Path) -> std::io::Result<Scan> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        scan_source(&mut FileSource { file, len })
    }

    fn clip(codec: Codec) -> (VideoParams, Vec<AccessUnit>) {
        let data: &[u8] = match codec {
            Codec::H264 => include_bytes!("../../../fixtures/clips/h264_a.h264"),
            Codec::H265 => include_bytes!("../../../fixtures/clips/h265_a.h265"),
        };
        let aus = split_access_units(codec, data);
        let params = VideoParams::from_key_access_unit(codec, &aus[0].data, 1).unwrap();
        (params, aus)
    }

    /// A segment file of `n` fragments, each the first `per_gop` access units of one GOP, and the
    /// fragments a scan should report.
    fn segment(codec: Codec, n: usize, per_gop: usize) -> (Vec<u8>, u64, Vec<FragmentInfo>) {
        let (params, aus) = clip(codec);
        let mut out = init_segment(&params).unwrap();
        let init_len = out.len() as u64;
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        assert!(keys.len() >= n, "fixture has {} GOPs", keys.len());
        let mut expected = Vec::new();
        let mut t = 1_000_000u64;
        for (f, &k) in keys.iter().take(n).enumerate() {
            // Uneven durations so a wrong sum shows.
            let samples: Vec<Sample> = aus[k..k + per_gop]
                .iter()
                .enumerate()
                .map(|(i, au)| Sample {
                    data: &au.data,
                    duration: 3600 + i as u32,
                    is_key: au.is_key,
                })
                .collect();
            let seq = f as u32 + 1;
            let frag = fragment(seq, t, &samples).unwrap();
            let duration: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
            expected.push(FragmentInfo {
                offset: out.len() as u64,
                len: frag.len() as u64,
                sequence: seq,
                base_decode_time: t,
                wall_90k: t,
                duration,
                samples: per_gop as u32,
                starts_with_key: true,
                audio_samples: 0,
            });
            out.extend_from_slice(&frag);
            t += duration;
        }
        (out, init_len, expected)
    }

    /// Like [`segment`] with an AAC track: fragment `f` also holds `3 + f` audio frames of
    /// uneven sizes.
    fn av_segment(n: usize, per_gop: usize) -> (Vec<u8>, u64, Vec<FragmentInfo>) {
        let (params, aus) = clip(Codec::H264);
        let audio_params = AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: 16_000,
            channels: 1,
            rfc6381: "mp4a.40.2".to_owned(),
            config: bytes::Bytes::from_static(&[0x14, 0x08]),
        };
        let mut out = init_segment_av(&params, Some(&audio_params)).unwrap();
        let init_len = out.len() as u64;
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        let mut expected = Vec::new();
        let mut t = 1_000_000u64;
        let mut audio_t = 5_000u64;
        for (f, &k) in keys.iter().take(n).enumerate() {
            let samples: Vec<Sample> = aus[k..k + per_gop]
                .iter()
                .map(|au| Sample {
                    data: &au.data,
                    duration: 3600,
                    is_key: au.is_key,
                })
                .collect();
            let frames: Vec<Vec<u8>> = (0..3 + f).map(|i| vec![0x21; 40 + 7 * i]).collect();
            let audio: Vec<AudioSample> = frames
                .iter()
                .map(|d| AudioSample {
                    data: d,
                    duration: 1024,
                })
                .collect();
            let seq = f as u32 + 1;
            let frag = fragment_av(seq, t, &samples, Some((audio_t, &audio))).unwrap();
            expected.push(FragmentInfo {
                offset: out.len() as u64,
                len: frag.len() as u64,
                sequence: seq,
                base_decode_time: t,
                wall_90k: t,
                duration: 3600 * per_gop as u64,
                samples: per_gop as u32,
                starts_with_key: true,
                audio_samples: audio.len() as u32,
            });
            out.extend_from_slice(&frag);
            t += 3600 * per_gop as u64;
            audio_t += 1024 * audio.len() as u64;
        }
        (out, init_len, expected)
    }

    fn end(f: &FragmentInfo) -> u64 {
        f.offset + f.len
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "vantage-scan-{}-{name}-{:?}.mp4",
            std::process::id(),
            std::thread::current().id()
        ))
    }

    /// Offset of the first `fourcc` in `b` at or after `from`.
    fn find(b: &[u8], from: usize, fourcc: &[u8; 4]) -> usize {
        from + b[from..].windows(4).position(|w| w == fourcc).unwrap()
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn three_fragments_scan_exactly() {
        let (buf, init_len, expected) = segment(Codec::H264, 3, 4);
        let s = scan_bytes(&buf);
        assert_eq!(s.codec.as_deref(), Some("h264"));
        assert_eq!(s.audio, None);
        assert_eq!(s.init_len, init_len);
        assert_eq!(s.fragments, expected);
        assert_eq!(s.valid_len, buf.len() as u64);
        assert_eq!(s.total_len, buf.len() as u64);
        assert_eq!(s.start_90k(), Some(1_000_000));
        let last = &expected[2];
        assert_eq!(s.end_90k(), Some(last.base_decode_time + last.duration));
        assert_eq!(last.duration, 3600 * 4 + 6);

        // The streaming file scan agrees.
        let p = temp_path("three");
        std::fs::write(&p, &buf).unwrap();
        let f = scan_file(&p);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(f.unwrap(), s);
    }

    /// `buf` (from [`segment`] or [`av_segment`], init segment of `init_len` bytes) with the init
    /// segment the recorder writes: edit lists that start presentation at the first `tfdt`, and
    /// `mvhd` version 1 with the wall-clock start. `expected` is moved to the new offsets.
    fn with_anchored_init(
        buf: &[u8],
        init_len: u64,
        audio: Option<&AudioParams>,
        expected: &[FragmentInfo],
    ) -> (Vec<u8>, u64, Vec<FragmentInfo>) {
        let (params, _) = clip(Codec::H264);
        let start = crate::fmp4::SegmentStart {
            decode_time_90k: expected[0].base_decode_time,
            unix_secs: 1_796_083_200,
        };
        let mut out = crate::fmp4::init_segment_at(&params, audio, start).unwrap();
        assert!(find(&out, 0, b"edts") > 0);
        let new_init = out.len() as u64;
        out.extend_from_slice(&buf[init_len as usize..]);
        let moved = expected
            .iter()
            .map(|f| FragmentInfo {
                offset: f.offset - init_len + new_init,
                ..f.clone()
            })
            .collect();
        (out, new_init, moved)
    }

    #[test]
    fn files_with_edit_lists_scan_the_same() {
        let (buf, init_len, expected) = segment(Codec::H264, 3, 4);
        let (buf, init_len, expected) = with_anchored_init(&buf, init_len, None, &expected);
        let s = scan_bytes(&buf);
        assert_eq!(s.codec.as_deref(), Some("h264"));
        assert_eq!(s.init_len, init_len);
        assert_eq!(s.fragments, expected);
        assert_eq!(
            s.start_90k(),
            Some(1_000_000),
            "tfdt, not presentation time"
        );
        check_every_truncation("edts", &buf, init_len, &expected);

        let (buf, init_len, expected) = av_segment(3, 4);
        let audio = AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: 16_000,
            channels: 1,
            rfc6381: "mp4a.40.2".to_owned(),
            config: bytes::Bytes::from_static(&[0x14, 0x08]),
        };
        let (buf, init_len, expected) = with_anchored_init(&buf, init_len, Some(&audio), &expected);
        let s = scan_bytes(&buf);
        assert_eq!(s.audio.as_deref(), Some("aac"));
        assert_eq!(s.fragments, expected);
        check_every_truncation("edts-av", &buf, init_len, &expected);
    }

    /// Scans every prefix of `buf` (a file whose init segment is `init_len` bytes and whose
    /// fragments are `expected`): the scan stops at the last whole fragment, and the file path
    /// (sampled: it is slower) gives the same answer.
    fn check_every_truncation(name: &str, buf: &[u8], init_len: u64, expected: &[FragmentInfo]) {
        let has_audio = scan_bytes(buf).audio.is_some();
        let p = temp_path(name);
        for cut in 0..=buf.len() {
            let prefix = &buf[..cut];
            let s = scan_bytes(prefix);
            let whole: Vec<FragmentInfo> = expected
                .iter()
                .filter(|f| end(f) <= cut as u64)
                .cloned()
                .collect();
            let want_valid =
                whole
                    .last()
                    .map(end)
                    .unwrap_or(if init_len <= cut as u64 { init_len } else { 0 });
            assert_eq!(s.valid_len, want_valid, "cut at {cut}");
            assert_eq!(s.fragments, whole, "cut at {cut}");
            assert_eq!(s.total_len, cut as u64);
            assert_eq!(
                s.init_len,
                if cut as u64 >= init_len { init_len } else { 0 }
            );
            assert_eq!(s.codec.is_some(), cut as u64 >= init_len);
            assert_eq!(
                s.audio.is_some(),
                has_audio && cut as u64 >= init_len,
                "cut at {cut}"
            );
            if cut % 251 == 0 || cut + 1 == buf.len() {
                std::fs::write(&p, prefix).unwrap();
                assert_eq!(scan_file(&p).unwrap(), s, "file cut at {cut}");
            }
        }
        std::fs::remove_file(&p).unwrap();
    }

    /// A file as the recorder writes it: init segment with creation times and no edit list,
    /// fragments whose `tfdt`s start at 0, each after a `prft` with its wall-clock time. The scan
    /// reports the wall-clock times (exact to the tick) and counts each `prft` in its fragment,
    /// so a file torn after a `prft` is cut back before it.
    #[test]
    fn recorded_files_with_prft_scan_wall_clock_times() {
        let (params, aus) = clip(Codec::H264);
        // 2026-12-01T00:00:00Z plus an odd number of ticks.
        let wall0: i64 = 1_796_083_200 * 90_000 + 1_234;
        let start = crate::fmp4::SegmentStart {
            decode_time_90k: 0,
            unix_secs: wall0 / 90_000,
        };
        let mut buf = crate::fmp4::init_segment_at(&params, None, start).unwrap();
        assert!(buf.windows(4).all(|w| w != b"edts"), "no edit list");
        let init_len = buf.len() as u64;
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        let mut expected = Vec::new();
        let mut t = 0u64;
        for (f, &k) in keys.iter().take(3).enumerate() {
            let samples: Vec<Sample> = aus[k..k + 3]
                .iter()
                .map(|au| Sample {
                    data: &au.data,
                    duration: 3601,
                    is_key: au.is_key,
                })
                .collect();
            let seq = f as u32 + 1;
            let wall = wall0 + t as i64;
            let mut frag = crate::fmp4::prft(wall, t).to_vec();
            frag.extend(fragment(seq, t, &samples).unwrap());
            expected.push(FragmentInfo {
                offset: buf.len() as u64,
                len: frag.len() as u64,
                sequence: seq,
                base_decode_time: t,
                wall_90k: wall as u64,
                duration: 3 * 3601,
                samples: 3,
                starts_with_key: true,
                audio_samples: 0,
            });
            buf.extend_from_slice(&frag);
            t += 3 * 3601;
        }
        let s = scan_bytes(&buf);
        assert_eq!(s.fragments, expected);
        assert_eq!(s.start_90k(), Some(wall0 as u64), "wall clock, not tfdt");
        assert_eq!(s.end_90k(), Some(wall0 as u64 + t));
        assert_eq!(s.fragments[0].base_decode_time, 0);
        check_every_truncation("prft", &buf, init_len, &expected);

        // A prft of another track, or one not right before the moof, is not the fragment's.
        let mut other = buf[..init_len as usize].to_vec();
        let mut p = crate::fmp4::prft(wall0, 0);
        p[12..16].copy_from_slice(&9u32.to_be_bytes());
        other.extend_from_slice(&p);
        other.extend_from_slice(&buf[(init_len as usize + crate::fmp4::PRFT_LEN)..]);
        let s = scan_bytes(&other);
        assert_eq!(s.fragments[0].wall_90k, 0, "the tfdt");
        assert_eq!(
            s.fragments[0].offset,
            init_len + crate::fmp4::PRFT_LEN as u64
        );
        assert_eq!(s.fragments[1], expected[1]);
    }

    #[test]
    fn ntp_times_round_trip_exactly() {
        for t in [
            0i64,
            1,
            89_999,
            1_796_083_200 * 90_000 + 1_234,
            // After the NTP era rolls over (2036-02-07) and near the end of era 1.
            2_085_978_496 * 90_000 + 45_000,
            4_000_000_000 * 90_000 + 89_999,
        ] {
            let p = crate::fmp4::prft(t, 7);
            let ntp = u64::from_be_bytes(p[16..24].try_into().unwrap());
            assert_eq!(crate::fmp4::ntp_to_unix_90k(ntp), t, "{t}");
            assert_eq!(&p[24..], &7u64.to_be_bytes());
            assert_eq!(&p[4..8], b"prft");
        }
        // 2026-12-01T00:00:00Z in NTP seconds (RFC 5905: 1900 epoch).
        let p = crate::fmp4::prft(1_796_083_200 * 90_000, 0);
        assert_eq!(
            u32::from_be_bytes(p[16..20].try_into().unwrap()),
            4_005_072_000
        );
        assert_eq!(&p[20..24], &[0; 4]);
    }

    #[test]
    fn every_truncation_stops_at_last_whole_fragment() {
        let (buf, init_len, expected) = segment(Codec::H264, 3, 2);
        check_every_truncation("every", &buf, init_len, &expected);
    }

    #[test]
    fn corrupt_sizes_stop_the_scan() {
        let (buf, _, expected) = segment(Codec::H264, 3, 2);
        let f1 = expected[1].offset as usize;
        let moof_len = u32::from_be_bytes(buf[f1..f1 + 4].try_into().unwrap()) as usize;
        let mdat = f1 + moof_len;
        let mdat_len = u32::from_be_bytes(buf[mdat..mdat + 4].try_into().unwrap());
        assert_eq!(&buf[mdat + 4..mdat + 8], b"mdat");

        // (what, where, new 32-bit size, optional largesize)
        let cases: [(&str, usize, u32, Option<u64>); 8] = [
            ("mdat smaller than trun", mdat, mdat_len - 1, None),
            ("mdat larger than trun", mdat, mdat_len + 1, None),
            ("mdat size 0", mdat, 0, None),
            ("mdat past end of file", mdat, u32::MAX, None),
            ("mdat size below header", mdat, 7, None),
            ("mdat huge largesize", mdat, 1, Some(u64::MAX)),
            ("moof size 0", f1, 0, None),
            ("moof largesize below header", f1, 1, Some(15)),
        ];
        for (what, at, size, large) in cases {
            let mut b = buf.clone();
            put32(&mut b, at, size);
            if let Some(l) = large {
                b[at + 8..at + 16].copy_from_slice(&l.to_be_bytes());
            }
            let s = scan_bytes(&b);
            assert_eq!(s.fragments, expected[..1], "{what}");
            assert_eq!(s.valid_len, end(&expected[0]), "{what}");
        }

        // A moof whose trun claims one sample more than its entries hold.
        let mut b = buf.clone();
        let trun = find(&b, f1, b"trun");
        let count = u32::from_be_bytes(b[trun + 8..trun + 12].try_into().unwrap());
        put32(&mut b, trun + 8, count + 1);
        assert_eq!(scan_bytes(&b).valid_len, end(&expected[0]));

        // A data offset that does not point at the mdat payload.
        let mut b = buf.clone();
        let off = u32::from_be_bytes(b[trun + 12..trun + 16].try_into().unwrap());
        put32(&mut b, trun + 12, off + 4);
        assert_eq!(scan_bytes(&b).valid_len, end(&expected[0]));
    }

    #[test]
    fn largesize_mdat_is_accepted() {
        let (buf, _, expected) = segment(Codec::H264, 3, 2);
        let f1 = expected[1].offset as usize;
        let moof_len = u32::from_be_bytes(buf[f1..f1 + 4].try_into().unwrap()) as usize;
        let mdat = f1 + moof_len;
        let mdat_len = u32::from_be_bytes(buf[mdat..mdat + 4].try_into().unwrap()) as u64;

        let mut b = buf[..mdat].to_vec();
        let trun = find(&b, f1, b"trun");
        let off = u32::from_be_bytes(b[trun + 12..trun + 16].try_into().unwrap());
        put32(&mut b, trun + 12, off + 8);
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(b"mdat");
        b.extend_from_slice(&(mdat_len + 8).to_be_bytes());
        b.extend_from_slice(&buf[mdat + 8..]);

        let s = scan_bytes(&b);
        assert_eq!(s.fragments.len(), 3);
        assert_eq!(s.fragments[1].len, expected[1].len + 8);
        assert_eq!(s.fragments[2].offset, expected[2].offset + 8);
        assert_eq!(s.valid_len, b.len() as u64);
    }

    #[test]
    fn filler_boxes_between_fragments() {
        let (buf, init_len, expected) = segment(Codec::H264, 2, 2);
        let split = end(&expected[0]) as usize;
        let filler = |fourcc: &[u8; 4]| {
            let mut f = 12u32.to_be_bytes().to_vec();
            f.extend_from_slice(fourcc);
            f.extend_from_slice(&[0; 4]);
            f
        };
        let with = |fourcc: &[u8; 4]| [&buf[..split], &filler(fourcc), &buf[split..]].concat();

        let b = with(b"free");
        let s = scan_bytes(&b);
        assert_eq!(s.fragments.len(), 2);
        assert_eq!(s.valid_len, b.len() as u64);

        // An unknown box is not skipped.
        let s = scan_bytes(&with(b"junk"));
        assert_eq!(s.valid_len, split as u64);

        // A trailing filler is not part of the valid length; a free before the first fragment is.
        let b = [&buf[..], &filler(b"free")].concat();
        assert_eq!(scan_bytes(&b).valid_len, buf.len() as u64);
        let b = [&buf[..init_len as usize], &filler(b"free")].concat();
        assert_eq!(scan_bytes(&b).valid_len, init_len);
        assert_eq!(scan_bytes(&b).total_len, init_len + 12);
    }

    #[test]
    fn codec_detection() {
        let (h264, init264, _) = segment(Codec::H264, 1, 1);
        let (h265, _, _) = segment(Codec::H265, 1, 1);
        assert_eq!(scan_bytes(&h264).codec.as_deref(), Some("h264"));
        let s = scan_bytes(&h265);
        assert_eq!(s.codec.as_deref(), Some("h265"));
        assert_eq!(s.fragments.len(), 1);
        assert_eq!(s.valid_len, h265.len() as u64);

        // hev1 is H.265 too; an unknown entry leaves the codec unknown but the file valid.
        let mut b = h265.clone();
        let at = find(&b, 0, b"hvc1");
        b[at..at + 4].copy_from_slice(b"hev1");
        assert_eq!(scan_bytes(&b).codec.as_deref(), Some("h265"));
        let mut b = h264.clone();
        let at = find(&b, 0, b"avc1");
        b[at..at + 4].copy_from_slice(b"mp4v");
        let s = scan_bytes(&b);
        assert_eq!(s.codec, None);
        assert_eq!(s.init_len, init264);
        assert_eq!(s.valid_len, h264.len() as u64);
    }

    /// A box from its fourcc and body.
    fn bx(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = (body.len() as u32 + 8).to_be_bytes().to_vec();
        b.extend_from_slice(fourcc);
        b.extend_from_slice(body);
        b
    }

    /// A hand-built fragment with the given tfhd and trun bodies and `payload` mdat bytes.
    fn hand_fragment(tfhd: &[u8], trun: &[u8], payload: usize) -> Vec<u8> {
        let mfhd = bx(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 9]);
        let mut tfdt = vec![0, 0, 0, 0];
        tfdt.extend_from_slice(&5000u32.to_be_bytes()); // version 0: 32-bit time
        let traf = bx(
            b"traf",
            &[bx(b"tfhd", tfhd), bx(b"tfdt", &tfdt), bx(b"trun", trun)].concat(),
        );
        let moof = bx(b"moof", &[mfhd, traf].concat());
        [moof, bx(b"mdat", &vec![0xab; payload])].concat()
    }

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn trun_flag_variants() {
        let (params, _) = clip(Codec::H264);
        let init = init_segment(&params).unwrap();

        // tfhd default duration (0x08) and size (0x10); trun with only first-sample-flags (0x4).
        let tfhd = words(&[0x02_0018, 1, 3000, 100]);
        let trun = words(&[0x000004, 3, crate::fmp4::SYNC_SAMPLE_FLAGS]);
        let b = [&init[..], &hand_fragment(&tfhd, &trun, 300)].concat();
        let s = scan_bytes(&b);
        assert_eq!(s.valid_len, b.len() as u64, "{s:?}");
        let f = &s.fragments[0];
        assert_eq!(
            (f.sequence, f.base_decode_time, f.duration, f.samples),
            (9, 5000, 9000, 3)
        );
        assert!(f.starts_with_key);

        // Data offset, size, flags and composition offsets per sample; the first is non-sync.
        let tfhd = words(&[0x02_0008, 1, 1500]);
        let nonsync = crate::fmp4::NON_SYNC_SAMPLE_FLAGS;
        let entries = [10, nonsync, 0, 20, nonsync, 0];
        let mut t = vec![0x000E01, 2, 0];
        t.extend_from_slice(&entries);
        let frag = |t: &[u32], payload| {
            let mut f = hand_fragment(&tfhd, &words(t), payload);
            // Patch the data offset to the mdat payload: moof size + 8.
            let moof_len = u32::from_be_bytes(f[..4].try_into().unwrap());
            let trun = find(&f, 0, b"trun");
            put32(&mut f, trun + 12, moof_len + 8);
            f
        };
        let b = [&init[..], &frag(&t, 30)].concat();
        let s = scan_bytes(&b);
        assert_eq!(s.valid_len, b.len() as u64, "{s:?}");
        assert_eq!((s.fragments[0].duration, s.fragments[0].samples), (3000, 2));
        assert!(!s.fragments[0].starts_with_key);

        // Same, but the payload does not match the sizes.
        let b = [&init[..], &frag(&t, 31)].concat();
        assert_eq!(scan_bytes(&b).valid_len, init.len() as u64);
        // Entries that do not match the flags (an extra cts word per sample).
        t[0] = 0x000601;
        let b = [&init[..], &frag(&t, 30)].concat();
        assert_eq!(scan_bytes(&b).valid_len, init.len() as u64);
        // A huge sample count with no per-sample fields is summed, not looped over.
        let tfhd_defaults = words(&[0x02_0018, 1, 1, 0]);
        let trun = words(&[0, u32::MAX]);
        let b = [&init[..], &hand_fragment(&tfhd_defaults, &trun, 0)].concat();
        let s = scan_bytes(&b);
        assert_eq!(s.valid_len, b.len() as u64);
        assert_eq!(s.fragments[0].samples, u32::MAX);
        assert_eq!(s.fragments[0].duration, u64::from(u32::MAX));
        // No sizes anywhere (no trun sizes, no tfhd or trex default).
        let tfhd_no_size = words(&[0x02_0008, 1, 1500]);
        let trun = words(&[0x000004, 3, 0]);
        let b = [&init[..], &hand_fragment(&tfhd_no_size, &trun, 0)].concat();
        assert_eq!(scan_bytes(&b).valid_len, init.len() as u64);
    }

    #[test]
    fn box_headers() {
        let h = |size: u32, large: Option<u64>| {
            let mut b = size.to_be_bytes().to_vec();
            b.extend_from_slice(b"mdat");
            if let Some(l) = large {
                b.extend_from_slice(&l.to_be_bytes());
            }
            parse_header(&b)
        };
        assert!(matches!(h(0, None), ParsedHeader::Invalid));
        assert!(matches!(h(7, None), ParsedHeader::Invalid));
        assert!(matches!(h(1, Some(15)), ParsedHeader::Invalid));
        assert!(matches!(h(1, None), ParsedHeader::Incomplete));
        assert!(matches!(
            parse_header(&[0, 0, 0, 9, b'm']),
            ParsedHeader::Incomplete
        ));
        assert!(matches!(
            h(8, None),
            ParsedHeader::Ok(Header {
                header_len: 8,
                size: 8,
                fourcc: [b'm', b'd', b'a', b't']
            })
        ));
        assert!(matches!(
            h(1, Some(1 << 40)),
            ParsedHeader::Ok(Header {
                header_len: 16,
                size: 0x100_0000_0000,
                ..
            })
        ));
    }

    /// Scans 3000 copies of `buf`, each with one byte changed and cut at some length
    /// (deterministic xorshift from `seed`): no panic, and the scan describes a valid prefix.
    fn scan_mutations(buf: &[u8], mut x: u64) {
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = buf.to_vec();
            let at = (x % b.len() as u64) as usize;
            b[at] = (x >> 32) as u8;
            let cut = ((x >> 40) % (b.len() as u64 + 1)) as usize;
            let s = scan_bytes(&b[..cut]);
            assert!(s.valid_len <= cut as u64);
            assert!(s.init_len <= s.valid_len);
            let mut pos = s.init_len;
            for f in &s.fragments {
                assert!(f.offset >= pos);
                pos = f.offset + f.len;
            }
            assert_eq!(s.fragments.last().map_or(s.init_len, end), s.valid_len);
        }
    }

    #[test]
    fn mutations_never_panic() {
        let (buf, _, _) = segment(Codec::H265, 2, 2);
        scan_mutations(&buf, 0x2545_f491_4f6c_dd1d);
    }
    #[test]
    fn av_file_scans_fully() {
        let (buf, init_len, expected) = av_segment(3, 4);
        let s = scan_bytes(&buf);
        assert_eq!(s.codec.as_deref(), Some("h264"));
        assert_eq!(s.audio.as_deref(), Some("aac"));
        assert_eq!(s.init_len, init_len);
        assert_eq!(s.fragments, expected);
        assert_eq!(
            s.fragments
                .iter()
                .map(|f| f.audio_samples)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(s.valid_len, buf.len() as u64);
        assert_eq!(s.start_90k(), Some(1_000_000));
        assert_eq!(s.end_90k(), Some(1_000_000 + 3 * 4 * 3600));

        let p = temp_path("av");
        std::fs::write(&p, &buf).unwrap();
        let f = scan_file(&p);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(f.unwrap(), s);
    }

    #[test]
    fn every_truncation_of_av_file_stops_at_last_whole_fragment() {
        let (buf, init_len, expected) = av_segment(3, 2);
        assert!(scan_bytes(&buf).audio.is_some());
        check_every_truncation("every-av", &buf, init_len, &expected);
    }

    #[test]
    fn inconsistent_audio_traf_stops_the_scan() {
        let (buf, _, expected) = av_segment(3, 2);
        let f1 = expected[1].offset as usize;
        let video_trun = find(&buf, f1, b"trun");
        let audio_trun = find(&buf, video_trun + 4, b"trun");
        assert!(audio_trun < end(&expected[1]) as usize);
        // version/flags at +4, sample_count +8, data_offset +12, then (duration, size) pairs.
        assert_eq!(
            u32::from_be_bytes(buf[audio_trun + 4..audio_trun + 8].try_into().unwrap()),
            0x301
        );
        let first_audio_size = audio_trun + 20;
        let video_size = video_trun + 20;
        let get = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        let stops_at_first = |b: &[u8], what: &str| {
            let s = scan_bytes(b);
            assert_eq!(s.fragments, expected[..1], "{what}");
            assert_eq!(s.valid_len, end(&expected[0]), "{what}");
        };

        for delta in [1i64, -1] {
            let mut b = buf.clone();
            let size = get(&b, first_audio_size) as i64 + delta;
            put32(&mut b, first_audio_size, size as u32);
            stops_at_first(&b, &format!("audio size off by {delta}"));
        }
        // Same total, but the audio no longer starts where the video ends.
        let mut b = buf.clone();
        let v = get(&b, video_size);
        put32(&mut b, video_size, v - 1);
        let a = get(&b, first_audio_size);
        put32(&mut b, first_audio_size, a + 1);
        stops_at_first(&b, "video size - 1, audio size + 1");
        // Audio data offset off by one either way, or past the mdat.
        for off in [1i64, -1, 1 << 20] {
            let mut b = buf.clone();
            let o = get(&b, audio_trun + 12) as i64 + off;
            put32(&mut b, audio_trun + 12, o as u32);
            stops_at_first(&b, &format!("audio data offset {off:+}"));
        }
        // One audio sample more than the trun's entries hold.
        let mut b = buf.clone();
        let n = get(&b, audio_trun + 8);
        put32(&mut b, audio_trun + 8, n + 1);
        stops_at_first(&b, "audio sample count");
        // Two video trafs (the audio traf relabelled as track 1).
        let mut b = buf.clone();
        let audio_tfhd = find(&b, video_trun, b"tfhd");
        put32(&mut b, audio_tfhd + 8, 1);
        stops_at_first(&b, "duplicate video traf");
        // A video traf with an unknown track_ID: the first traf stands in for the video track.
        let mut b = buf.clone();
        let video_tfhd = find(&b, f1, b"tfhd");
        put32(&mut b, video_tfhd + 8, 7);
        let s = scan_bytes(&b);
        assert_eq!(s.fragments.len(), 3);
        assert_eq!(s.fragments[1].samples, 2);
        assert_eq!(s.fragments[1].audio_samples, 4);
    }

    #[test]
    fn av_mutations_never_panic() {
        let (buf, _, _) = av_segment(2, 2);
        scan_mutations(&buf, 0x9e37_79b9_7f4a_7c15);
    }

    #[test]
    fn video_track_is_found_by_handler() {
        let (buf, init_len, expected) = av_segment(2, 2);
        // Swap the two traks: the audio trak comes first in the moov.
        let ftyp_len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        let moov = &buf[ftyp_len + 8..init_len as usize];
        let kids = children(moov).unwrap();
        let traks: Vec<&[u8]> = kids
            .iter()
            .filter(|(fc, _)| fc == b"trak")
            .map(|(_, b)| *b)
            .collect();
        assert_eq!(traks.len(), 2);
        let mut body = Vec::new();
        for (fc, b) in &kids {
            let b = match fc {
                b"trak" if *b == traks[0] => traks[1],
                b"trak" => traks[0],
                _ => b,
            };
            body.extend_from_slice(&bx(fc, b));
        }
        let mut b = buf[..ftyp_len].to_vec();
        b.extend_from_slice(&bx(b"moov", &body));
        assert_eq!(b.len() as u64, init_len);
        b.extend_from_slice(&buf[init_len as usize..]);
        let s = scan_bytes(&b);
        assert_eq!(s.codec.as_deref(), Some("h264"));
        assert_eq!(s.audio.as_deref(), Some("aac"));
        assert_eq!(s.fragments, expected);

        // Without an mp4a entry the audio codec is unknown; the fragments still scan.
        let mut b = buf.clone();
        let at = find(&b, 0, b"mp4a");
        b[at..at + 4].copy_from_slice(b"Opus");
        let s = scan_bytes(&b);
        assert_eq!(s.audio, None);
        assert_eq!(s.fragments, expected);
    }
}
