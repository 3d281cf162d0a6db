//! The progressive ("virtual") MP4: a `moov` with complete sample tables built in memory, whose
//! one `mdat` is made of byte ranges of the source segment files (Moonfire NVR's approach).
//!
//! Layout:
//! ```text
//! ftyp (major isom, compatible isom iso2 mp41)
//! moov
//!   mvhd (timescale 90000, duration = what the video presents; version 1 only when a time or
//!         duration needs 64 bits)
//!   trak                                   video, track 1
//!     tkhd (enabled + in movie, the first file's picture size)
//!     edts / elst: one edit, media_time = the start of the frame shown at the start instant −
//!     first key frame (never inside a frame), duration = what is presented
//!     mdia / mdhd (90000) , hdlr vide, minf / vmhd, dinf, stbl:
//!       stsd (one entry per distinct sample entry of the source files, copied byte for byte)
//!       stts (run-length), stss, stsc (run-length, picks the entry), stsz, stco or co64
//!   trak                                   audio, track 2 (when a source fragment had audio)
//!     tkhd, edts / elst (an empty edit first when audio starts after the start instant; else
//!     media_time into the audio), mdia / mdhd (timescale = sample rate), hdlr soun,
//!     minf / smhd, dinf, stbl (stsd, stts, stsc, stsz, stco or co64; every sample is sync)
//!   udta / meta (hdlr mdir) / ilst / ©nam, ©cmt     (title and comment, when given)
//! mdat (8-byte header, or 16 with a 64-bit size)
//!   per source fragment: its video samples (one chunk), then its audio samples (one chunk)
//! ```
//! Decode times are the running sums of the sample durations, so they are monotonic whatever the
//! source files' `tfdt`s. Audio is kept in step with the video per fragment: when a fragment's
//! audio should start later (or earlier) in the output than the audio so far ends (a gap removed,
//! a new recording), the previous audio sample's duration absorbs the difference.

use super::fragment::{FragmentSamples, SampleInfo};
use super::init::InitInfo;
use crate::VIDEO_CLOCK_RATE;
use crate::fmp4::{
    begin, begin_full, end, mp4_time, put_matrix, put_u16, put_u32, put_u64, write_dinf, write_hdlr,
};
use base::{Error, bail, err};
use std::ops::Range;

/// The output's video track id.
const VIDEO_ID: u32 = 1;
/// The output's audio track id.
const AUDIO_ID: u32 = 2;

/// What the `moov` says about the movie besides its media.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Creation and modification time of the movie and its tracks, seconds since the Unix epoch.
    pub created_unix_secs: i64,
    /// `udta` / `meta` / `ilst` `©nam` (the camera's name, for exports).
    pub title: Option<String>,
    /// `©cmt`.
    pub comment: Option<String>,
}

/// A byte range of a source file: `len` bytes at `offset` of the file the caller numbered
/// `source` in [`Builder::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub source: u32,
    pub offset: u64,
    pub len: u64,
}

/// A progressive MP4 described rather than written: its bytes are `header` followed by the
/// bytes of each of `pieces` in order, `len` in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMp4 {
    /// `ftyp`, `moov` and the `mdat` box header.
    pub header: Vec<u8>,
    /// The `mdat` payload: adjacent ranges of one file are merged.
    pub pieces: Vec<Piece>,
    /// Bytes of the whole file.
    pub len: u64,
    /// Video samples (frames) in the file.
    pub video_samples: u64,
    /// What the file presents (the video edit's duration), 90 kHz.
    pub duration_90k: u64,
    /// Where each piece starts in the file.
    starts: Vec<u64>,
}

/// One part of a [`VirtualMp4`] byte range: bytes of the header, or a range of a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice<'a> {
    Header(&'a [u8]),
    File { source: u32, offset: u64, len: u64 },
}

impl VirtualMp4 {
    /// What to read, in order, for the file's bytes in `range` (cut to the file: an empty or
    /// out-of-range request yields nothing; answering 416 is the caller's).
    pub fn slices(&self, range: Range<u64>) -> Slices<'_> {
        let end = range.end.min(self.len);
        let pos = range.start.min(end);
        // The piece holding `pos` (if it is past the header): the last starting at or before it.
        let idx = self.starts.partition_point(|&s| s <= pos).saturating_sub(1);
        Slices {
            mp4: self,
            pos,
            end,
            idx,
        }
    }

    /// A strong entity tag (RFC 9110 8.8.3, quotes included): SHA-256 of the header, of each
    /// piece's source file identity (`source_id` maps the `source` numbers the builder was given
    /// to something stable across requests, the segment id) and byte range. It changes exactly
    /// when the file's bytes would (the recordings are never rewritten in place).
    pub fn etag(&self, mut source_id: impl FnMut(u32) -> u64) -> String {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update((self.header.len() as u64).to_be_bytes());
        h.update(&self.header);
        for p in &self.pieces {
            h.update(source_id(p.source).to_be_bytes());
            h.update(p.offset.to_be_bytes());
            h.update(p.len.to_be_bytes());
        }
        let digest = h.finalize();
        format!(
            "\"{}\"",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        )
    }
}

/// Iterator of [`VirtualMp4::slices`].
#[derive(Clone, Debug)]
pub struct Slices<'a> {
    mp4: &'a VirtualMp4,
    pos: u64,
    end: u64,
    idx: usize,
}

impl<'a> Iterator for Slices<'a> {
    type Item = Slice<'a>;

    fn next(&mut self) -> Option<Slice<'a>> {
        if self.pos >= self.end {
            return None;
        }
        let header_len = self.mp4.header.len() as u64;
        if self.pos < header_len {
            let to = self.end.min(header_len);
            // Both within the header: fit usize.
            let s = self.mp4.header.get(self.pos as usize..to as usize)?;
            self.pos = to;
            return Some(Slice::Header(s));
        }
        let (piece, start) = loop {
            let p = self.mp4.pieces.get(self.idx)?;
            let start = *self.mp4.starts.get(self.idx)?;
            if self.pos < start + p.len {
                break (p, start);
            }
            self.idx += 1;
        };
        let skip = self.pos - start;
        let len = (piece.len - skip).min(self.end - self.pos);
        self.pos += len;
        Some(Slice::File {
            source: piece.source,
            offset: piece.offset + skip,
            len,
        })
    }
}

/// Builds a [`VirtualMp4`] from fragments of one or more segment files, pushed in order.
///
/// Times: `start_90k` (given to [`Builder::new`]) and the `end` of [`Builder::push`] are on the
/// 90 kHz decode timeline of the file they fall in (the one its `tfdt`s use): the caller maps
/// wall-clock times to it through the fragment's wall-clock time (`prft`) and `tfdt`.
#[derive(Debug)]
pub struct Builder {
    meta: Metadata,
    start_90k: u64,
    /// start − the first fragment's decode time, once there is a first fragment.
    skip: Option<u64>,
    /// The first file's picture size.
    size: (u16, u16),
    video: Track,
    audio: Option<Track>,
    /// Output decode time (audio samples, counted on the video's output timeline) of the first
    /// audio sample.
    audio_anchor: i128,
    pieces: Vec<Piece>,
    payload_len: u64,
    /// The output decode time of the requested end, once a fragment was pushed with an `end`.
    end_out: Option<u64>,
}

/// A track's sample tables as they grow.
#[derive(Debug)]
struct Track {
    timescale: u32,
    /// Distinct sample entries, in order of first use (stsd index = position + 1).
    entries: Vec<Vec<u8>>,
    durations: Vec<u32>,
    sizes: Vec<u32>,
    /// 1-based numbers of the sync samples.
    sync: Vec<u32>,
    chunks: Vec<Chunk>,
    /// Sum of `durations`.
    total: u64,
}

#[derive(Clone, Copy, Debug)]
struct Chunk {
    /// Offset in the `mdat` payload.
    offset: u64,
    samples: u32,
    /// 1-based `stsd` index.
    entry: u32,
}

impl Track {
    fn new(timescale: u32) -> Self {
        Track {
            timescale,
            entries: Vec::new(),
            durations: Vec::new(),
            sizes: Vec::new(),
            sync: Vec::new(),
            chunks: Vec::new(),
            total: 0,
        }
    }

    /// Adds one chunk of `samples` with sample entry `entry` at `offset` in the payload.
    fn add(&mut self, entry: &[u8], offset: u64, samples: &[SampleInfo]) -> Result<(), Error> {
        let index = match self.entries.iter().position(|e| e == entry) {
            Some(i) => i,
            None => {
                self.entries.push(entry.to_vec());
                self.entries.len() - 1
            }
        };
        let too_many = || err!(InvalidArgument, "too many samples for one MP4 track");
        let first = u32::try_from(self.sizes.len()).map_err(|_| too_many())?;
        let n = u32::try_from(samples.len()).map_err(|_| too_many())?;
        first.checked_add(n).ok_or_else(too_many)?;
        for (i, s) in (first..).zip(samples) {
            self.durations.push(s.duration);
            self.sizes.push(s.size);
            if s.is_sync {
                self.sync.push(i + 1);
            }
            self.total += u64::from(s.duration);
        }
        self.chunks.push(Chunk {
            offset,
            samples: n,
            entry: u32::try_from(index + 1).map_err(|_| too_many())?,
        });
        Ok(())
    }
}

/// `t` (in `from` units per second) in `to` units, rounded to the nearest.
fn rescale(t: i128, from: u32, to: u32) -> i128 {
    let (from, to) = (i128::from(from.max(1)), i128::from(to));
    (t * to).div_euclid(from) + i128::from((t * to).rem_euclid(from) * 2 >= from)
}

impl Builder {
    /// A builder whose file presents from the frame shown at `start_90k` (from that frame's
    /// start: see [`Builder::push`]'s return value), on the timeline of the first fragment's file
    /// (at or after that fragment's first decode time: the caller starts from the key frame at or
    /// before the instant wanted).
    pub fn new(start_90k: u64, meta: Metadata) -> Self {
        Builder {
            meta,
            start_90k,
            skip: None,
            size: (0, 0),
            video: Track::new(VIDEO_CLOCK_RATE),
            audio: None,
            audio_anchor: 0,
            pieces: Vec::new(),
            payload_len: 0,
            end_out: None,
        }
    }

    /// Appends a fragment of the file numbered `source` (the caller's choice, given back in
    /// [`Piece`]s) whose init segment is `init`. With `end` (90 kHz, on this file's timeline) only
    /// the samples decoded before `end` are kept (a prefix of each track), the file presents up
    /// to `end`, and no fragment may follow.
    ///
    /// Returns the time (90 kHz) at which the fragment's first video sample is presented in the
    /// output: negative for a first fragment that starts before the start instant. A caller that
    /// goes on across a gap ("gap removed") reports this time as where the gap was removed.
    ///
    /// Fails with `InvalidArgument` when the fragment does not fit: track ids other than `init`'s,
    /// a video timescale other than 90 kHz, a first fragment that does not start with a sync
    /// sample or starts after the start instant, audio at another sample rate than earlier audio,
    /// a fragment after an `end`, or more than 2^32 samples.
    pub fn push(
        &mut self,
        init: &InitInfo,
        source: u32,
        frag: &FragmentSamples,
        end: Option<u64>,
    ) -> Result<i64, Error> {
        if self.end_out.is_some() {
            bail!(InvalidArgument, "a fragment after the end");
        }
        let v = &init.video;
        if v.timescale != VIDEO_CLOCK_RATE {
            bail!(
                InvalidArgument,
                "video timescale {} (expected {VIDEO_CLOCK_RATE})",
                v.timescale
            );
        }
        if frag.video.track_id != v.track_id {
            bail!(
                InvalidArgument,
                "fragment's video track {} is not the file's ({})",
                frag.video.track_id,
                v.track_id
            );
        }
        let audio = match (&frag.audio, &init.audio) {
            (None, _) => None,
            (Some(a), Some(ai)) if a.track_id == ai.track_id => Some((a, ai)),
            (Some(a), _) => bail!(
                InvalidArgument,
                "fragment's second track {} is not the file's audio track",
                a.track_id
            ),
        };
        let tfdt = frag.video.base_decode_time;
        let skip = match self.skip {
            Some(s) => s,
            None => {
                if !frag.video.samples.first().is_some_and(|s| s.is_sync) {
                    bail!(
                        InvalidArgument,
                        "the first fragment does not start with a key frame"
                    );
                }
                let Some(skip) = self.start_90k.checked_sub(tfdt) else {
                    bail!(
                        InvalidArgument,
                        "start {} is before the first fragment ({tfdt})",
                        self.start_90k
                    );
                };
                self.size = (v.width, v.height);
                frame_start(&frag.video.samples, skip)
            }
        };
        if let (Some((_, ai)), Some(t)) = (audio, &self.audio)
            && ai.sample_rate != t.timescale
        {
            bail!(
                InvalidArgument,
                "audio at {} Hz after audio at {} Hz",
                ai.sample_rate,
                t.timescale
            );
        }

        let out_start = self.video.total;
        // The samples decoded before `end`: a prefix of each track.
        let mut t = u128::from(tfdt);
        let nv = frag
            .video
            .samples
            .iter()
            .take_while(|s| {
                let keep = end.is_none_or(|e| t < u128::from(e));
                t += u128::from(s.duration);
                keep
            })
            .count();
        let video = frag.video.samples.get(..nv).unwrap_or_default();
        self.skip = Some(skip);
        if let Some(e) = end {
            self.end_out = Some(out_start.saturating_add(e.saturating_sub(tfdt)));
        }
        let (Some(first), Some(last)) = (video.first(), video.last()) else {
            return Ok(presentation(out_start, skip));
        };
        let offset = self.payload_len;
        self.video.add(&v.sample_entry, offset, video)?;
        let video_len = last.offset + u64::from(last.size) - first.offset;
        self.add_piece(source, first.offset, video_len);

        if let Some((a, ai)) = audio {
            let rate = ai.sample_rate;
            let mut t = u128::from(a.base_decode_time);
            let na = a
                .samples
                .iter()
                .take_while(|s| {
                    let keep = end.is_none_or(|e| {
                        t * u128::from(VIDEO_CLOCK_RATE) < u128::from(e) * u128::from(rate)
                    });
                    t += u128::from(s.duration);
                    keep
                })
                .count();
            let samples = a.samples.get(..na).unwrap_or_default();
            if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                // Where this fragment's audio goes on the output timeline, in audio samples: at
                // the same distance from the fragment's video as in the file.
                let want = rescale(i128::from(out_start), VIDEO_CLOCK_RATE, rate)
                    + i128::from(a.base_decode_time)
                    - rescale(i128::from(tfdt), VIDEO_CLOCK_RATE, rate);
                let track = match &mut self.audio {
                    Some(t) => {
                        let drift = want - (self.audio_anchor + i128::from(t.total));
                        if drift != 0
                            && let Some(d) = t.durations.last_mut()
                            && let Ok(new) = u32::try_from(i128::from(*d) + drift)
                            && new > 0
                        {
                            *d = new;
                            t.total = t.total.saturating_add_signed(drift as i64);
                        }
                        t
                    }
                    None => {
                        self.audio_anchor = want;
                        self.audio.insert(Track::new(rate))
                    }
                };
                track.add(&ai.sample_entry, self.payload_len, samples)?;
                let len = last.offset + u64::from(last.size) - first.offset;
                self.add_piece(source, first.offset, len);
            }
        }
        Ok(presentation(out_start, skip))
    }

    fn add_piece(&mut self, source: u32, offset: u64, len: u64) {
        self.payload_len += len;
        if let Some(p) = self.pieces.last_mut()
            && p.source == source
            && p.offset + p.len == offset
        {
            p.len += len;
            return;
        }
        self.pieces.push(Piece {
            source,
            offset,
            len,
        });
    }

    /// Writes the header. Fails with `InvalidArgument` when nothing would be presented: no
    /// video sample, a start instant at or after the last sample's end, or an `end` at or before
    /// the start. An audio track none of which falls between the start and the end is left out.
    pub fn build(self) -> Result<VirtualMp4, Error> {
        let skip = self.skip.unwrap_or(0);
        let end = self.video.total.min(self.end_out.unwrap_or(u64::MAX));
        if self.video.sizes.is_empty() || end <= skip {
            bail!(
                InvalidArgument,
                "nothing to present: {} video samples lasting {}, from {skip} to {end}",
                self.video.sizes.len(),
                self.video.total
            );
        }
        let duration = end - skip;
        let audio = self.audio.as_ref().and_then(|a| {
            let rate = a.timescale;
            let anchor = rescale(self.audio_anchor, rate, VIDEO_CLOCK_RATE);
            let audio_end = anchor + rescale(i128::from(a.total), rate, VIDEO_CLOCK_RATE);
            let from = anchor.max(i128::from(skip));
            let to = audio_end.min(i128::from(end));
            (to > from).then(|| AudioEdit {
                empty: u64::try_from(from - i128::from(skip)).unwrap_or(0),
                media_time: i64::try_from(rescale(from - anchor, VIDEO_CLOCK_RATE, rate))
                    .unwrap_or(0),
                duration: u64::try_from(to - from).unwrap_or(0),
            })
        });
        let plan = Plan {
            skip,
            duration,
            audio,
        };
        let payload = self.payload_len;
        let mdat_header: u64 = if payload + 8 > u64::from(u32::MAX) {
            16
        } else {
            8
        };
        let mut co64 = false;
        let header = loop {
            let (mut header, offsets) = self.write(&plan, co64)?;
            let header_len = header.len() as u64 + mdat_header;
            if !co64 && self.max_chunk_offset() + header_len > u64::from(u32::MAX) {
                co64 = true; // Written again with 64-bit offsets (and a longer header).
                continue;
            }
            for at in offsets {
                patch(&mut header, at, co64, header_len)?;
            }
            if mdat_header == 16 {
                put_u32(&mut header, 1);
                header.extend_from_slice(b"mdat");
                put_u64(&mut header, payload + 16);
            } else {
                put_u32(&mut header, (payload + 8) as u32); // Fits: checked above.
                header.extend_from_slice(b"mdat");
            }
            break header;
        };
        let mut starts = Vec::with_capacity(self.pieces.len());
        let mut pos = header.len() as u64;
        for p in &self.pieces {
            starts.push(pos);
            pos += p.len;
        }
        Ok(VirtualMp4 {
            header,
            pieces: self.pieces,
            len: pos,
            video_samples: self.video.sizes.len() as u64,
            duration_90k: duration,
            starts,
        })
    }

    fn max_chunk_offset(&self) -> u64 {
        let last = |t: &Track| t.chunks.last().map_or(0, |c| c.offset);
        last(&self.video).max(self.audio.as_ref().map_or(0, last))
    }

    /// `ftyp` + `moov`, with chunk offsets relative to the `mdat` payload; returns where each
    /// offset entry is, to add the header's length once it is known.
    fn write(&self, plan: &Plan, co64: bool) -> Result<(Vec<u8>, Vec<usize>), Error> {
        let samples = self.video.sizes.len() + self.audio.as_ref().map_or(0, |a| a.sizes.len());
        let mut out = Vec::with_capacity(4096 + 12 * samples);
        let mut offsets = Vec::new();
        let ftyp = begin(&mut out, b"ftyp");
        out.extend_from_slice(b"isom");
        put_u32(&mut out, 0x200);
        for brand in [b"isom", b"iso2", b"mp41"] {
            out.extend_from_slice(brand);
        }
        end(&mut out, ftyp)?;

        let created = mp4_time(self.meta.created_unix_secs);
        let moov = begin(&mut out, b"moov");
        {
            let long = created > u64::from(u32::MAX) || plan.duration > u64::from(u32::MAX);
            let mvhd = begin_full(&mut out, b"mvhd", u8::from(long), 0);
            put_time(&mut out, long, created);
            put_time(&mut out, long, created);
            put_u32(&mut out, VIDEO_CLOCK_RATE);
            put_time(&mut out, long, plan.duration);
            put_u32(&mut out, 0x0001_0000); // rate 1.0
            put_u16(&mut out, 0x0100); // volume 1.0
            out.extend_from_slice(&[0; 10]);
            put_matrix(&mut out);
            out.extend_from_slice(&[0; 24]); // pre_defined
            put_u32(
                &mut out,
                if plan.audio.is_some() {
                    AUDIO_ID + 1
                } else {
                    VIDEO_ID + 1
                },
            );
            end(&mut out, mvhd)?;

            let edits = [Edit::Media {
                media_time: i64::try_from(plan.skip).unwrap_or(i64::MAX),
                duration: plan.duration,
            }];
            self.write_trak(
                &mut out,
                &mut offsets,
                &self.video,
                VIDEO_ID,
                created,
                &edits,
                co64,
            )?;
            if let (Some(a), Some(e)) = (&self.audio, &plan.audio) {
                let media = Edit::Media {
                    media_time: e.media_time,
                    duration: e.duration,
                };
                let edits: &[Edit] = if e.empty > 0 {
                    &[Edit::Empty(e.empty), media]
                } else {
                    &[media]
                };
                self.write_trak(&mut out, &mut offsets, a, AUDIO_ID, created, edits, co64)?;
            }
            self.write_udta(&mut out)?;
        }
        end(&mut out, moov)?;
        Ok((out, offsets))
    }

    #[allow(clippy::too_many_arguments)]
    fn write_trak(
        &self,
        out: &mut Vec<u8>,
        offsets: &mut Vec<usize>,
        t: &Track,
        id: u32,
        created: u64,
        edits: &[Edit],
        co64: bool,
    ) -> Result<(), Error> {
        let video = id == VIDEO_ID;
        let presented: u64 = edits.iter().map(|e| e.duration()).sum();
        let trak = begin(out, b"trak");
        let long = created > u64::from(u32::MAX) || presented > u64::from(u32::MAX);
        let tkhd = begin_full(out, b"tkhd", u8::from(long), 0x3); // enabled, in movie
        put_time(out, long, created);
        put_time(out, long, created);
        put_u32(out, id);
        put_u32(out, 0); // reserved
        put_time(out, long, presented);
        out.extend_from_slice(&[0; 8]); // reserved
        put_u16(out, 0); // layer
        put_u16(out, 0); // alternate_group
        put_u16(out, if video { 0 } else { 0x0100 }); // volume
        put_u16(out, 0); // reserved
        put_matrix(out);
        let (w, h) = if video { self.size } else { (0, 0) };
        put_u32(out, u32::from(w) << 16);
        put_u32(out, u32::from(h) << 16);
        end(out, tkhd)?;

        let edts = begin(out, b"edts");
        let long = edits.iter().any(|e| match *e {
            Edit::Empty(d) => d > u64::from(u32::MAX),
            Edit::Media {
                media_time,
                duration,
            } => duration > u64::from(u32::MAX) || i32::try_from(media_time).is_err(),
        });
        let elst = begin_full(out, b"elst", u8::from(long), 0);
        put_u32(out, edits.len() as u32); // 1 or 2
        for e in edits {
            let (duration, media_time) = match *e {
                Edit::Empty(d) => (d, -1),
                Edit::Media {
                    media_time,
                    duration,
                } => (duration, media_time),
            };
            if long {
                put_u64(out, duration);
                out.extend_from_slice(&media_time.to_be_bytes());
            } else {
                put_u32(out, duration as u32); // Fits: !long.
                out.extend_from_slice(&(media_time as i32).to_be_bytes());
            }
            put_u32(out, 0x0001_0000); // media_rate 1.0
        }
        end(out, elst)?;
        end(out, edts)?;

        let mdia = begin(out, b"mdia");
        let long = created > u64::from(u32::MAX) || t.total > u64::from(u32::MAX);
        let mdhd = begin_full(out, b"mdhd", u8::from(long), 0);
        put_time(out, long, created);
        put_time(out, long, created);
        put_u32(out, t.timescale);
        put_time(out, long, t.total);
        put_u16(out, 0x55c4); // language "und"
        put_u16(out, 0);
        end(out, mdhd)?;
        if video {
            write_hdlr(out, b"vide", b"VideoHandler\0")?;
        } else {
            write_hdlr(out, b"soun", b"SoundHandler\0")?;
        }
        let minf = begin(out, b"minf");
        if video {
            let vmhd = begin_full(out, b"vmhd", 0, 1);
            out.extend_from_slice(&[0; 8]);
            end(out, vmhd)?;
        } else {
            let smhd = begin_full(out, b"smhd", 0, 0);
            put_u32(out, 0); // balance, reserved
            end(out, smhd)?;
        }
        write_dinf(out)?;
        let stbl = begin(out, b"stbl");
        write_stbl(out, offsets, t, video, co64)?;
        end(out, stbl)?;
        end(out, minf)?;
        end(out, mdia)?;
        end(out, trak)
    }

    /// `udta` / `meta` / `ilst` with `©nam` and `©cmt` (the iTunes-style metadata ffmpeg and most
    /// players read), when there is a title or comment.
    fn write_udta(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let items = [
            (b"\xa9nam", &self.meta.title),
            (b"\xa9cmt", &self.meta.comment),
        ];
        if items.iter().all(|(_, v)| v.is_none()) {
            return Ok(());
        }
        let udta = begin(out, b"udta");
        let meta = begin_full(out, b"meta", 0, 0);
        let hdlr = begin_full(out, b"hdlr", 0, 0);
        put_u32(out, 0); // pre_defined
        out.extend_from_slice(b"mdir");
        out.extend_from_slice(b"appl");
        out.extend_from_slice(&[0; 8]); // reserved
        out.push(0); // name ""
        end(out, hdlr)?;
        let ilst = begin(out, b"ilst");
        for (fourcc, value) in items {
            let Some(v) = value else { continue };
            let item = begin(out, fourcc);
            let data = begin(out, b"data");
            put_u32(out, 1); // type: UTF-8
            put_u32(out, 0); // locale
            out.extend_from_slice(v.as_bytes());
            end(out, data)?;
            end(out, item)?;
        }
        end(out, ilst)?;
        end(out, meta)?;
        end(out, udta)
    }
}

/// The sample tables of a track; the chunk offsets are relative to the `mdat` payload and their
/// positions are added to `offsets`.
fn write_stbl(
    out: &mut Vec<u8>,
    offsets: &mut Vec<usize>,
    t: &Track,
    video: bool,
    co64: bool,
) -> Result<(), Error> {
    let stsd = begin_full(out, b"stsd", 0, 0);
    put_u32(out, t.entries.len() as u32); // At most one per chunk: fits.
    for e in &t.entries {
        out.extend_from_slice(e);
    }
    end(out, stsd)?;

    // stts: runs of equal durations.
    let stts = begin_full(out, b"stts", 0, 0);
    let count_at = out.len();
    put_u32(out, 0);
    let mut runs = 0u32;
    let mut i = 0;
    while let Some(&d) = t.durations.get(i) {
        let n = t
            .durations
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&x| x == d)
            .count();
        put_u32(out, n as u32); // At most the sample count, which fits u32.
        put_u32(out, d);
        runs += 1;
        i += n;
    }
    set_u32(out, count_at, runs)?;
    end(out, stts)?;

    if video {
        let stss = begin_full(out, b"stss", 0, 0);
        put_u32(out, t.sync.len() as u32);
        for &s in &t.sync {
            put_u32(out, s);
        }
        end(out, stss)?;
    }

    // stsc: a new entry where samples per chunk or the sample entry change.
    let stsc = begin_full(out, b"stsc", 0, 0);
    let count_at = out.len();
    put_u32(out, 0);
    let mut entries = 0u32;
    let mut prev = None;
    for (i, c) in (1u32..).zip(&t.chunks) {
        if prev != Some((c.samples, c.entry)) {
            put_u32(out, i);
            put_u32(out, c.samples);
            put_u32(out, c.entry);
            entries += 1;
            prev = Some((c.samples, c.entry));
        }
    }
    set_u32(out, count_at, entries)?;
    end(out, stsc)?;

    let stsz = begin_full(out, b"stsz", 0, 0);
    put_u32(out, 0); // sample_size: each its own
    put_u32(out, t.sizes.len() as u32);
    for &s in &t.sizes {
        put_u32(out, s);
    }
    end(out, stsz)?;

    let table = begin_full(out, if co64 { b"co64" } else { b"stco" }, 0, 0);
    put_u32(out, t.chunks.len() as u32);
    for c in &t.chunks {
        offsets.push(out.len());
        if co64 {
            put_u64(out, c.offset);
        } else {
            put_u32(out, c.offset as u32); // Checked with the header's length by build.
        }
    }
    end(out, table)
}

/// Adds `header_len` to the chunk offset entry at `at`.
fn patch(out: &mut [u8], at: usize, co64: bool, header_len: u64) -> Result<(), Error> {
    let bad = || err!(Internal, "chunk offset entry at {at} out of range");
    if co64 {
        let b = out.get_mut(at..at + 8).ok_or_else(bad)?;
        let v = u64::from_be_bytes(b.try_into().map_err(|_| bad())?) + header_len;
        b.copy_from_slice(&v.to_be_bytes());
    } else {
        let b = out.get_mut(at..at + 4).ok_or_else(bad)?;
        let v = u64::from(u32::from_be_bytes(b.try_into().map_err(|_| bad())?)) + header_len;
        let v = u32::try_from(v).map_err(|_| bad())?;
        b.copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

fn set_u32(out: &mut [u8], at: usize, v: u32) -> Result<(), Error> {
    out.get_mut(at..at + 4)
        .ok_or_else(|| err!(Internal, "count at {at} out of range"))?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

/// A time or duration: 64 bits in a version 1 box, else 32 (the caller checked it fits).
fn put_time(out: &mut Vec<u8>, long: bool, v: u64) {
    if long {
        put_u64(out, v);
    } else {
        put_u32(out, v as u32);
    }
}

/// The presentation time of output decode time `t` with the video edit starting at `skip`.
/// The start (from the first sample, in the track's timescale) of the sample presented at `at`:
/// the edit list starts on a frame, never inside one. Players built on FFmpeg (ffmpeg, ffplay,
/// Chromium's `<video src>`) drop a sample that begins before the edit and shift their timeline
/// to the next one, so an edit inside a frame showed the frame after the one at the start. `at`
/// past the samples is kept as it is.
fn frame_start(samples: &[SampleInfo], at: u64) -> u64 {
    let mut t = 0u64;
    for s in samples {
        let next = t.saturating_add(u64::from(s.duration));
        if at < next {
            return t;
        }
        t = next;
    }
    at
}

fn presentation(t: u64, skip: u64) -> i64 {
    i64::try_from(i128::from(t) - i128::from(skip)).unwrap_or(i64::MIN)
}

/// The edit lists, in the movie timescale (90 kHz) except media times (the track's).
struct Plan {
    skip: u64,
    duration: u64,
    audio: Option<AudioEdit>,
}

struct AudioEdit {
    /// An empty edit first (audio starts after the start instant); 0: none.
    empty: u64,
    media_time: i64,
    duration: u64,
}

#[derive(Clone, Copy)]
enum Edit {
    Empty(u64),
    Media { media_time: i64, duration: u64 },
}

impl Edit {
    fn duration(&self) -> u64 {
        match *self {
            Edit::Empty(d) => d,
            Edit::Media { duration, .. } => duration,
        }
    }
}
