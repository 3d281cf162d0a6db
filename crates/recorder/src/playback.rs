//! Reading recordings back (design 0008): the progressive MP4 of a time range built virtually
//! from segment slices ([`mp4`]), the fragments Media Source Extensions and HLS append
//! ([`init_segment`], [`fragments`]) and the parts of an HLS playlist ([`hls_parts`]).
//!
//! Every function here is blocking (file and index reads): call it from a blocking thread. What a
//! reader will read is pinned ([`crate::pins`]) before its answer is built, and the pin travels
//! with the [`Body`] until it is dropped, so retention never deletes a file under a reader.
//!
//! Times: the index's rows select segments; a segment file's own fragments (its scan, which
//! includes the still-growing tail of a segment being written up to its last complete fragment)
//! give exact times: each fragment's wall-clock time (its `prft`) and its time in the file
//! (`tfdt`). Every fragment starts with a key frame.

use crate::index::{QueryError, Segment, SegmentState};
use crate::pins::PinGuard;
use crate::service::Recorder;
use base::{Error, ErrorKind, bail, err};
use media::mp4::{self, FragmentSamples, InitInfo};
use media::scan::{FragmentInfo, Scan};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

/// 90 kHz ticks per millisecond.
const TICKS_PER_MS: i64 = 90;

/// Two segments follow each other without a gap when the second starts at most this long after
/// the first ends (as the timeline merges them into one run).
const RUN_TOLERANCE_MS: i64 = 1;

/// Bytes read from a file at a time when serving a body.
pub const READ_CHUNK: usize = 256 * 1024;

fn bad(field: &'static str, msg: String) -> QueryError {
    QueryError {
        field: Some(field),
        error: Error::new(ErrorKind::InvalidArgument, msg),
    }
}

fn not_found(field: &'static str, msg: String) -> QueryError {
    QueryError {
        field: Some(field),
        error: Error::new(ErrorKind::NotFound, msg),
    }
}

/// One part of a [`Body`]: bytes built in memory, or a range of a source file.
#[derive(Clone, Debug)]
enum Part {
    Bytes(std::sync::Arc<[u8]>),
    File { source: u32, offset: u64, len: u64 },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::File { len, .. } => *len,
        }
    }
}

/// A response body described as parts (bytes in memory and ranges of segment files), with the
/// pin that keeps its files from retention until it is dropped. Its bytes are read on demand,
/// for any range: nothing is copied to disk.
pub struct Body {
    parts: Vec<Part>,
    /// Where each part starts.
    starts: Vec<u64>,
    len: u64,
    /// Source files by the numbers the parts use, opened on first read.
    files: Vec<(PathBuf, Option<File>)>,
    _pin: PinGuard,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("len", &self.len)
            .field("parts", &self.parts.len())
            .field("files", &self.files.len())
            .finish()
    }
}

impl Body {
    fn new(parts: Vec<Part>, files: Vec<PathBuf>, pin: PinGuard) -> Self {
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0;
        for p in &parts {
            starts.push(len);
            len += p.len();
        }
        Body {
            parts,
            starts,
            len,
            files: files.into_iter().map(|p| (p, None)).collect(),
            _pin: pin,
        }
    }

    /// Bytes in all.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Restarts the maximum age of the body's pins at `now` ([`PinGuard::renew`]): a reader
    /// that makes progress keeps its segments.
    pub fn renew_pin(&self, now: Instant) {
        self._pin.renew(now);
    }

    /// Reads the bytes of `range` (cut to the body) in order, handing them to `sink` in chunks
    /// of at most [`READ_CHUNK`]; stops at the first error of a read or of the sink. A file that
    /// is shorter than the part says (it was cut since) fails with `DataLoss`.
    pub fn read_range(
        &mut self,
        range: Range<u64>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (from, to) = (range.start.min(self.len), range.end.min(self.len));
        if from >= to {
            return Ok(());
        }
        // The first part that holds `from`.
        let first = self
            .starts
            .partition_point(|&s| s <= from)
            .saturating_sub(1);
        let mut buf = Vec::new();
        for i in first..self.parts.len() {
            let (Some(&start), Some(part)) = (self.starts.get(i), self.parts.get(i)) else {
                break;
            };
            if start >= to {
                break;
            }
            let lo = from.saturating_sub(start);
            let hi = (to - start).min(part.len());
            if lo >= hi {
                continue;
            }
            match part {
                Part::Bytes(b) => {
                    let (lo, hi) = (lo as usize, hi as usize);
                    if let Some(s) = b.get(lo..hi) {
                        sink(s)?;
                    }
                }
                Part::File { source, offset, .. } => {
                    let (source, offset) = (*source, *offset);
                    let mut at = lo;
                    while at < hi {
                        let n = ((hi - at) as usize).min(READ_CHUNK);
                        buf.resize(n, 0);
                        self.read_file(source, offset + at, &mut buf)?;
                        sink(&buf)?;
                        at += n as u64;
                    }
                }
            }
        }
        Ok(())
    }

    fn read_file(&mut self, source: u32, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let Some((path, file)) = self.files.get_mut(source as usize) else {
            bail!(
                Internal,
                "body part names source {source}, which it does not have"
            );
        };
        if file.is_none() {
            *file = Some(
                File::open(&*path)
                    .map_err(|e| err!(DataLoss, "opening {}: {e}", path.display()))?,
            );
        }
        let Some(f) = file.as_ref() else {
            bail!(Internal, "file not open");
        };
        f.read_exact_at(buf, offset).map_err(|e| {
            err!(
                DataLoss,
                "reading {} bytes at {offset} of {}: {e}",
                buf.len(),
                path.display()
            )
        })
    }

    /// The whole body as bytes (tests and small bodies).
    pub fn to_vec(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.read_range(0..self.len, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }
}

/// A gap the MP4 left out (`skip_gaps`): where it is in the file's presentation and what
/// wall-clock time it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemovedGap {
    /// Presentation time in the file at which the next recording starts, 90 kHz.
    pub at_90k: i64,
    /// The gap, ms since the Unix epoch.
    pub wall_start_ms: i64,
    pub wall_end_ms: i64,
}

/// What to play.
#[derive(Clone, Debug)]
pub struct Mp4Request {
    pub camera_id: String,
    /// `[start_ms, end_ms)`, ms since the Unix epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Go on past gaps (removing them from the timeline) instead of ending at the first.
    pub skip_gaps: bool,
    /// Include the recorded audio.
    pub audio: bool,
    /// The `moov`'s title and comment.
    pub title: Option<String>,
    pub comment: Option<String>,
}

/// A progressive MP4 of recorded video, ready to serve.
#[derive(Debug)]
pub struct Mp4 {
    pub body: Body,
    /// Strong entity tag: changes exactly when the bytes would.
    pub etag: String,
    /// What the file presents: from `start_ms` (the request's start, or the first recording
    /// after it with `skip_gaps`) for `duration_90k`.
    pub start_ms: i64,
    pub duration_90k: u64,
    pub video_frames: u64,
    pub has_audio: bool,
    /// Gaps left out (`skip_gaps`).
    pub gaps: Vec<RemovedGap>,
    /// The recording ended (a gap, or nothing recorded yet) before the requested end, at this
    /// wall-clock time (ms).
    pub ended_early_ms: Option<i64>,
}

/// A segment as a reader sees it: its row, its scan and its init segment.
struct Opened {
    seg: Segment,
    path: PathBuf,
    /// Open for reading the fragments the scan found.
    file: File,
    scan: Scan,
    init: InitInfo,
}

/// The segments of `camera_id` overlapping `[start_ms, end_ms)` (bounded: see
/// [`crate::index::Reader::segments`]), pinned for the caller.
fn pinned_segments(
    rec: &Recorder,
    camera_id: &str,
    start_ms: i64,
    end_ms: i64,
    now: Instant,
) -> Result<(Vec<Segment>, PinGuard), QueryError> {
    let reader = rec.reader();
    // A segment retention claimed between the query and the pin is gone: query again.
    for _ in 0..3 {
        let segs = reader.segments(camera_id, start_ms, end_ms)?;
        let ids: Vec<i64> = segs.iter().map(|s| s.id).collect();
        if let Ok(pin) = rec.pins().pin(&ids, now) {
            return Ok((segs, pin));
        }
    }
    Err(err!(
        Unavailable,
        "recordings of `{camera_id}` are being deleted; try again"
    )
    .into())
}

/// Opens a segment file, scans it and reads its init segment; `None` when the file is gone or
/// holds no complete fragment yet. The file stays open for reading its fragments.
fn open_segment(rec: &Recorder, seg: Segment) -> Result<Option<Opened>, Error> {
    let path = rec.segment_path(&seg.path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err!(DataLoss, "opening {}: {e}", path.display())),
    };
    let scan = crate::scan::scan_opened(&file, &path)?;
    if scan.fragments.is_empty() || scan.init_len == 0 {
        return Ok(None);
    }
    let init_len = usize::try_from(scan.init_len)
        .ok()
        .filter(|&n| n <= mp4::MAX_INIT_LEN)
        .ok_or_else(|| err!(DataLoss, "{}: init segment too large", path.display()))?;
    let init_bytes = read_at(&file, &path, 0, init_len)?;
    let init = mp4::read_init(&init_bytes).map_err(|e| e.context(path.display().to_string()))?;
    Ok(Some(Opened {
        seg,
        path,
        file,
        scan,
        init,
    }))
}

fn read_at(f: &File, path: &std::path::Path, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| err!(DataLoss, "reading {}: {e}", path.display()))?;
    Ok(buf)
}

/// The `moof` of a fragment (after its `prft`, if any): its offset and bytes.
fn read_moof(
    f: &File,
    path: &std::path::Path,
    frag: &FragmentInfo,
) -> Result<(u64, Vec<u8>), Error> {
    let mut at = frag.offset;
    let end = frag.offset.saturating_add(frag.len);
    let mut hdr = [0u8; 8];
    loop {
        if at >= end {
            bail!(
                DataLoss,
                "{}: fragment at {} has no moof",
                path.display(),
                frag.offset
            );
        }
        f.read_exact_at(&mut hdr, at)
            .map_err(|e| err!(DataLoss, "reading {}: {e}", path.display()))?;
        let size = u64::from(u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]));
        if size < 8 {
            bail!(DataLoss, "{}: bad box at {at}", path.display());
        }
        if &hdr[4..8] == b"moof" {
            let len = usize::try_from(size)
                .ok()
                .filter(|&n| n as u64 <= mp4::MAX_MOOF_LEN as u64)
                .ok_or_else(|| err!(DataLoss, "{}: moof too large", path.display()))?;
            let mut buf = vec![0; len];
            f.read_exact_at(&mut buf, at)
                .map_err(|e| err!(DataLoss, "reading {}: {e}", path.display()))?;
            return Ok((at, buf));
        }
        at = at.saturating_add(size);
    }
}

fn wall_ms_of_90k(t: u64) -> i64 {
    i64::try_from(t / TICKS_PER_MS as u64).unwrap_or(i64::MAX)
}

fn wall_90k_of_ms(ms: i64) -> u64 {
    u64::try_from(ms.saturating_mul(TICKS_PER_MS)).unwrap_or(0)
}

/// The fragment's end, wall clock, 90 kHz.
fn frag_end(f: &FragmentInfo) -> u64 {
    f.wall_90k.saturating_add(f.duration)
}

/// The progressive MP4 of `req` (design 0008, "Shapes"). Fails with NotFound (`start`) when
/// nothing is recorded at the start (and, with `skip_gaps`, nothing after it in the range),
/// InvalidArgument for a bad range.
pub fn mp4(rec: &Recorder, req: &Mp4Request, now: Instant) -> Result<Mp4, QueryError> {
    if req.end_ms <= req.start_ms {
        return Err(bad("end", "the end is not after the start".into()));
    }
    let (segs, pin) = pinned_segments(rec, &req.camera_id, req.start_ms, req.end_ms, now)?;
    let (start_90k, end_90k) = (wall_90k_of_ms(req.start_ms), wall_90k_of_ms(req.end_ms));
    let mut builder: Option<mp4::Builder> = None;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut source_ids: Vec<i64> = Vec::new();
    let mut gaps = Vec::new();
    // A gap passed over (skip_gaps), reported at the next fragment's presentation time.
    let mut pending_gap: Option<(i64, i64)> = None;
    let mut presented_start_ms = req.start_ms;
    let mut ended_early_ms = None;
    // Where the previous segment ended (its row's end, as the timeline says), wall ms; and its
    // last fragment's end (90 kHz wall).
    let mut prev_end: Option<(i64, u64)> = None;
    let mut has_audio = false;
    'segments: for seg in segs {
        let seg_start_ms = seg.start_wall_ms;
        let Some(o) = open_segment(rec, seg).map_err(QueryError::from)? else {
            continue;
        };
        if let Some((pe_ms, pe_90k)) = prev_end {
            let gap = seg_start_ms > pe_ms + RUN_TOLERANCE_MS
                && o.scan.start_90k().is_some_and(|s| s > pe_90k);
            if gap && builder.is_some() {
                if !req.skip_gaps {
                    ended_early_ms = Some(wall_ms_of_90k(pe_90k));
                    break 'segments;
                }
                pending_gap = Some((
                    wall_ms_of_90k(pe_90k),
                    o.scan.start_90k().map_or(seg_start_ms, wall_ms_of_90k),
                ));
            }
        }
        let source = u32::try_from(files.len()).map_err(|_| bad("end", "too many files".into()))?;
        let mut used = false;
        let mut init = o.init.clone();
        let row_end_ms = if o.seg.state == SegmentState::Writing {
            None // a writing segment's row lags: its scan is exact
        } else {
            Some(o.seg.end_wall_ms.max(o.seg.start_wall_ms))
        };
        if !req.audio {
            init.audio = None;
        }
        for frag in &o.scan.fragments {
            if frag_end(frag) <= start_90k && builder.is_none() {
                continue; // before the start
            }
            if frag.wall_90k >= end_90k {
                break 'segments;
            }
            if builder.is_none() {
                if !frag.starts_with_key {
                    continue;
                }
                let from_90k = if frag.wall_90k <= start_90k {
                    start_90k
                } else if req.skip_gaps || frag.wall_90k < start_90k + 90 {
                    // Nothing at the start: with skip_gaps, start at the first recording.
                    presented_start_ms = wall_ms_of_90k(frag.wall_90k);
                    frag.wall_90k.max(start_90k)
                } else {
                    return Err(not_found(
                        "start",
                        format!(
                            "nothing of `{}` is recorded at the start; the next recording \
                             starts at {}",
                            req.camera_id,
                            base::time::rfc3339::format_ms(wall_ms_of_90k(frag.wall_90k))
                        ),
                    ));
                };
                let in_file = frag.base_decode_time + (from_90k - frag.wall_90k);
                builder = Some(mp4::Builder::new(
                    in_file,
                    mp4::Metadata {
                        created_unix_secs: req.start_ms.div_euclid(1000),
                        title: req.title.clone(),
                        comment: req.comment.clone(),
                    },
                ));
            }
            let Some(b) = builder.as_mut() else { break };
            let (moof_at, moof) = read_moof(&o.file, &o.path, frag).map_err(QueryError::from)?;
            let mut samples: FragmentSamples =
                mp4::read_fragment(&moof, moof_at).map_err(QueryError::from)?;
            if !req.audio {
                samples.audio = None;
            }
            has_audio |= samples.audio.is_some();
            let end_in_file = (frag_end(frag) > end_90k)
                .then(|| frag.base_decode_time + (end_90k - frag.wall_90k));
            let at = b.push(&init, source, &samples, end_in_file)?;
            if files.is_empty() && !used && at <= 0 {
                // The file presents from the start of the frame shown at the start.
                presented_start_ms =
                    wall_ms_of_90k(frag.wall_90k.saturating_add(at.unsigned_abs()));
            }
            if let Some((wall_start_ms, wall_end_ms)) = pending_gap.take() {
                gaps.push(RemovedGap {
                    at_90k: at,
                    wall_start_ms,
                    wall_end_ms,
                });
            }
            if !used {
                used = true;
                files.push(o.path.clone());
                source_ids.push(o.seg.id);
            }
            let e = frag_end(frag);
            prev_end = Some((row_end_ms.unwrap_or_else(|| wall_ms_of_90k(e)), e));
            if end_in_file.is_some() {
                break 'segments;
            }
        }
    }
    let Some(b) = builder else {
        return Err(not_found(
            "start",
            format!(
                "nothing of `{}` is recorded between the start and the end",
                req.camera_id
            ),
        ));
    };
    if ended_early_ms.is_none()
        && let Some((_, e)) = prev_end
        && e < end_90k
    {
        ended_early_ms = Some(wall_ms_of_90k(e));
    }
    let v = b.build().map_err(|e| bad("start", e.to_string()))?;
    let etag = v.etag(|s| source_ids.get(s as usize).map_or(0, |&id| id as u64));
    let (video_frames, duration_90k) = (v.video_samples, v.duration_90k);
    let mut parts = Vec::with_capacity(v.pieces.len() + 1);
    parts.push(Part::Bytes(v.header.into()));
    parts.extend(v.pieces.iter().map(|p| Part::File {
        source: p.source,
        offset: p.offset,
        len: p.len,
    }));
    Ok(Mp4 {
        body: Body::new(parts, files, pin),
        etag,
        start_ms: presented_start_ms,
        duration_90k,
        video_frames,
        has_audio,
        gaps,
        ended_early_ms,
    })
}

/// The MSE init segment of the recording at `at_ms` (or the latest), and the wall-clock start
/// of the segment it came from.
pub fn init_segment(
    rec: &Recorder,
    camera_id: &str,
    at_ms: Option<i64>,
) -> Result<(Vec<u8>, i64), QueryError> {
    let reader = rec.reader();
    let seg = match at_ms {
        Some(t) => reader
            .segments(camera_id, t, t + 1)?
            .into_iter()
            .next_back(),
        None => reader.latest_segment(camera_id)?,
    };
    let Some(seg) = seg else {
        return Err(not_found(
            "start",
            format!("nothing of `{camera_id}` is recorded at that time"),
        ));
    };
    let start = seg.start_wall_ms;
    let Some(o) = open_segment(rec, seg)? else {
        return Err(not_found(
            "start",
            format!("the recording of `{camera_id}` at that time is gone"),
        ));
    };
    Ok((mse_init_of(o.init), start))
}

/// `moof`+`mdat` fragments for MSE and HLS.
#[derive(Debug)]
pub struct Fragments {
    pub body: Body,
    /// Wall-clock span the fragments cover, ms.
    pub start_ms: i64,
    pub end_ms: i64,
    pub count: usize,
}

/// The fragments of `camera_id` from the key frame at or before `start_ms` up to `end_ms`
/// (whole fragments whose start is before the end), remuxed so that their `tfdt`s are wall-clock
/// times since the Unix epoch (video in 90 kHz ticks, audio in samples): ranges fetched apart
/// land on one timeline in a `SourceBuffer`. Stops at a change of the init segment's sample
/// entries (a new `init.mp4` is needed there).
pub fn fragments(
    rec: &Recorder,
    camera_id: &str,
    start_ms: i64,
    end_ms: i64,
    now: Instant,
) -> Result<Fragments, QueryError> {
    if end_ms <= start_ms {
        return Err(bad("end", "the end is not after the start".into()));
    }
    let (segs, pin) = pinned_segments(rec, camera_id, start_ms, end_ms, now)?;
    let (start_90k, end_90k) = (wall_90k_of_ms(start_ms), wall_90k_of_ms(end_ms));
    let mut parts = Vec::new();
    let mut files = Vec::new();
    let mut first_entry: Option<Vec<u8>> = None;
    let (mut span_start, mut span_end) = (None, 0u64);
    let mut count = 0usize;
    let mut seq = 1u32;
    'segments: for seg in segs {
        let Some(o) = open_segment(rec, seg)? else {
            continue;
        };
        match &first_entry {
            None => first_entry = Some(o.init.video.sample_entry.clone()),
            Some(e) if *e != o.init.video.sample_entry => break,
            Some(_) => {}
        }
        let source = u32::try_from(files.len()).map_err(|_| bad("end", "too many files".into()))?;
        let mut used = false;
        for frag in &o.scan.fragments {
            if frag_end(frag) <= start_90k {
                continue;
            }
            if frag.wall_90k >= end_90k {
                break 'segments;
            }
            let (moof_at, moof) = read_moof(&o.file, &o.path, frag)?;
            let samples = mp4::read_fragment(&moof, moof_at)?;
            // The file's zero on the wall clock; audio counts samples from the same instant.
            let zero_90k = frag.wall_90k.saturating_sub(frag.base_decode_time);
            let audio_tfdt = match (&samples.audio, &o.init.audio) {
                (Some(a), Some(ai)) => Some(
                    media::fmp4::rescale_90k(zero_90k, ai.sample_rate)
                        .saturating_add(a.base_decode_time),
                ),
                _ => None,
            };
            let out = mp4::remux_moof(&moof, seq, frag.wall_90k, audio_tfdt)?;
            seq = seq.wrapping_add(1);
            let moof_end = moof_at + moof.len() as u64;
            let frag_end_off = frag.offset + frag.len;
            parts.push(Part::Bytes(out.into()));
            parts.push(Part::File {
                source,
                offset: moof_end,
                len: frag_end_off.saturating_sub(moof_end),
            });
            span_start.get_or_insert(frag.wall_90k);
            span_end = frag_end(frag);
            count += 1;
            if !used {
                used = true;
                files.push(o.path.clone());
            }
        }
    }
    let Some(s) = span_start else {
        return Err(not_found(
            "start",
            format!("nothing of `{camera_id}` is recorded between the start and the end"),
        ));
    };
    Ok(Fragments {
        body: Body::new(parts, files, pin),
        start_ms: wall_ms_of_90k(s),
        end_ms: wall_ms_of_90k(span_end),
        count,
    })
}

/// A live-edge stream looks for the segment holding its start this far before it.
const LIVE_LOOKBACK_MS: i64 = 3_600_000;

/// And for the next segment this far after the current one's start.
const LIVE_LOOKAHEAD_MS: i64 = 86_400_000;

/// What to follow (`live_edge=true`).
#[derive(Clone, Debug)]
pub struct LiveRequest {
    pub camera_id: String,
    /// The stream starts at the key frame at or before this (ms since the Unix epoch), or at the
    /// first recording after it.
    pub start_ms: i64,
    /// The stream ends when nothing new has been recorded for this long.
    pub idle_limit: std::time::Duration,
}

/// Why a live-edge stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveEnd {
    /// Nothing new was recorded for longer than the idle limit (the camera stopped recording).
    Idle,
    /// The next recording has other sample entries (a new SPS/PPS, another codec, audio added or
    /// gone): its fragments need another init segment, so this stream ends before it.
    NewParameters,
    /// The caller stopped it (the client went away).
    Stopped,
}

/// One step of a [`Follower`].
#[derive(Debug)]
pub enum LiveStep {
    /// The next fragment: a `moof` (remuxed, `tfdt` on the stream's timeline) and its `mdat`.
    Fragment(Vec<u8>),
    /// Nothing new yet: poll again later.
    Wait,
    /// The stream is over.
    End(LiveEnd),
}

/// A time-shift view (design 0008, `live_edge=true`): the fragments of a camera from the key
/// frame at or before a start, then those of the segment being written as they are completed,
/// then those of the next segments as they start. Each fragment is remuxed so that the stream's
/// decode times start at 0 and run on (video and audio each the running sum of the durations
/// sent), across segments and gaps (a gap is left out of the timeline). The segment it reads is
/// pinned (`Pins::extend` as it moves on, `Pins::release` of the one it leaves).
pub struct Follower {
    rec: std::sync::Arc<Recorder>,
    camera_id: String,
    /// The first segment's init, against which later segments' sample entries are compared.
    init: InitInfo,
    pin: PinGuard,
    cur: Segment,
    path: PathBuf,
    /// The current segment's file, open (it stays readable while pinned).
    file: File,
    /// The current segment is passed over (being deleted): its file is not read.
    passed: bool,
    /// The current file's fragments as last scanned, and its length then.
    scan: Scan,
    scanned_len: u64,
    /// Fragments of the current file starting before this offset have been dealt with.
    next_offset: u64,
    /// Fragments ending at or before this (90 kHz wall) are skipped until the first is sent.
    start_90k: u64,
    started: bool,
    /// Decode times of the next fragment: video (its timescale), audio (its timescale).
    video_t: u64,
    audio_t: u64,
    sequence: u32,
    /// Sent, in all.
    pub fragments_sent: u64,
    /// When something new was last found.
    last_new: Instant,
    idle_limit: std::time::Duration,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("camera_id", &self.camera_id)
            .field("segment", &self.cur.id)
            .field("next_offset", &self.next_offset)
            .field("fragments_sent", &self.fragments_sent)
            .finish()
    }
}

/// The MSE init segment (`mvex`, no edit lists) of a recording's init.
fn mse_init_of(mut init: InitInfo) -> Vec<u8> {
    init.video.edit_media_time = None;
    if let Some(a) = init.audio.as_mut() {
        a.edit_media_time = None;
    }
    mp4::mse_init(&init)
}

/// Whether fragments of a file with `b` can follow those of `a` under `a`'s init segment.
fn same_entries(a: &InitInfo, b: &InitInfo) -> bool {
    a.video.sample_entry == b.video.sample_entry
        && a.video.timescale == b.video.timescale
        && a.audio.as_ref().map(|x| (&x.sample_entry, x.sample_rate))
            == b.audio.as_ref().map(|x| (&x.sample_entry, x.sample_rate))
}

impl Follower {
    /// Starts following `req`: the stream's init segment and the follower. NotFound (`start`)
    /// when nothing of the camera is recorded from an hour before the start to a day after it.
    pub fn start(
        rec: std::sync::Arc<Recorder>,
        req: &LiveRequest,
        now: Instant,
    ) -> Result<(Vec<u8>, Follower), QueryError> {
        let (segs, mut pin) = pinned_segments(
            &rec,
            &req.camera_id,
            req.start_ms.saturating_sub(LIVE_LOOKBACK_MS),
            req.start_ms.saturating_add(LIVE_LOOKAHEAD_MS),
            now,
        )?;
        // The last segment starting at or before the start, else the first after it.
        let first = segs
            .iter()
            .rposition(|s| s.start_wall_ms <= req.start_ms)
            .unwrap_or(0);
        let mut chosen = None;
        for seg in segs.into_iter().skip(first) {
            if let Some(o) = open_segment(&rec, seg)? {
                chosen = Some(o);
                break;
            }
        }
        let Some(o) = chosen else {
            return Err(not_found(
                "start",
                format!("nothing of `{}` is recorded near the start", req.camera_id),
            ));
        };
        // Keep only the pin of the segment followed from (later ones are pinned as reached).
        drop(std::mem::replace(
            &mut pin,
            rec.pins().pin(&[o.seg.id], now).map_err(|_| {
                QueryError::from(err!(
                    Unavailable,
                    "recordings of `{}` are being deleted; try again",
                    req.camera_id
                ))
            })?,
        ));
        let init = mse_init_of(o.init.clone());
        let scanned_len = o.scan.total_len;
        let f = Follower {
            camera_id: req.camera_id.clone(),
            init: o.init,
            pin,
            path: o.path,
            file: o.file,
            passed: false,
            cur: o.seg,
            scan: o.scan,
            scanned_len,
            next_offset: 0,
            start_90k: wall_90k_of_ms(req.start_ms),
            started: false,
            video_t: 0,
            audio_t: 0,
            sequence: 1,
            fragments_sent: 0,
            last_new: now,
            idle_limit: req.idle_limit,
            rec,
        };
        Ok((init, f))
    }

    /// Rescans the current file when it has grown since the last scan.
    fn rescan(&mut self) -> Result<(), Error> {
        if self.passed {
            return Ok(());
        }
        let len = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Err(err!(DataLoss, "{}: {e}", self.path.display())),
        };
        if len == self.scanned_len {
            return Ok(());
        }
        let s = crate::scan::scan_opened(&self.file, &self.path)?;
        self.scanned_len = s.total_len;
        self.scan = s;
        Ok(())
    }

    /// The next fragment of the current file not yet dealt with.
    fn next_fragment(&self) -> Option<FragmentInfo> {
        self.scan
            .fragments
            .iter()
            .find(|f| f.offset >= self.next_offset)
            .cloned()
    }

    /// Remuxes one fragment onto the stream's timeline; `None` when it is skipped (before the
    /// start).
    fn emit(&mut self, frag: &FragmentInfo) -> Result<Option<Vec<u8>>, Error> {
        self.next_offset = frag.offset.saturating_add(frag.len);
        if !self.started && (frag_end(frag) <= self.start_90k || !frag.starts_with_key) {
            return Ok(None);
        }
        self.started = true;
        let (moof_at, moof) = read_moof(&self.file, &self.path, frag)?;
        let samples = mp4::read_fragment(&moof, moof_at)?;
        let audio_t = samples.audio.as_ref().map(|_| self.audio_t);
        let mut out = mp4::remux_moof(&moof, self.sequence, self.video_t, audio_t)?;
        let moof_end = moof_at + moof.len() as u64;
        let mdat_len = usize::try_from(self.next_offset.saturating_sub(moof_end))
            .map_err(|_| err!(DataLoss, "{}: fragment too large", self.path.display()))?;
        out.extend_from_slice(&read_at(&self.file, &self.path, moof_end, mdat_len)?);
        self.sequence = self.sequence.wrapping_add(1);
        self.video_t = self.video_t.saturating_add(samples.video.duration());
        if let Some(a) = &samples.audio {
            self.audio_t = self.audio_t.saturating_add(a.duration());
        }
        self.fragments_sent += 1;
        Ok(Some(out))
    }

    /// The segment after the current one, if it has started.
    fn next_segment(&self) -> Result<Option<Segment>, Error> {
        let from = self.cur.start_wall_ms;
        let segs = self
            .rec
            .reader()
            .segments(
                &self.camera_id,
                from,
                from.saturating_add(LIVE_LOOKAHEAD_MS),
            )
            .map_err(|e| e.error)?;
        Ok(segs
            .into_iter()
            .find(|s| s.id != self.cur.id && s.id > self.cur.id))
    }

    /// One step at `now`: the next fragment when there is one, else whether to wait or end.
    pub fn poll(&mut self, now: Instant) -> Result<LiveStep, Error> {
        loop {
            if let Some(frag) = self.next_fragment() {
                self.last_new = now;
                match self.emit(&frag)? {
                    Some(b) => return Ok(LiveStep::Fragment(b)),
                    None => continue,
                }
            }
            self.rescan()?;
            if self.next_fragment().is_some() {
                continue;
            }
            let Some(next) = self.next_segment()? else {
                return Ok(self.idle(now));
            };
            // The current file is closed once the next one exists: a last look for fragments
            // completed between the scan and the query.
            self.rescan()?;
            if self.next_fragment().is_some() {
                continue;
            }
            // Only what it reads stays pinned (the next is pinned before the last is let go).
            let done = self.cur.id;
            let pinned = self.rec.pins().extend(&mut self.pin, &[next.id], now);
            self.rec.pins().release(&mut self.pin, &[done]);
            if pinned.is_err() {
                // Being deleted: pass over it.
                self.pass_to(next);
                continue;
            }
            let writing = next.state == SegmentState::Writing;
            let id = next.id;
            match open_segment(&self.rec, next.clone())? {
                Some(o) => {
                    if !same_entries(&self.init, &o.init) {
                        return Ok(LiveStep::End(LiveEnd::NewParameters));
                    }
                    self.scanned_len = o.scan.total_len;
                    self.scan = o.scan;
                    self.path = o.path;
                    self.file = o.file;
                    self.cur = o.seg;
                    self.passed = false;
                    self.next_offset = 0;
                }
                // Started but nothing complete in it yet: wait for its first fragment.
                None if writing => return Ok(self.idle(now)),
                // Gone, or closed with nothing in it: pass over it.
                None => {
                    tracing::debug!(segment = id, "live edge: passing over an empty segment");
                    self.pass_to(next);
                }
            }
        }
    }

    /// Makes `seg` the current segment without reading it.
    fn pass_to(&mut self, seg: Segment) {
        self.cur = seg;
        self.passed = true;
        self.scan = Scan::default();
        self.scanned_len = 0;
        self.next_offset = 0;
    }

    fn idle(&self, now: Instant) -> LiveStep {
        if now.saturating_duration_since(self.last_new) >= self.idle_limit {
            LiveStep::End(LiveEnd::Idle)
        } else {
            LiveStep::Wait
        }
    }

    /// Follows until the end, handing each fragment to `sink` and polling every `poll` of
    /// `clocks`' time while there is nothing new; `stopped` is asked while waiting (a client
    /// that went away), and a failing sink ends it with the sink's error.
    pub fn follow(
        &mut self,
        clocks: &dyn base::Clocks,
        poll: std::time::Duration,
        stopped: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(Vec<u8>) -> Result<(), Error>,
    ) -> Result<LiveEnd, Error> {
        loop {
            match self.poll(clocks.monotonic())? {
                LiveStep::Fragment(b) => sink(b)?,
                LiveStep::Wait => {
                    if stopped() {
                        return Ok(LiveEnd::Stopped);
                    }
                    clocks.sleep_blocking(poll);
                }
                LiveStep::End(e) => return Ok(e),
            }
        }
    }
}

/// One part of an HLS playlist: whole fragments of one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsPart {
    /// Wall-clock span, 90 kHz ticks since the Unix epoch.
    pub start_90k: u64,
    pub end_90k: u64,
    /// A discontinuity comes before this part (a gap, or new parameters).
    pub discontinuity: bool,
    /// The segment's wall-clock start (ms), which names its init segment.
    pub init_at_ms: i64,
}

/// The parts of an HLS playlist for `[start_ms, end_ms)`: the fragments of each segment grouped
/// into parts of about `target_90k` (never splitting a fragment, never across segments).
pub fn hls_parts(
    rec: &Recorder,
    camera_id: &str,
    start_ms: i64,
    end_ms: i64,
    target_90k: u64,
) -> Result<Vec<HlsPart>, QueryError> {
    if end_ms <= start_ms {
        return Err(bad("end", "the end is not after the start".into()));
    }
    let segs = rec.reader().segments(camera_id, start_ms, end_ms)?;
    let (start_90k, end_90k) = (wall_90k_of_ms(start_ms), wall_90k_of_ms(end_ms));
    let mut out: Vec<HlsPart> = Vec::new();
    let mut prev_entry: Option<Vec<u8>> = None;
    for seg in segs {
        let init_at_ms = seg.start_wall_ms;
        let Some(o) = open_segment(rec, seg)? else {
            continue;
        };
        let new_params = prev_entry
            .as_ref()
            .is_some_and(|e| *e != o.init.video.sample_entry);
        prev_entry = Some(o.init.video.sample_entry.clone());
        let mut first_of_segment = true;
        for frag in &o.scan.fragments {
            if frag_end(frag) <= start_90k {
                continue;
            }
            if frag.wall_90k >= end_90k {
                break;
            }
            let joins = out
                .last()
                .filter(|p| !first_of_segment && p.end_90k - p.start_90k < target_90k);
            if joins.is_some() {
                if let Some(p) = out.last_mut() {
                    p.end_90k = frag_end(frag);
                }
            } else {
                let gap = out
                    .last()
                    .is_some_and(|p| frag.wall_90k > p.end_90k + 90 * RUN_TOLERANCE_MS as u64);
                out.push(HlsPart {
                    start_90k: frag.wall_90k,
                    end_90k: frag_end(frag),
                    discontinuity: first_of_segment && (gap || new_params),
                    init_at_ms,
                });
            }
            first_of_segment = false;
        }
    }
    if out.is_empty() {
        return Err(not_found(
            "start",
            format!("nothing of `{camera_id}` is recorded between the start and the end"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::service::{RecordSpec, RecorderConfig};
    use crate::testutil::{SteppedClocks, TempDir, clip, step_until};
    use base::Clocks;
    use hub::{Channel, Hub};
    use media::{Codec, Frame};
    use std::time::{Duration, UNIX_EPOCH};

    const T0_MS: i64 = 1_700_000_000_000;

    /// Records `gops` GOPs (2 s each, 25 fps) of the H.264 fixture as `cam-1` from `T0_MS` into
    /// 4-second segments, then stops the writer; `gap_gops` GOPs from the 4th are left out,
    /// making a gap (a camera that was away).
    fn recorded(d: &TempDir, gops: usize, gap_gops: usize) -> std::sync::Arc<Recorder> {
        let cam = LiveCam::new(d);
        let (clocks, rec, ch, poll) = (&cam.clocks, &cam.rec, &cam.ch, cam.poll);
        let (frames, params) = clip("h264_a.h264", Codec::H264);
        let mut published = 0u64;
        for n in 0..(gops * 50 + 1) {
            let gop = n / 50;
            let (data, is_key) = frames[n % frames.len()].clone();
            clocks.settle(2);
            clocks.advance(Duration::from_millis(40));
            if gap_gops > 0 && (3..3 + gap_gops).contains(&gop) {
                continue;
            }
            ch.publish(Frame {
                pts: 1234 + n as i64 * 3600,
                received: UNIX_EPOCH + Duration::from_millis(T0_MS as u64 + n as u64 * 40),
                is_key,
                data,
                params: params.clone(),
            });
            published += 1;
            if n % 50 == 49 {
                step_until(clocks, 2, poll, "the writer to drain", || {
                    rec.camera("cam-1")
                        .is_some_and(|c| c.segmenter.frames == published)
                });
            }
        }
        cam.stop();
        clocks.free_run();
        rec.shutdown();
        rec.clone()
    }

    fn req(start_ms: i64, end_ms: i64) -> Mp4Request {
        Mp4Request {
            camera_id: "cam-1".into(),
            start_ms,
            end_ms,
            skip_gaps: false,
            audio: true,
            title: Some("Gate 1".into()),
            comment: None,
        }
    }

    /// The top-level boxes of an MP4: (type, size).
    fn boxes(b: &[u8]) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut at = 0usize;
        while at + 8 <= b.len() {
            let mut size = u64::from(u32::from_be_bytes(b[at..at + 4].try_into().unwrap()));
            if size == 1 {
                size = u64::from_be_bytes(b[at + 8..at + 16].try_into().unwrap());
            }
            out.push((
                String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(),
                size,
            ));
            at += size as usize;
        }
        out
    }

    #[test]
    fn an_mp4_across_segments_starts_at_the_asked_time_and_reads_back_in_any_ranges() {
        let d = TempDir::new("playback-mp4");
        let rec = recorded(&d, 6, 0);
        let segs = rec
            .reader()
            .segments("cam-1", T0_MS, T0_MS + 60_000)
            .unwrap();
        assert!(segs.len() >= 3, "{segs:?}");
        let now = Instant::now();
        // 1.5 s in, 8 s: starts inside the first GOP, runs across two segment boundaries.
        let mut m = mp4(&rec, &req(T0_MS + 1_500, T0_MS + 9_500), now).unwrap();
        // 1.5 s is inside frame 37 (1.48 s to 1.52 s): the file presents from that frame's
        // start, so the first picture is the one shown at 1.5 s in every player, to the end asked.
        assert_eq!(m.duration_90k, 8 * 90_000 + 20 * 90);
        assert_eq!(m.start_ms, T0_MS + 1_480);
        // From the key frame at 0 s (the edit list skips 1.5 s) up to the frame before 9.5 s.
        assert_eq!(m.video_frames, 238);
        assert_eq!(m.ended_early_ms, None);
        assert!(m.gaps.is_empty());
        let (pinned, readers) = rec.pins().counts();
        assert!(pinned >= 3 && readers == 1, "{pinned} {readers}");
        // A day later the pins no longer protect, unless the reader renewed them (an export
        // that is still writing).
        let later = now + std::time::Duration::from_secs(86_400);
        assert!(!rec.pins().is_pinned(segs[0].id, later));
        m.body.renew_pin(later);
        assert!(
            segs.iter()
                .take(3)
                .all(|s| rec.pins().is_pinned(s.id, later))
        );
        let whole = m.body.to_vec().unwrap();
        assert_eq!(whole.len() as u64, m.body.len());
        let b = boxes(&whole);
        let kinds: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["ftyp", "moov", "mdat"], "moov first");
        assert_eq!(b.iter().map(|(_, s)| s).sum::<u64>(), whole.len() as u64);
        // Ranges in a scrambled order reassemble into the same bytes.
        let len = whole.len() as u64;
        let mut cuts: Vec<u64> = (1..23).map(|i| len * i * i / 529).collect();
        cuts.push(0);
        cuts.push(len);
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces: Vec<(u64, Vec<u8>)> = Vec::new();
        for w in cuts.windows(2).rev() {
            let mut got = Vec::new();
            m.body
                .read_range(w[0]..w[1], &mut |b| {
                    got.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
            assert_eq!(got.len() as u64, w[1] - w[0]);
            pieces.push((w[0], got));
        }
        pieces.sort_by_key(|p| p.0);
        let joined: Vec<u8> = pieces.into_iter().flat_map(|p| p.1).collect();
        assert_eq!(joined, whole);
        // The same request gives the same tag; another range another.
        let again = mp4(&rec, &req(T0_MS + 1_500, T0_MS + 9_500), now).unwrap();
        assert_eq!(again.etag, m.etag);
        let other = mp4(&rec, &req(T0_MS + 1_500, T0_MS + 9_600), now).unwrap();
        assert_ne!(other.etag, m.etag);
        drop((m, again, other));
        assert_eq!(rec.pins().counts(), (0, 0), "pins end with the bodies");
    }

    #[test]
    fn a_gap_ends_the_mp4_unless_skipped() {
        let d = TempDir::new("playback-gap");
        // GOPs 3 to 5 (6 s to 12 s) missing: longer than the segmenter's 5 s `max_gap`, so a
        // new run.
        let rec = recorded(&d, 9, 3);
        let now = Instant::now();
        let m = mp4(&rec, &req(T0_MS + 1_000, T0_MS + 16_000), now).unwrap();
        assert_eq!(m.ended_early_ms, Some(T0_MS + 6_000));
        assert_eq!(m.duration_90k, 5 * 90_000);
        assert!(m.gaps.is_empty());
        let mut r = req(T0_MS + 1_000, T0_MS + 16_000);
        r.skip_gaps = true;
        let m = mp4(&rec, &r, now).unwrap();
        assert_eq!(m.ended_early_ms, None);
        assert_eq!(m.duration_90k, 9 * 90_000, "15 s asked, 6 s of it a gap");
        assert_eq!(
            m.gaps,
            vec![RemovedGap {
                at_90k: 5 * 90_000,
                wall_start_ms: T0_MS + 6_000,
                wall_end_ms: T0_MS + 12_000,
            }]
        );
        // Starting inside the gap: 404 naming the start, unless skipping.
        let e = mp4(&rec, &req(T0_MS + 7_000, T0_MS + 14_000), now).unwrap_err();
        assert_eq!(
            (e.field, e.error.kind()),
            (Some("start"), ErrorKind::NotFound)
        );
        let mut r = req(T0_MS + 7_000, T0_MS + 14_000);
        r.skip_gaps = true;
        let m = mp4(&rec, &r, now).unwrap();
        assert_eq!(m.start_ms, T0_MS + 12_000);
        assert_eq!(m.duration_90k, 2 * 90_000);
    }

    #[test]
    fn fragments_and_hls_parts_cover_whole_gops_on_the_wall_clock() {
        let d = TempDir::new("playback-frags");
        let rec = recorded(&d, 9, 3);
        let now = Instant::now();
        let mut f = fragments(&rec, "cam-1", T0_MS + 2_500, T0_MS + 5_000, now).unwrap();
        // The GOPs at 2 s and 4 s.
        assert_eq!(
            (f.start_ms, f.end_ms, f.count),
            (T0_MS + 2_000, T0_MS + 6_000, 2)
        );
        let bytes = f.body.to_vec().unwrap();
        let b = boxes(&bytes);
        let kinds: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["moof", "mdat", "moof", "mdat"]);
        let first = mp4::read_fragment(&bytes[..b[0].1 as usize], 0).unwrap();
        assert_eq!(first.video.base_decode_time, (T0_MS as u64 + 2_000) * 90);
        assert_eq!(first.sequence, 1);
        let (init, seg_start) = init_segment(&rec, "cam-1", Some(T0_MS + 2_500)).unwrap();
        let holding = rec
            .reader()
            .segments("cam-1", T0_MS + 2_500, T0_MS + 2_501)
            .unwrap();
        assert_eq!(seg_start, holding[holding.len() - 1].start_wall_ms);
        assert_eq!(mp4::read_init(&init).unwrap().video.width, 640);
        // Segments are 0–2 s, 2–6 s, 12–14 s and 14–18 s (rotation on 4 s of the wall clock);
        // parts of about 4 s never cross a segment.
        let parts = hls_parts(&rec, "cam-1", T0_MS, T0_MS + 18_000, 4 * 90_000).unwrap();
        let spans: Vec<(i64, i64, bool)> = parts
            .iter()
            .map(|p| {
                (
                    (p.start_90k / 90) as i64 - T0_MS,
                    (p.end_90k / 90) as i64 - T0_MS,
                    p.discontinuity,
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 2_000, false),
                (2_000, 6_000, false),
                (12_000, 14_000, true),
                (14_000, 18_000, false),
            ]
        );
    }

    /// A camera recording on stepped clocks, published to GOP by GOP.
    struct LiveCam {
        clocks: std::sync::Arc<SteppedClocks>,
        rec: std::sync::Arc<Recorder>,
        hub: Hub,
        ch: std::sync::Arc<Channel>,
        n: usize,
        published: u64,
        poll: Duration,
    }

    impl LiveCam {
        fn new(d: &TempDir) -> LiveCam {
            let clocks = SteppedClocks::new(UNIX_EPOCH + Duration::from_millis(T0_MS as u64));
            let mut cfg = RecorderConfig::new(&d.0);
            cfg.segmenter.rotation.period = 4 * crate::TICKS_PER_SEC;
            let poll = Duration::from_millis(2);
            cfg.poll = poll;
            cfg.writer_threads = 1;
            let rec = Recorder::start(cfg, clocks.clone()).unwrap();
            let hub = Hub::new();
            let ch = hub.add(Channel::new(
                "cam-1",
                hub::ChannelConfig::default(),
                UNIX_EPOCH + Duration::from_millis(T0_MS as u64),
            ));
            rec.apply(
                &hub,
                &[RecordSpec {
                    camera_id: "cam-1".into(),
                    retention_days: 30,
                }],
            );
            LiveCam {
                clocks,
                rec,
                hub,
                ch,
                n: 0,
                published: 0,
                poll,
            }
        }

        /// Publishes `gops` GOPs of `clip_name` (2 s each) and waits for the writer.
        fn record(&mut self, gops: usize, clip_name: &str) {
            let (frames, params) = clip(clip_name, Codec::H264);
            for i in 0..gops * 50 {
                let n = self.n;
                let (data, is_key) = frames[i % frames.len()].clone();
                self.clocks.settle(2);
                self.clocks.advance(Duration::from_millis(40));
                self.ch.publish(Frame {
                    pts: 1234 + n as i64 * 3600,
                    received: UNIX_EPOCH + Duration::from_millis(T0_MS as u64 + n as u64 * 40),
                    is_key,
                    data,
                    params: params.clone(),
                });
                self.n += 1;
                self.published += 1;
            }
            let (rec, published) = (self.rec.clone(), self.published);
            step_until(&self.clocks, 2, self.poll, "the writer to drain", || {
                rec.camera("cam-1")
                    .is_some_and(|c| c.segmenter.frames == published)
            });
        }

        /// The camera is away for `gops` GOPs (2 s each): time passes, nothing is published.
        fn away(&mut self, gops: usize) {
            for _ in 0..gops * 50 {
                self.clocks.settle(2);
                self.clocks.advance(Duration::from_millis(40));
                self.n += 1;
            }
        }

        fn stop(&self) {
            self.rec.apply(&self.hub, &[]);
            step_until(
                &self.clocks,
                1,
                self.poll,
                "the subscription to end",
                || self.ch.subscriber_count() == 0,
            );
        }
    }

    /// Polls until the follower waits or ends: the fragments' (sequence, video tfdt, sample
    /// count) and the last step.
    fn drain(f: &mut Follower, now: Instant) -> (Vec<(u32, u64, usize)>, LiveStep) {
        let mut out = Vec::new();
        loop {
            match f.poll(now).unwrap() {
                LiveStep::Fragment(b) => {
                    let kinds: Vec<String> = boxes(&b).into_iter().map(|(k, _)| k).collect();
                    assert_eq!(kinds, ["moof", "mdat"]);
                    let fr = mp4::read_fragment(&b, 0).unwrap();
                    // The samples the moof points at are inside the bytes sent.
                    assert!(fr.video.byte_range().end <= b.len() as u64);
                    out.push((
                        fr.sequence,
                        fr.video.base_decode_time,
                        fr.video.samples.len(),
                    ));
                }
                step => return (out, step),
            }
        }
    }

    #[test]
    fn a_live_edge_follower_keeps_up_with_the_recording_across_segments_and_ends_when_idle() {
        let d = TempDir::new("playback-live");
        let mut cam = LiveCam::new(&d);
        cam.record(3, "h264_a.h264"); // 0–6 s: the last GOP still open in the writer
        let now = cam.clocks.monotonic();
        let limit = Duration::from_secs(10);
        let (init, mut f) = Follower::start(
            cam.rec.clone(),
            &LiveRequest {
                camera_id: "cam-1".into(),
                start_ms: T0_MS + 2_500,
                idle_limit: limit,
            },
            now,
        )
        .unwrap();
        let info = mp4::read_init(&init).unwrap();
        assert_eq!(info.video.width, 640);
        // From the key frame at 2 s: the GOP at 2 s is complete (the one at 4 s is being
        // written), so one fragment, at decode time 0.
        let (got, step) = drain(&mut f, now);
        assert_eq!(got, vec![(1, 0, 50)]);
        assert!(matches!(step, LiveStep::Wait), "{step:?}");
        // The camera goes on: 4 s to 14 s, across segments (rotation every 4 s).
        cam.record(5, "h264_a.h264");
        let now = cam.clocks.monotonic();
        let (got, step) = drain(&mut f, now);
        assert!(matches!(step, LiveStep::Wait), "{step:?}");
        let seqs: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, [2, 3, 4, 5, 6]);
        // Decode times run on from 0 in steps of one GOP: 2 s at 90 kHz.
        let times: Vec<u64> = got.iter().map(|g| g.1).collect();
        assert_eq!(times, [180_000, 360_000, 540_000, 720_000, 900_000]);
        // Only the segment it is reading is pinned, the one being written.
        assert_eq!(cam.rec.pins().counts(), (1, 1));
        let writing = cam.rec.reader().latest_segment("cam-1").unwrap().unwrap();
        assert!(cam.rec.pins().is_pinned(writing.id, now));
        // The camera stops: the last GOP is closed and sent; then nothing until the limit.
        cam.stop();
        let now = cam.clocks.monotonic();
        let (got, step) = drain(&mut f, now);
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [1_080_000]);
        assert!(matches!(step, LiveStep::Wait), "{step:?}");
        let (got, step) = drain(&mut f, now + limit);
        assert!(got.is_empty());
        assert!(matches!(step, LiveStep::End(LiveEnd::Idle)), "{step:?}");
        assert_eq!(f.fragments_sent, 7);
        drop(f);
        assert_eq!(cam.rec.pins().counts(), (0, 0));
        cam.clocks.free_run();
        cam.rec.shutdown();
    }

    #[test]
    fn a_live_edge_stream_leaves_a_short_gap_out_of_its_timeline() {
        let d = TempDir::new("playback-live-gap");
        let mut cam = LiveCam::new(&d);
        cam.record(2, "h264_a.h264");
        let now = cam.clocks.monotonic();
        let (_, mut f) = Follower::start(
            cam.rec.clone(),
            &LiveRequest {
                camera_id: "cam-1".into(),
                start_ms: T0_MS,
                idle_limit: Duration::from_secs(30),
            },
            now,
        )
        .unwrap();
        // 8 s away (longer than the segmenter's 5 s: a new run and segment), then 2 GOPs more.
        cam.away(4);
        cam.record(3, "h264_a.h264");
        let now = cam.clocks.monotonic();
        let (got, step) = drain(&mut f, now);
        assert!(matches!(step, LiveStep::Wait), "{step:?}");
        // Two GOPs before the gap, two complete after it: decode times run on without the 8 s.
        assert_eq!(
            got.iter().map(|g| g.1).collect::<Vec<_>>(),
            [0, 180_000, 360_000, 540_000]
        );
        drop(f);
        cam.stop();
        cam.clocks.free_run();
        cam.rec.shutdown();
    }

    #[test]
    fn a_live_edge_stream_ends_before_a_recording_with_new_parameters() {
        let d = TempDir::new("playback-live-sps");
        let mut cam = LiveCam::new(&d);
        cam.record(2, "h264_a.h264");
        let now = cam.clocks.monotonic();
        let (_, mut f) = Follower::start(
            cam.rec.clone(),
            &LiveRequest {
                camera_id: "cam-1".into(),
                start_ms: T0_MS,
                idle_limit: Duration::from_secs(10),
            },
            now,
        )
        .unwrap();
        // Another stream (new SPS): a new segment the stream's init cannot describe.
        cam.record(2, "h264_b.h264");
        let now = cam.clocks.monotonic();
        let (got, step) = drain(&mut f, now);
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [0, 180_000]);
        assert!(
            matches!(step, LiveStep::End(LiveEnd::NewParameters)),
            "{step:?}"
        );
        drop(f);
        cam.stop();
        cam.clocks.free_run();
        cam.rec.shutdown();
    }
}
