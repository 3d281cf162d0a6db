//! Fragmented MP4 (ISO BMFF, ISO/IEC 14496-12) writer for one video track and an optional AAC
//! audio track: an initialization segment ([`init_segment`], [`init_segment_av`]) and media
//! fragments ([`fragment`], [`fragment_av`]). Pure code, no I/O.
//!
//! Layout of the initialization segment (the audio `trak` and `trex` only with audio):
//! ```text
//! ftyp (major isom, compatible isom iso6 mp41)
//! moov
//!   mvhd (timescale 90000, duration 0, next_track_ID 2, or 3 with audio; version 1 with the
//!         segment's wall-clock start as creation and modification time when a
//!         [`SegmentStart`] is given)
//!   trak
//!     tkhd (track 1, enabled + in movie, width/height 16.16)
//!     edts / elst (with a [`SegmentStart`]: one edit, media_time = the first tfdt)
//!     mdia
//!       mdhd (timescale 90000, language und)
//!       hdlr (vide)
//!       minf
//!         vmhd
//!         dinf / dref / url (self-contained)
//!         stbl
//!           stsd / avc1 + avcC  or  hvc1 + hvcC
//!           stts, stsc, stsz, stco (all empty)
//!   trak                                           (audio)
//!     tkhd (track 2, enabled + in movie, volume 1.0, width/height 0)
//!     edts / elst (with a [`SegmentStart`]: media_time = the start in audio samples)
//!     mdia
//!       mdhd (timescale = sample rate, language und)
//!       hdlr (soun)
//!       minf
//!         smhd
//!         dinf / dref / url (self-contained)
//!         stbl
//!           stsd / mp4a + esds (ES_Descriptor: DecoderConfigDescriptor with the
//!                               AudioSpecificConfig, SLConfigDescriptor predefined 2)
//!           stts, stsc, stsz, stco (all empty)
//!   mvex
//!     trex (track 1, sample description 1)
//!     trex (track 2, sample description 1)            (audio)
//! ```
//! Layout of a fragment (the audio `traf` only when the fragment has audio samples):
//! ```text
//! moof
//!   mfhd (sequence_number)
//!   traf
//!     tfhd (track 1, default-base-is-moof)
//!     tfdt (version 1: 64-bit base media decode time, 90 kHz)
//!     trun (data-offset, per-sample duration, size and flags)
//!   traf                                           (audio)
//!     tfhd (track 2, default-base-is-moof, default-sample-flags: sync)
//!     tfdt (version 1: 64-bit base media decode time, audio sample rate)
//!     trun (data-offset, per-sample duration and size)
//! mdat
//!   video samples with 4-byte big-endian length prefixes
//!   audio frames (raw AAC, no ADTS headers), right after the last video sample
//! ```
//! Each `trun`'s data offset counts from the start of the `moof` and points at its track's first
//! sample in the `mdat`.
//!
//! Video times are on the 90 kHz clock ([`crate::VIDEO_CLOCK_RATE`]); there are no composition
//! time offsets (the cameras' streams have no B-frames), so decode time equals presentation time.
//! Audio times are in samples at the stream's sample rate (the audio track's timescale).
//!
//! A recorder's fragments carry decode times on a long-running timeline (the recorder's is 90 kHz
//! ticks since the Unix epoch), so that consecutive files concatenate. A file that is played on
//! its own must still start at 0: [`init_segment_at`] adds an edit list to every track whose
//! `media_time` is the file's first decode time, so presentation starts at 0 and lasts as long
//! as the file's fragments, and records the wall-clock start in `mvhd` instead.

use crate::nal::annexb_nals;
use crate::sps::parse_h265_sps;
use crate::{AudioCodec, AudioParams, Codec, VIDEO_CLOCK_RATE, VideoParams};
use base::{Error, bail, err};

/// The video track's id.
pub const TRACK_ID: u32 = 1;
/// The audio track's id (present only in files written with audio).
pub const AUDIO_TRACK_ID: u32 = 2;

/// `sample_flags` of a sync sample: `sample_depends_on` = 2 (does not depend on others).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: `sample_depends_on` = 1, `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One video sample (access unit) of a fragment.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// Annex B, 4-byte start codes as in [`crate::Frame`]; 3-byte start codes are accepted too.
    pub data: &'a [u8],
    /// Duration on the 90 kHz clock (time until the next sample's decode time).
    pub duration: u32,
    /// A random-access point (sync sample).
    pub is_key: bool,
}

/// One audio sample (for AAC: one raw frame without ADTS header) of a fragment. Every audio
/// sample is a sync sample.
#[derive(Clone, Copy, Debug)]
pub struct AudioSample<'a> {
    pub data: &'a [u8],
    /// Duration in samples at the audio track's timescale (the sample rate; 1024 for AAC-LC).
    pub duration: u32,
}

/// Where a file's media starts and when it was recorded, for [`init_segment_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentStart {
    /// The base media decode time (90 kHz) of the file's first video fragment. The recorder
    /// writes 0 (its files' `tfdt`s start at 0), and then no edit list is needed; a larger value
    /// (the file's first fragment was lost) gets an edit list per track that maps it to
    /// presentation time 0.
    pub decode_time_90k: u64,
    /// The wall-clock time of the file's start, seconds since the Unix epoch (written as the
    /// creation and modification time of `mvhd`, every `tkhd` and every `mdhd`).
    pub unix_secs: i64,
}

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_EPOCH_OFFSET_SECS: i64 = 2_082_844_800;

/// Writes the initialization segment (`ftyp` + `moov`) for a video-only stream with `params`.
/// The same as [`init_segment_av`] without audio.
pub fn init_segment(params: &VideoParams) -> Result<Vec<u8>, Error> {
    init_segment_av(params, None)
}

/// Writes the initialization segment of a recorded file: as [`init_segment_av`], with
/// `start.unix_secs` as the creation and modification time of the movie, its tracks and their
/// media (version 1 boxes: seconds since 1904 overflow 32 bits in 2040). When the file's first
/// fragment is decoded at `start.decode_time_90k` > 0, each track gets an edit list so that the
/// file still presents from 0; the audio track's edit starts at the same instant, in its own
/// timescale (rounded to the nearest sample).
pub fn init_segment_at(
    video: &VideoParams,
    audio: Option<&AudioParams>,
    start: SegmentStart,
) -> Result<Vec<u8>, Error> {
    write_init(video, audio, Some(start))
}

/// Writes the initialization segment (`ftyp` + `moov`) for a stream with `video` and, if given,
/// an AAC audio track ([`AUDIO_TRACK_ID`]) with `audio`.
///
/// Fails with `InvalidArgument` for parameters an MP4 sample entry cannot hold: a picture wider
/// or taller than 65535, unusable parameter sets, an audio sample rate of 0, or an empty (or
/// absurdly large) AudioSpecificConfig. A sample rate above 65535 does not fit the 16.16
/// `samplerate` field of the `mp4a` entry: it is written as 0 there, and players take the rate from
/// the AudioSpecificConfig (and the timescale from `mdhd`, which holds the full rate).
pub fn init_segment_av(video: &VideoParams, audio: Option<&AudioParams>) -> Result<Vec<u8>, Error> {
    write_init(video, audio, None)
}

/// The decode time `t_90k` in samples at `rate` (rounded to the nearest).
pub fn rescale_90k(t_90k: u64, rate: u32) -> u64 {
    let v = (u128::from(t_90k) * u128::from(rate) + u128::from(VIDEO_CLOCK_RATE / 2))
        / u128::from(VIDEO_CLOCK_RATE);
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn write_init(
    video: &VideoParams,
    audio: Option<&AudioParams>,
    start: Option<SegmentStart>,
) -> Result<Vec<u8>, Error> {
    let params = video;
    let (Ok(width), Ok(height)) = (u16::try_from(params.width), u16::try_from(params.height))
    else {
        bail!(
            InvalidArgument,
            "picture size {}x{} does not fit an MP4 sample entry",
            params.width,
            params.height
        );
    };
    if let Some(a) = audio {
        check_audio(a)?;
    }
    let mut out = Vec::with_capacity(1024);

    let ftyp = begin(&mut out, b"ftyp");
    out.extend_from_slice(b"isom");
    out.extend_from_slice(&0x200u32.to_be_bytes()); // minor_version
    for brand in [b"isom", b"iso6", b"mp41"] {
        out.extend_from_slice(brand);
    }
    end(&mut out, ftyp)?;

    let moov = begin(&mut out, b"moov");
    {
        let mvhd = match start {
            None => {
                let mvhd = begin_full(&mut out, b"mvhd", 0, 0);
                put_u32(&mut out, 0); // creation_time
                put_u32(&mut out, 0); // modification_time
                put_u32(&mut out, VIDEO_CLOCK_RATE); // timescale
                put_u32(&mut out, 0); // duration (unknown: fragmented)
                mvhd
            }
            Some(s) => {
                // Version 1: 64-bit times (seconds since 1904 overflow 32 bits in 2040).
                let mvhd = begin_full(&mut out, b"mvhd", 1, 0);
                let created = mp4_time(s.unix_secs);
                put_u64(&mut out, created); // creation_time
                put_u64(&mut out, created); // modification_time
                put_u32(&mut out, VIDEO_CLOCK_RATE); // timescale
                put_u64(&mut out, 0); // duration (unknown: fragmented)
                mvhd
            }
        };
        put_u32(&mut out, 0x0001_0000); // rate 1.0
        put_u16(&mut out, 0x0100); // volume 1.0
        out.extend_from_slice(&[0; 10]); // reserved
        put_matrix(&mut out);
        out.extend_from_slice(&[0; 24]); // pre_defined
        let last_track = if audio.is_some() {
            AUDIO_TRACK_ID
        } else {
            TRACK_ID
        };
        put_u32(&mut out, last_track + 1); // next_track_ID
        end(&mut out, mvhd)?;

        let created = start.map(|s| mp4_time(s.unix_secs));
        // Media from 0 needs no edit list.
        let edit = start.map(|s| s.decode_time_90k).filter(|&t| t > 0);
        let video = Times { created, edit };
        write_video_trak(&mut out, params, width, height, video)?;
        if let Some(a) = audio {
            let times = Times {
                created,
                edit: edit.map(|t| rescale_90k(t, a.sample_rate)),
            };
            write_audio_trak(&mut out, a, times)?;
        }

        let mvex = begin(&mut out, b"mvex");
        write_trex(&mut out, TRACK_ID)?;
        if audio.is_some() {
            write_trex(&mut out, AUDIO_TRACK_ID)?;
        }
        end(&mut out, mvex)?;
    }
    end(&mut out, moov)?;
    Ok(out)
}

/// `unix_secs` as MP4 time: seconds since 1904-01-01 (0 before that).
pub(crate) fn mp4_time(unix_secs: i64) -> u64 {
    u64::try_from(unix_secs.saturating_add(MP4_EPOCH_OFFSET_SECS)).unwrap_or(0)
}

/// A track's creation time (MP4 time; `None`: version 0 boxes with 0) and edit (`media_time`
/// in the track's timescale presented at 0; `None`: no edit list).
#[derive(Clone, Copy, Debug, Default)]
struct Times {
    created: Option<u64>,
    edit: Option<u64>,
}

/// Rejects audio parameters that [`write_audio_trak`] cannot write.
fn check_audio(a: &AudioParams) -> Result<(), Error> {
    match a.codec {
        AudioCodec::Aac => {}
    }
    if a.sample_rate == 0 {
        bail!(InvalidArgument, "audio sample rate 0");
    }
    if a.config.is_empty() {
        bail!(InvalidArgument, "empty AAC AudioSpecificConfig");
    }
    if a.config.len() > MAX_AUDIO_CONFIG_LEN {
        bail!(
            InvalidArgument,
            "AAC AudioSpecificConfig of {} bytes is too large",
            a.config.len()
        );
    }
    Ok(())
}

/// Largest AudioSpecificConfig accepted (real ones are 2 to a few dozen bytes); keeps every
/// descriptor size within the 28 bits of the MPEG-4 size encoding.
const MAX_AUDIO_CONFIG_LEN: usize = 1 << 16;

/// The video `trak` (track [`TRACK_ID`]).
fn write_video_trak(
    out: &mut Vec<u8>,
    params: &VideoParams,
    width: u16,
    height: u16,
    times: Times,
) -> Result<(), Error> {
    let trak = begin(out, b"trak");
    {
        write_tkhd(out, TRACK_ID, 0, width, height, times.created)?; // no volume (video)
        if let Some(media_time) = times.edit {
            write_edts(out, media_time)?;
        }

        let mdia = begin(out, b"mdia");
        {
            write_mdhd(out, VIDEO_CLOCK_RATE, times.created)?;
            write_hdlr(out, b"vide", b"VideoHandler\0")?;

            let minf = begin(out, b"minf");
            {
                let vmhd = begin_full(out, b"vmhd", 0, 1);
                out.extend_from_slice(&[0; 8]); // graphicsmode, opcolor
                end(out, vmhd)?;

                write_dinf(out)?;

                let stbl = begin(out, b"stbl");
                {
                    let stsd = begin_full(out, b"stsd", 0, 0);
                    put_u32(out, 1); // entry_count
                    write_sample_entry(out, params, width, height)?;
                    end(out, stsd)?;
                    write_empty_sample_tables(out)?;
                }
                end(out, stbl)?;
            }
            end(out, minf)?;
        }
        end(out, mdia)?;
    }
    end(out, trak)
}

/// A `tkhd` (enabled, in movie) for track `id`; `volume` is 8.8 fixed point, the size in pixels.
/// With a creation time (MP4 time) it is version 1, else version 0 with zero times.
fn write_tkhd(
    out: &mut Vec<u8>,
    id: u32,
    volume: u16,
    width: u16,
    height: u16,
    created: Option<u64>,
) -> Result<(), Error> {
    let tkhd = match created {
        None => {
            let tkhd = begin_full(out, b"tkhd", 0, 0x3); // enabled, in movie
            put_u32(out, 0); // creation_time
            put_u32(out, 0); // modification_time
            put_u32(out, id);
            put_u32(out, 0); // reserved
            put_u32(out, 0); // duration
            tkhd
        }
        Some(t) => {
            let tkhd = begin_full(out, b"tkhd", 1, 0x3); // enabled, in movie
            put_u64(out, t); // creation_time
            put_u64(out, t); // modification_time
            put_u32(out, id);
            put_u32(out, 0); // reserved
            put_u64(out, 0); // duration (unknown: fragmented)
            tkhd
        }
    };
    out.extend_from_slice(&[0; 8]); // reserved
    put_u16(out, 0); // layer
    put_u16(out, 0); // alternate_group
    put_u16(out, volume);
    put_u16(out, 0); // reserved
    put_matrix(out);
    put_u32(out, u32::from(width) << 16);
    put_u32(out, u32::from(height) << 16);
    end(out, tkhd)
}

/// The audio `trak` (track [`AUDIO_TRACK_ID`]); `a` passed [`check_audio`].
fn write_audio_trak(out: &mut Vec<u8>, a: &AudioParams, times: Times) -> Result<(), Error> {
    let trak = begin(out, b"trak");
    {
        write_tkhd(out, AUDIO_TRACK_ID, 0x0100, 0, 0, times.created)?; // volume 1.0, no picture
        if let Some(media_time) = times.edit {
            write_edts(out, media_time)?;
        }

        let mdia = begin(out, b"mdia");
        {
            write_mdhd(out, a.sample_rate, times.created)?;
            write_hdlr(out, b"soun", b"SoundHandler\0")?;

            let minf = begin(out, b"minf");
            {
                let smhd = begin_full(out, b"smhd", 0, 0);
                put_u16(out, 0); // balance
                put_u16(out, 0); // reserved
                end(out, smhd)?;

                write_dinf(out)?;

                let stbl = begin(out, b"stbl");
                {
                    let stsd = begin_full(out, b"stsd", 0, 0);
                    put_u32(out, 1); // entry_count
                    let mp4a = begin(out, b"mp4a");
                    out.extend_from_slice(&[0; 6]); // reserved
                    put_u16(out, 1); // data_reference_index
                    out.extend_from_slice(&[0; 8]); // reserved
                    put_u16(out, a.channels); // channelcount
                    put_u16(out, 16); // samplesize
                    put_u16(out, 0); // pre_defined
                    put_u16(out, 0); // reserved
                    // 16.16; a rate that does not fit is left to the AudioSpecificConfig.
                    put_u32(
                        out,
                        u16::try_from(a.sample_rate).map_or(0, |r| u32::from(r) << 16),
                    );
                    write_esds(out, a)?;
                    end(out, mp4a)?;
                    end(out, stsd)?;
                    write_empty_sample_tables(out)?;
                }
                end(out, stbl)?;
            }
            end(out, minf)?;
        }
        end(out, mdia)?;
    }
    end(out, trak)
}

/// `edts` / `elst` (version 1) with one edit: the track's media from `media_time` (in the
/// track's timescale) is presented from time 0, at normal rate, for the whole file
/// (`segment_duration` 0: the duration of a fragmented file is not known when its init segment
/// is written).
fn write_edts(out: &mut Vec<u8>, media_time: u64) -> Result<(), Error> {
    let Ok(media_time) = i64::try_from(media_time) else {
        bail!(
            InvalidArgument,
            "edit list media time {media_time} too large"
        );
    };
    let edts = begin(out, b"edts");
    let elst = begin_full(out, b"elst", 1, 0);
    put_u32(out, 1); // entry_count
    put_u64(out, 0); // segment_duration
    out.extend_from_slice(&media_time.to_be_bytes());
    put_u16(out, 1); // media_rate_integer
    put_u16(out, 0); // media_rate_fraction
    end(out, elst)?;
    end(out, edts)
}

/// `mdhd`: version 1 with a creation time (MP4 time), else version 0 with zero times.
fn write_mdhd(out: &mut Vec<u8>, timescale: u32, created: Option<u64>) -> Result<(), Error> {
    let mdhd = match created {
        None => {
            let mdhd = begin_full(out, b"mdhd", 0, 0);
            put_u32(out, 0); // creation_time
            put_u32(out, 0); // modification_time
            put_u32(out, timescale);
            put_u32(out, 0); // duration
            mdhd
        }
        Some(t) => {
            let mdhd = begin_full(out, b"mdhd", 1, 0);
            put_u64(out, t); // creation_time
            put_u64(out, t); // modification_time
            put_u32(out, timescale);
            put_u64(out, 0); // duration (unknown: fragmented)
            mdhd
        }
    };
    put_u16(out, 0x55c4); // language "und"
    put_u16(out, 0); // pre_defined
    end(out, mdhd)
}

pub(crate) fn write_hdlr(out: &mut Vec<u8>, handler: &[u8; 4], name: &[u8]) -> Result<(), Error> {
    let hdlr = begin_full(out, b"hdlr", 0, 0);
    put_u32(out, 0); // pre_defined
    out.extend_from_slice(handler);
    out.extend_from_slice(&[0; 12]); // reserved
    out.extend_from_slice(name);
    end(out, hdlr)
}

/// `dinf` / `dref` / `url `: the media is in the same file.
pub(crate) fn write_dinf(out: &mut Vec<u8>) -> Result<(), Error> {
    let dinf = begin(out, b"dinf");
    let dref = begin_full(out, b"dref", 0, 0);
    put_u32(out, 1); // entry_count
    let url = begin_full(out, b"url ", 0, 1); // media in the same file
    end(out, url)?;
    end(out, dref)?;
    end(out, dinf)
}

/// `stts`, `stsc`, `stco` and `stsz` without samples (they are all in the fragments).
pub(crate) fn write_empty_sample_tables(out: &mut Vec<u8>) -> Result<(), Error> {
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = begin_full(out, fourcc, 0, 0);
        put_u32(out, 0); // entry_count
        end(out, b)?;
    }
    let stsz = begin_full(out, b"stsz", 0, 0);
    put_u32(out, 0); // sample_size
    put_u32(out, 0); // sample_count
    end(out, stsz)
}

pub(crate) fn write_trex(out: &mut Vec<u8>, track_id: u32) -> Result<(), Error> {
    let trex = begin_full(out, b"trex", 0, 0);
    put_u32(out, track_id);
    put_u32(out, 1); // default_sample_description_index
    put_u32(out, 0); // default_sample_duration
    put_u32(out, 0); // default_sample_size
    put_u32(out, 0); // default_sample_flags
    end(out, trex)
}

/// `esds` (ISO/IEC 14496-14 5.6): an ES_Descriptor holding the DecoderConfigDescriptor (AAC,
/// audio stream, the AudioSpecificConfig as DecoderSpecificInfo) and an SLConfigDescriptor.
fn write_esds(out: &mut Vec<u8>, a: &AudioParams) -> Result<(), Error> {
    let channels = u64::from(a.channels.max(1));
    // An AAC frame holds at most 6144 bits per channel, for 1024 samples.
    let buffer_size = (768 * channels).min(0x00ff_ffff) as u32; // Fits 24 bits: clamped.
    let max_bitrate = u32::try_from(6 * channels * u64::from(a.sample_rate)).unwrap_or(u32::MAX);
    let dsi = &a.config[..];
    let dcd_len = 13 + descriptor_len(dsi.len());
    let es_len = 3 + descriptor_len(dcd_len) + descriptor_len(1);

    let esds = begin_full(out, b"esds", 0, 0);
    put_descriptor_header(out, 0x03, es_len); // ES_DescrTag
    put_u16(out, 0); // ES_ID (0 in a file: the track's)
    out.push(0); // no dependence, URL or OCR stream; streamPriority 0
    put_descriptor_header(out, 0x04, dcd_len); // DecoderConfigDescrTag
    out.push(0x40); // objectTypeIndication: MPEG-4 Audio
    out.push((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
    out.extend_from_slice(&buffer_size.to_be_bytes()[1..]); // bufferSizeDB (24 bits)
    put_u32(out, max_bitrate);
    put_u32(out, 0); // avgBitrate: 0 = variable
    put_descriptor_header(out, 0x05, dsi.len()); // DecSpecificInfoTag
    out.extend_from_slice(dsi);
    put_descriptor_header(out, 0x06, 1); // SLConfigDescrTag
    out.push(2); // predefined: reserved for use in MP4 files
    end(out, esds)
}

/// Bytes of the MPEG-4 expandable size field for a descriptor body of `n` bytes (7 bits a byte).
fn size_field_len(n: usize) -> usize {
    match n {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        _ => 4,
    }
}

/// Bytes of a whole descriptor (tag, size field, body) with a body of `n` bytes.
fn descriptor_len(n: usize) -> usize {
    1 + size_field_len(n) + n
}

/// A descriptor's tag and expandable size (`n` < 2^28: bounded by [`MAX_AUDIO_CONFIG_LEN`]).
fn put_descriptor_header(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    let len = size_field_len(n);
    for i in (0..len).rev() {
        let more = if i == 0 { 0 } else { 0x80 };
        out.push(((n >> (7 * i)) & 0x7f) as u8 | more);
    }
}

/// Seconds from 1900-01-01 (the NTP epoch) to 1970-01-01.
const NTP_UNIX_OFFSET_SECS: i64 = 2_208_988_800;

/// Bytes of a [`prft`] box.
pub const PRFT_LEN: usize = 32;

/// `prft` flags: the NTP time is when the sample at `media_time` was captured (ISO/IEC 14496-12
/// §8.16.5; ours is the frame's anchored receive time, the closest measure of capture we have).
pub const PRFT_FLAGS_CAPTURED: u32 = 24;

/// A `prft` (Producer Reference Time, ISO/IEC 14496-12 §8.16.5, version 1) box for the video
/// track: the sample decoded at `media_time_90k` (the fragment's `tfdt`) was captured at
/// `unix_90k` (90 kHz ticks since the Unix epoch), as a 64-bit NTP timestamp (RFC 5905; its
/// 32-bit seconds wrap in 2036, and [`ntp_to_unix_90k`] reads 1968 to 2104 as RFC 4330 §3 says).
/// Written right before the fragment's `moof`.
pub fn prft(unix_90k: i64, media_time_90k: u64) -> [u8; PRFT_LEN] {
    let rate = i64::from(VIDEO_CLOCK_RATE);
    let secs = unix_90k
        .div_euclid(rate)
        .saturating_add(NTP_UNIX_OFFSET_SECS);
    let rem = unix_90k.rem_euclid(rate).unsigned_abs(); // In [0, 90000).
    let frac = (rem << 32) / u64::from(VIDEO_CLOCK_RATE);
    // The low 32 bits of the seconds: the NTP era is implied.
    let ntp = (secs.max(0).unsigned_abs() << 32) | frac;
    let mut out = [0u8; PRFT_LEN];
    out[..4].copy_from_slice(&(PRFT_LEN as u32).to_be_bytes());
    out[4..8].copy_from_slice(b"prft");
    out[8..12].copy_from_slice(&((1u32 << 24) | PRFT_FLAGS_CAPTURED).to_be_bytes());
    out[12..16].copy_from_slice(&TRACK_ID.to_be_bytes());
    out[16..24].copy_from_slice(&ntp.to_be_bytes());
    out[24..32].copy_from_slice(&media_time_90k.to_be_bytes());
    out
}

/// The Unix time (90 kHz ticks) of a 64-bit NTP timestamp between 1968 and 2104 (RFC 4330 §3:
/// seconds with the top bit clear are in era 1, from 2036), exact for timestamps [`prft`] wrote
/// (the fraction is rounded up to the tick it was rounded down from).
pub fn ntp_to_unix_90k(ntp: u64) -> i64 {
    let mut secs = ntp >> 32;
    if secs & 0x8000_0000 == 0 {
        secs += 1 << 32;
    }
    let frac = ntp & 0xffff_ffff;
    let ticks = (frac * u64::from(VIDEO_CLOCK_RATE)).div_ceil(1 << 32); // < 90000.
    // secs < 2^33 and ticks < 90000: both fit i64.
    (secs as i64 - NTP_UNIX_OFFSET_SECS) * i64::from(VIDEO_CLOCK_RATE) + ticks as i64
}

/// Writes one video-only fragment (`moof` + `mdat`) holding `samples` in decode order, the first
/// of which is decoded at `base_decode_time` (90 kHz). The same as [`fragment_av`] without audio.
///
/// Samples are converted from Annex B to 4-byte length prefixes; their NAL units are kept as they
/// are (in-band parameter sets included, which players accept and which keeps each sample the size
/// of its Annex B form with 4-byte start codes).
///
/// Fails with `InvalidArgument` for no samples, a sample without NAL units, or a fragment too big
/// for 32-bit box sizes.
pub fn fragment(
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample],
) -> Result<Vec<u8>, Error> {
    fragment_av(sequence_number, base_decode_time, samples, None)
}

/// Writes one fragment (`moof` + `mdat`) holding the `video` samples in decode order, the first of
/// which is decoded at `video_base_decode_time` (90 kHz), and, when `audio` is given and not
/// empty, its audio samples, the first decoded at the given base decode time (in samples at the
/// audio sample rate). Video samples are written as by [`fragment`]; audio frames as they are,
/// after the video samples in the same `mdat`. Requires an init segment from [`init_segment_av`]
/// with audio.
///
/// Fails with `InvalidArgument` for no video samples, a video sample without NAL units, or a
/// fragment too big for 32-bit box sizes.
pub fn fragment_av(
    sequence_number: u32,
    video_base_decode_time: u64,
    video: &[Sample],
    audio: Option<(u64, &[AudioSample])>,
) -> Result<Vec<u8>, Error> {
    let samples = video;
    if samples.is_empty() {
        bail!(InvalidArgument, "an MP4 fragment needs at least one sample");
    }
    let Ok(sample_count) = u32::try_from(samples.len()) else {
        bail!(InvalidArgument, "too many samples for one fragment");
    };
    let audio = audio.filter(|(_, a)| !a.is_empty());
    // Every sample's payload size (length prefixes included) and the mdat payload size. The NAL
    // units are found once and kept for the copy below: the start-code scan is most of the cost
    // of building a fragment.
    let mut sizes = Vec::with_capacity(samples.len());
    let mut nals: Vec<&[u8]> = Vec::with_capacity(samples.len() * 3);
    let mut payload: u64 = 0;
    for (i, s) in samples.iter().enumerate() {
        let first = nals.len();
        nals.extend(annexb_nals(s.data));
        let size: u64 = nals[first..].iter().map(|n| 4 + n.len() as u64).sum();
        if size == 0 {
            bail!(
                InvalidArgument,
                "sample {i} of the fragment has no NAL units"
            );
        }
        let Ok(size32) = u32::try_from(size) else {
            bail!(InvalidArgument, "sample {i} is too large ({size} bytes)");
        };
        sizes.push(size32);
        payload += size;
    }
    // The audio traf (68 bytes + 8 per sample) and the audio payload.
    let (audio_count, audio_traf, audio_payload) = match audio {
        None => (0, 0, 0),
        Some((_, a)) => {
            let Ok(n) = u32::try_from(a.len()) else {
                bail!(InvalidArgument, "too many audio samples for one fragment");
            };
            let mut bytes = 0u64;
            for (i, s) in a.iter().enumerate() {
                if u32::try_from(s.data.len()).is_err() {
                    bail!(InvalidArgument, "audio sample {i} is too large");
                }
                bytes += s.data.len() as u64;
            }
            (n, 68 + 8 * u64::from(n), bytes)
        }
    };
    let moof_size = 8 + 16 + 8 + 16 + 20 + 20 + 16 * samples.len() as u64 + audio_traf;
    let total = moof_size + 8 + payload + audio_payload;
    if total > u64::from(u32::MAX) {
        bail!(InvalidArgument, "fragment of {total} bytes is too large");
    }
    let Ok(capacity) = usize::try_from(total) else {
        bail!(InvalidArgument, "fragment of {total} bytes is too large");
    };
    let mut out = Vec::with_capacity(capacity);

    let moof = begin(&mut out, b"moof");
    let mfhd = begin_full(&mut out, b"mfhd", 0, 0);
    put_u32(&mut out, sequence_number);
    end(&mut out, mfhd)?;
    let traf = begin(&mut out, b"traf");
    let data_offset_at;
    {
        let tfhd = begin_full(&mut out, b"tfhd", 0, 0x02_0000); // default-base-is-moof
        put_u32(&mut out, TRACK_ID);
        end(&mut out, tfhd)?;

        let tfdt = begin_full(&mut out, b"tfdt", 1, 0);
        out.extend_from_slice(&video_base_decode_time.to_be_bytes());
        end(&mut out, tfdt)?;

        // data-offset, sample-duration, sample-size and sample-flags present.
        let trun = begin_full(&mut out, b"trun", 0, 0x00_0701);
        put_u32(&mut out, sample_count);
        data_offset_at = out.len();
        put_u32(&mut out, 0); // data_offset, patched below
        for (s, &size) in samples.iter().zip(&sizes) {
            put_u32(&mut out, s.duration);
            put_u32(&mut out, size);
            put_u32(
                &mut out,
                if s.is_key {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                },
            );
        }
        end(&mut out, trun)?;
    }
    end(&mut out, traf)?;
    let mut audio_offset_at = None;
    if let Some((base, audio_samples)) = audio {
        let traf = begin(&mut out, b"traf");
        // default-base-is-moof, default-sample-flags: every audio sample is a sync sample.
        let tfhd = begin_full(&mut out, b"tfhd", 0, 0x02_0020);
        put_u32(&mut out, AUDIO_TRACK_ID);
        put_u32(&mut out, SYNC_SAMPLE_FLAGS);
        end(&mut out, tfhd)?;

        let tfdt = begin_full(&mut out, b"tfdt", 1, 0);
        out.extend_from_slice(&base.to_be_bytes());
        end(&mut out, tfdt)?;

        // data-offset, sample-duration and sample-size present.
        let trun = begin_full(&mut out, b"trun", 0, 0x00_0301);
        put_u32(&mut out, audio_count);
        audio_offset_at = Some(out.len());
        put_u32(&mut out, 0); // data_offset, patched below
        for s in audio_samples {
            put_u32(&mut out, s.duration);
            put_u32(&mut out, s.data.len() as u32); // Fits: checked above.
        }
        end(&mut out, trun)?;
        end(&mut out, traf)?;
    }
    end(&mut out, moof)?;
    // The first sample starts right after the mdat header; offsets count from the moof's start.
    let Ok(data_offset) = u32::try_from(out.len() - moof + 8) else {
        bail!(InvalidArgument, "moof too large");
    };
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    if let Some(at) = audio_offset_at {
        // The audio frames follow the video samples.
        let Ok(audio_offset) = u32::try_from(u64::from(data_offset) + payload) else {
            bail!(InvalidArgument, "fragment too large");
        };
        out[at..at + 4].copy_from_slice(&audio_offset.to_be_bytes());
    }

    let mdat = begin(&mut out, b"mdat");
    for nal in nals {
        // Fits: the sample's size was checked against u32 above.
        put_u32(&mut out, nal.len() as u32);
        out.extend_from_slice(nal);
    }
    if let Some((_, audio_samples)) = audio {
        for s in audio_samples {
            out.extend_from_slice(s.data);
        }
    }
    end(&mut out, mdat)?;
    Ok(out)
}

/// Appends a box header with a size placeholder; returns where the box starts.
pub(crate) fn begin(out: &mut Vec<u8>, fourcc: &[u8; 4]) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(fourcc);
    at
}

/// Appends a full box header (version and 24-bit flags).
pub(crate) fn begin_full(out: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let at = begin(out, fourcc);
    put_u32(out, (u32::from(version) << 24) | (flags & 0x00ff_ffff));
    at
}

/// Patches the size of the box started at `at`.
pub(crate) fn end(out: &mut [u8], at: usize) -> Result<(), Error> {
    let size = u32::try_from(out.len() - at).map_err(|_| err!(InvalidArgument, "box too large"))?;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The identity transformation matrix of `mvhd` and `tkhd`.
pub(crate) fn put_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        put_u32(out, v);
    }
}

/// Writes the `avc1`/`hvc1` visual sample entry with its decoder configuration box.
fn write_sample_entry(
    out: &mut Vec<u8>,
    params: &VideoParams,
    width: u16,
    height: u16,
) -> Result<(), Error> {
    let fourcc = match params.codec {
        Codec::H264 => b"avc1",
        Codec::H265 => b"hvc1",
    };
    let entry = begin(out, fourcc);
    out.extend_from_slice(&[0; 6]); // reserved
    put_u16(out, 1); // data_reference_index
    out.extend_from_slice(&[0; 16]); // pre_defined, reserved, pre_defined[3]
    put_u16(out, width);
    put_u16(out, height);
    put_u32(out, 0x0048_0000); // horizresolution 72 dpi
    put_u32(out, 0x0048_0000); // vertresolution 72 dpi
    put_u32(out, 0); // reserved
    put_u16(out, 1); // frame_count
    out.extend_from_slice(&[0; 32]); // compressorname
    put_u16(out, 0x0018); // depth
    put_u16(out, 0xffff); // pre_defined = -1
    match params.codec {
        Codec::H264 => write_avcc(out, params)?,
        Codec::H265 => write_hvcc(out, params)?,
    }
    end(out, entry)
}

/// `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1).
fn write_avcc(out: &mut Vec<u8>, params: &VideoParams) -> Result<(), Error> {
    let sps = &params.sps[..];
    let pps = &params.pps[..];
    let (Some(&[profile, compat, level]), Ok(sps_len), Ok(pps_len)) = (
        sps.get(1..4).and_then(|b| <&[u8; 3]>::try_from(b).ok()),
        u16::try_from(sps.len()),
        u16::try_from(pps.len()),
    ) else {
        bail!(
            InvalidArgument,
            "H.264 SPS ({} bytes) or PPS ({} bytes) unusable for avcC",
            sps.len(),
            pps.len()
        );
    };
    let avcc = begin(out, b"avcC");
    out.extend_from_slice(&[1, profile, compat, level, 0xfc | 3, 0xe0 | 1]);
    put_u16(out, sps_len);
    out.extend_from_slice(sps);
    out.push(1); // numOfPictureParameterSets
    put_u16(out, pps_len);
    out.extend_from_slice(pps);
    if matches!(profile, 100 | 110 | 122 | 144) {
        let Some(f) = crate::sps::parse_h264_sps(sps) else {
            bail!(
                InvalidArgument,
                "unparseable H.264 SPS ({} bytes)",
                sps.len()
            );
        };
        out.extend_from_slice(&[
            0xfc | (f.chroma_format_idc & 3),
            0xf8 | (f.bit_depth_luma_minus8 & 7),
            0xf8 | (f.bit_depth_chroma_minus8 & 7),
            0, // numOfSequenceParameterSetExt
        ]);
    }
    end(out, avcc)
}

/// `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 8.3.3.1).
fn write_hvcc(out: &mut Vec<u8>, params: &VideoParams) -> Result<(), Error> {
    let Some(vps) = &params.vps else {
        bail!(InvalidArgument, "H.265 parameters lack a VPS");
    };
    let sps = &params.sps[..];
    let Some(ptl) = parse_h265_sps(sps) else {
        bail!(
            InvalidArgument,
            "unparseable H.265 SPS ({} bytes)",
            sps.len()
        );
    };
    let hvcc = begin(out, b"hvcC");
    out.push(1); // configurationVersion
    out.push(
        ((ptl.general_profile_space & 3) << 6)
            | (u8::from(ptl.general_tier_flag) << 5)
            | (ptl.general_profile_idc & 0x1f),
    );
    put_u32(out, ptl.general_profile_compatibility_flags);
    out.extend_from_slice(&ptl.general_constraint_bytes);
    out.push(ptl.general_level_idc);
    put_u16(out, 0xf000); // min_spatial_segmentation_idc 0
    out.push(0xfc); // parallelismType 0 (unknown)
    out.push(0xfc | (ptl.chroma_format_idc & 3));
    out.push(0xf8 | (ptl.bit_depth_luma_minus8 & 7));
    out.push(0xf8 | (ptl.bit_depth_chroma_minus8 & 7));
    put_u16(out, 0); // avgFrameRate (unspecified)
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    out.push(
        (((ptl.max_sub_layers_minus1 + 1) & 7) << 3) | (u8::from(ptl.temporal_id_nesting) << 2) | 3,
    );
    out.push(3); // numOfArrays
    for (nal_type, nal) in [(32u8, &vps[..]), (33, sps), (34, &params.pps[..])] {
        let Ok(len) = u16::try_from(nal.len()) else {
            bail!(
                InvalidArgument,
                "H.265 parameter set of {} bytes",
                nal.len()
            );
        };
        out.push(0x80 | nal_type); // array_completeness 1
        put_u16(out, 1); // numNalus
        put_u16(out, len);
        out.extend_from_slice(nal);
    }
    end(out, hvcc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_nal_less_fragments() {
        assert!(fragment(1, 0, &[]).is_err());
        let s = Sample {
            data: &[1, 2, 3],
            duration: 3600,
            is_key: true,
        };
        assert!(fragment(1, 0, &[s]).is_err());
    }

    #[test]
    fn three_byte_start_codes_become_lengths() {
        let data = [0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x41, 0xbb, 0xcc];
        let f = fragment(
            7,
            90_000,
            &[Sample {
                data: &data,
                duration: 3600,
                is_key: true,
            }],
        )
        .unwrap();
        let mdat = &f[f.len() - 8 - 13..];
        assert_eq!(&mdat[4..8], b"mdat");
        assert_eq!(
            &mdat[8..],
            &[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 3, 0x41, 0xbb, 0xcc][..]
        );
    }

    const H264_CLIP: &[u8] = include_bytes!("../../../fixtures/clips/h264_a.h264");

    fn h264() -> (VideoParams, Vec<crate::AccessUnit>) {
        let aus = crate::split_access_units(Codec::H264, H264_CLIP);
        let params = VideoParams::from_key_access_unit(Codec::H264, &aus[0].data, 0).unwrap();
        (params, aus)
    }

    fn aac(sample_rate: u32, config: &[u8]) -> AudioParams {
        AudioParams {
            codec: AudioCodec::Aac,
            sample_rate,
            channels: 1,
            rfc6381: "mp4a.40.2".to_owned(),
            config: bytes::Bytes::copy_from_slice(config),
        }
    }

    /// AAC-LC, 16 kHz, mono.
    const ASC_16K_MONO: [u8; 2] = [0x14, 0x08];

    /// (type, payload) of every box in `buf`; asserts that the sizes tile it exactly.
    fn boxes(buf: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            assert!(buf.len() - pos >= 8, "truncated box header at {pos}");
            let size = u32_at(buf, pos) as usize;
            assert!(
                size >= 8 && pos + size <= buf.len(),
                "bad size {size} at {pos}"
            );
            out.push((
                buf[pos + 4..pos + 8].try_into().unwrap(),
                &buf[pos + 8..pos + size],
            ));
            pos += size;
        }
        out
    }

    /// Payloads of the boxes of type `t` in `buf`.
    fn all<'a>(buf: &'a [u8], t: &[u8; 4]) -> Vec<&'a [u8]> {
        boxes(buf)
            .into_iter()
            .filter(|(bt, _)| bt == t)
            .map(|(_, b)| b)
            .collect()
    }

    /// The payload of the only box of type `t` in `buf`.
    fn child<'a>(buf: &'a [u8], t: &[u8; 4]) -> &'a [u8] {
        let found = all(buf, t);
        assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(t));
        found[0]
    }

    fn path<'a>(buf: &'a [u8], p: &[&[u8; 4]]) -> &'a [u8] {
        p.iter().fold(buf, |b, t| child(b, t))
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(b[at..at + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Parses an MPEG-4 descriptor at the start of `b`: (tag, body, rest).
    fn descriptor(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let mut len = 0usize;
        let mut p = 1;
        loop {
            let c = b[p];
            p += 1;
            len = (len << 7) | usize::from(c & 0x7f);
            if c & 0x80 == 0 {
                break;
            }
        }
        (tag, &b[p..p + len], &b[p + len..])
    }

    #[test]
    fn video_only_is_the_av_writer_without_audio() {
        let (params, aus) = h264();
        assert_eq!(
            init_segment(&params).unwrap(),
            init_segment_av(&params, None).unwrap()
        );
        let samples: Vec<Sample> = aus[..5]
            .iter()
            .map(|au| Sample {
                data: &au.data,
                duration: 3600,
                is_key: au.is_key,
            })
            .collect();
        let f = fragment(3, 1234, &samples).unwrap();
        assert_eq!(f, fragment_av(3, 1234, &samples, None).unwrap());
        // Audio with no samples adds nothing.
        assert_eq!(f, fragment_av(3, 1234, &samples, Some((99, &[]))).unwrap());
    }

    #[test]
    fn audio_init_segment_structure() {
        let (params, _) = h264();
        let video_only = init_segment(&params).unwrap();
        let init = init_segment_av(&params, Some(&aac(16_000, &ASC_16K_MONO))).unwrap();
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [*b"ftyp", *b"moov"]
        );
        let moov = top[1].1;
        let mvhd = child(moov, b"mvhd");
        assert_eq!(u32_at(mvhd, mvhd.len() - 4), 3, "next_track_ID");
        let traks = all(moov, b"trak");
        assert_eq!(traks.len(), 2);
        // The video trak is the one of the video-only init segment, byte for byte.
        let video_moov = boxes(&video_only)[1].1;
        assert_eq!(traks[0], child(video_moov, b"trak"));

        let a = traks[1];
        let tkhd = child(a, b"tkhd");
        assert_eq!(u32_at(tkhd, 0), 3, "version 0, enabled + in movie");
        assert_eq!(u32_at(tkhd, 12), AUDIO_TRACK_ID);
        assert_eq!(u16_at(tkhd, 36), 0x0100, "volume");
        assert_eq!(
            (u32_at(tkhd, 76), u32_at(tkhd, 80)),
            (0, 0),
            "width, height"
        );
        assert_eq!(tkhd.len(), 84);
        let mdia = child(a, b"mdia");
        assert_eq!(u32_at(child(mdia, b"mdhd"), 12), 16_000, "timescale");
        let hdlr = child(mdia, b"hdlr");
        assert_eq!(&hdlr[8..12], b"soun");
        assert_eq!(&hdlr[24..], b"SoundHandler\0");
        let minf = child(mdia, b"minf");
        assert_eq!(child(minf, b"smhd"), &[0; 8]);
        let url = path(minf, &[b"dinf", b"dref"]);
        assert_eq!(u32_at(url, 4), 1);
        let stbl = child(minf, b"stbl");
        for t in [b"stts", b"stsc", b"stco"] {
            assert_eq!(child(stbl, t), &[0; 8], "empty {t:?}");
        }
        assert_eq!(child(stbl, b"stsz"), &[0; 12]);
        let stsd = child(stbl, b"stsd");
        assert_eq!(u32_at(stsd, 4), 1, "entry_count");
        let entries = boxes(&stsd[8..]);
        assert_eq!(entries.len(), 1);
        let (fourcc, mp4a) = entries[0];
        assert_eq!(&fourcc, b"mp4a");
        assert_eq!(u16_at(mp4a, 6), 1, "data_reference_index");
        assert_eq!(u16_at(mp4a, 16), 1, "channelcount");
        assert_eq!(u16_at(mp4a, 18), 16, "samplesize");
        assert_eq!(u32_at(mp4a, 24), 16_000 << 16, "samplerate");
        let esds = child(&mp4a[28..], b"esds");
        assert_eq!(u32_at(esds, 0), 0, "version, flags");
        let (tag, es, rest) = descriptor(&esds[4..]);
        assert_eq!((tag, rest), (0x03, &[][..]));
        assert_eq!(&es[..3], &[0, 0, 0], "ES_ID, flags");
        let (tag, dcd, rest) = descriptor(&es[3..]);
        assert_eq!(tag, 0x04);
        assert_eq!(dcd[0], 0x40, "objectTypeIndication");
        assert_eq!(dcd[1] >> 2, 0x05, "streamType");
        assert_eq!(u32_at(dcd, 1) & 0x00ff_ffff, 768, "bufferSizeDB");
        assert_eq!(u32_at(dcd, 5), 96_000, "maxBitrate");
        assert_eq!(u32_at(dcd, 9), 0, "avgBitrate");
        let (tag, dsi, after) = descriptor(&dcd[13..]);
        assert_eq!((tag, dsi, after), (0x05, &ASC_16K_MONO[..], &[][..]));
        let (tag, sl, after) = descriptor(rest);
        assert_eq!((tag, sl, after), (0x06, &[2][..], &[][..]));

        let trex = all(child(moov, b"mvex"), b"trex");
        assert_eq!(trex.len(), 2);
        assert_eq!((u32_at(trex[0], 4), u32_at(trex[0], 8)), (TRACK_ID, 1));
        assert_eq!(
            (u32_at(trex[1], 4), u32_at(trex[1], 8)),
            (AUDIO_TRACK_ID, 1)
        );
    }

    #[test]
    fn anchored_av_init_segment_edits_both_tracks_at_the_same_instant() {
        let (params, _) = h264();
        let start = SegmentStart {
            decode_time_90k: 1_796_083_200 * 90_000 + 1234,
            unix_secs: 1_796_083_200,
        };
        let audio = aac(16_000, &ASC_16K_MONO);
        let init = init_segment_at(&params, Some(&audio), start).unwrap();
        let plain = init_segment_av(&params, Some(&audio)).unwrap();
        let moov = boxes(&init)[1].1;
        let traks = all(moov, b"trak");
        let media_time = |trak: &[u8]| {
            let elst = path(trak, &[b"edts", b"elst"]);
            assert_eq!(u32_at(elst, 4), 1);
            i64::from_be_bytes(elst[16..24].try_into().unwrap())
        };
        assert_eq!(media_time(traks[0]), 1_796_083_200 * 90_000 + 1234);
        // 1234 ticks at 16 kHz: 219.4 samples, rounded.
        assert_eq!(media_time(traks[1]), 1_796_083_200 * 16_000 + 219);
        // Apart from the edit lists and the creation times (version 1 mvhd, tkhd and mdhd:
        // seconds since 1904), the plain init segment.
        let created = (1_796_083_200u64 + 2_082_844_800).to_be_bytes();
        let plain_traks = all(boxes(&plain)[1].1, b"trak");
        for (t, p) in traks.iter().zip(&plain_traks) {
            let (mdia, plain_mdia) = (child(t, b"mdia"), child(p, b"mdia"));
            for b in [b"hdlr", b"minf"] {
                assert_eq!(child(mdia, b), child(plain_mdia, b));
            }
            let mdhd = child(mdia, b"mdhd");
            assert_eq!(mdhd[0], 1, "mdhd version 1");
            assert_eq!((&mdhd[4..12], &mdhd[12..20]), (&created[..], &created[..]));
            let plain_mdhd = child(plain_mdia, b"mdhd");
            assert_eq!(&mdhd[20..24], &plain_mdhd[12..16], "timescale");
            assert_eq!(&mdhd[32..], &plain_mdhd[20..], "language");
            let (tkhd, plain_tkhd) = (child(t, b"tkhd"), child(p, b"tkhd"));
            assert_eq!(
                u32_at(tkhd, 0),
                (1 << 24) | 3,
                "version 1, enabled + in movie"
            );
            assert_eq!((&tkhd[4..12], &tkhd[12..20]), (&created[..], &created[..]));
            assert_eq!(&tkhd[20..24], &plain_tkhd[12..16], "track_ID");
            assert_eq!(&tkhd[28..36], &[0; 8], "duration");
            assert_eq!(&tkhd[36..], &plain_tkhd[24..]);
        }
        // A file whose media starts at 0 (what the recorder writes) needs no edit list.
        let from_zero = SegmentStart {
            decode_time_90k: 0,
            ..start
        };
        let init = init_segment_at(&params, Some(&audio), from_zero).unwrap();
        let moov = boxes(&init)[1].1;
        for t in all(moov, b"trak") {
            let kids: Vec<[u8; 4]> = boxes(t).iter().map(|(k, _)| *k).collect();
            assert_eq!(kids, [*b"tkhd", *b"mdia"]);
            assert_eq!(&child(t, b"tkhd")[4..12], &created[..]);
        }
        assert_eq!(&child(moov, b"mvhd")[4..12], &created[..]);
        assert_eq!(rescale_90k(90_000, 44_100), 44_100);
        assert_eq!(rescale_90k(u64::MAX, 1), u64::MAX / 90_000);
        // A start beyond i64 has no edit list to write.
        let far = SegmentStart {
            decode_time_90k: u64::MAX,
            unix_secs: i64::MAX,
        };
        assert!(init_segment_at(&params, None, far).is_err());
    }

    #[test]
    fn audio_parameters_edge_cases() {
        let (params, _) = h264();
        let e = init_segment_av(&params, Some(&aac(16_000, &[]))).unwrap_err();
        assert_eq!(e.kind(), base::ErrorKind::InvalidArgument);
        assert!(init_segment_av(&params, Some(&aac(0, &ASC_16K_MONO))).is_err());
        assert!(init_segment_av(&params, Some(&aac(16_000, &vec![1; 70_000]))).is_err());

        // 96 kHz does not fit the 16.16 samplerate: 0 there, the full rate in mdhd.
        let init = init_segment_av(&params, Some(&aac(96_000, &[0x10, 0x08]))).unwrap();
        let a = all(boxes(&init)[1].1, b"trak")[1];
        let mdia = child(a, b"mdia");
        assert_eq!(u32_at(child(mdia, b"mdhd"), 12), 96_000);
        let stsd = path(mdia, &[b"minf", b"stbl", b"stsd"]);
        let mp4a = child(&stsd[8..], b"mp4a");
        assert_eq!(u32_at(mp4a, 24), 0);

        // A config long enough for a two-byte descriptor size.
        let config = vec![0x12; 300];
        let init = init_segment_av(&params, Some(&aac(48_000, &config))).unwrap();
        let a = all(boxes(&init)[1].1, b"trak")[1];
        let stsd = path(a, &[b"mdia", b"minf", b"stbl", b"stsd"]);
        let esds = child(&child(&stsd[8..], b"mp4a")[28..], b"esds");
        let (_, es, _) = descriptor(&esds[4..]);
        let (_, dcd, _) = descriptor(&es[3..]);
        let (tag, dsi, _) = descriptor(&dcd[13..]);
        assert_eq!((tag, dsi), (0x05, &config[..]));
    }

    #[test]
    fn av_fragment_layout() {
        let (_, aus) = h264();
        let video: Vec<Sample> = aus[..5]
            .iter()
            .map(|au| Sample {
                data: &au.data,
                duration: 3600,
                is_key: au.is_key,
            })
            .collect();
        let frames: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let audio: Vec<AudioSample> = frames
            .iter()
            .map(|f| AudioSample {
                data: f,
                duration: 1024,
            })
            .collect();
        let f = fragment_av(4, 180_000, &video, Some((32_000, &audio))).unwrap();
        let top = boxes(&f);
        assert_eq!(
            top.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [*b"moof", *b"mdat"]
        );
        let (moof, mdat) = (top[0].1, top[1].1);
        let moof_len = moof.len() + 8;
        let payload_at = moof_len + 8; // From the moof's start.
        assert_eq!(u32_at(child(moof, b"mfhd"), 4), 4);
        let kids = boxes(moof);
        assert_eq!(
            kids.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [*b"mfhd", *b"traf", *b"traf"]
        );

        // Video: as a video-only fragment, but its data offset is unchanged (it comes first).
        let v = kids[1].1;
        assert_eq!(u32_at(child(v, b"tfhd"), 4), TRACK_ID);
        assert_eq!(&child(v, b"tfdt")[4..], &180_000u64.to_be_bytes());
        let trun = child(v, b"trun");
        assert_eq!((u32_at(trun, 0), u32_at(trun, 4)), (0x701, 5));
        assert_eq!(u32_at(trun, 8) as usize, payload_at);
        let video_bytes: usize = (0..5).map(|j| u32_at(trun, 16 + 12 * j) as usize).sum();
        let expected_video: usize = aus[..5].iter().map(|au| au.data.len()).sum();
        assert_eq!(video_bytes, expected_video);
        assert_eq!(u32_at(trun, 20), SYNC_SAMPLE_FLAGS);
        assert_eq!(u32_at(trun, 32), NON_SYNC_SAMPLE_FLAGS);
        // Length-prefixed video samples first.
        let mut want = Vec::new();
        for au in &aus[..5] {
            for nal in annexb_nals(&au.data) {
                want.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                want.extend_from_slice(nal);
            }
        }
        assert_eq!(&mdat[..video_bytes], &want[..]);

        // Audio: track 2, sync by default, data right after the video.
        let a = kids[2].1;
        let tfhd = child(a, b"tfhd");
        assert_eq!(u32_at(tfhd, 0), 0x02_0020);
        assert_eq!(u32_at(tfhd, 4), AUDIO_TRACK_ID);
        assert_eq!(u32_at(tfhd, 8), SYNC_SAMPLE_FLAGS);
        let tfdt = child(a, b"tfdt");
        assert_eq!(tfdt[0], 1);
        assert_eq!(&tfdt[4..], &32_000u64.to_be_bytes());
        let trun = child(a, b"trun");
        assert_eq!((u32_at(trun, 0), u32_at(trun, 4)), (0x301, 8));
        assert_eq!(trun.len(), 12 + 8 * 8);
        let audio_at = u32_at(trun, 8) as usize;
        assert_eq!(audio_at, payload_at + video_bytes);
        let mut p = audio_at - payload_at;
        for (j, frame) in frames.iter().enumerate() {
            assert_eq!(u32_at(trun, 12 + 8 * j), 1024);
            let size = u32_at(trun, 16 + 8 * j) as usize;
            assert_eq!(size, frame.len());
            assert_eq!(&mdat[p..p + size], &frame[..]);
            p += size;
        }
        assert_eq!(p, mdat.len());
    }

    fn e2e() -> bool {
        std::env::var("VANTAGE_E2E").is_ok_and(|v| v == "1")
    }

    /// Raw AAC frames and the AudioSpecificConfig from an ADTS stream (one raw data block per
    /// frame).
    fn adts_frames(adts: &[u8]) -> (Vec<&[u8]>, [u8; 2], u32) {
        const RATES: [u32; 13] = [
            96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
            8_000, 7_350,
        ];
        let mut frames = Vec::new();
        let mut config = None;
        let mut p = 0;
        while p + 7 <= adts.len() {
            let h = &adts[p..p + 7];
            assert_eq!((h[0], h[1] & 0xf6), (0xff, 0xf0), "ADTS sync at {p}");
            let protection_absent = h[1] & 1 == 1;
            let profile = h[2] >> 6;
            let freq = (h[2] >> 2) & 0xf;
            let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
            let len =
                (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
            assert_eq!(h[6] & 3, 0, "one raw data block per ADTS frame");
            let header = if protection_absent { 7 } else { 9 };
            frames.push(&adts[p + header..p + len]);
            let aot = profile + 1;
            config = Some((
                [
                    (aot << 3) | (freq >> 1),
                    ((freq & 1) << 7) | (channels << 3),
                ],
                RATES[usize::from(freq)],
            ));
            p += len;
        }
        assert_eq!(p, adts.len());
        let (config, rate) = config.unwrap();
        (frames, config, rate)
    }

    /// With `VANTAGE_E2E=1` and ffmpeg/ffprobe installed: an A/V recording (init + 2 fragments)
    /// plays, with both streams and every audio frame.
    #[test]
    fn ffprobe_plays_av_recording() {
        if !e2e() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("vantage-fmp4-av-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/clips/aac_16k_mono.adts");
        let adts = if fixture.exists() {
            std::fs::read(&fixture).unwrap()
        } else {
            let file = dir.join("tone.adts");
            let out = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg("sine=frequency=440:sample_rate=16000:duration=6")
                .args(["-ac", "1", "-c:a", "aac", "-b:a", "32k", "-f", "adts"])
                .arg(&file)
                .output()
                .expect("VANTAGE_E2E=1 but ffmpeg could not be run");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::read(&file).unwrap()
        };
        let (frames, config, rate) = adts_frames(&adts);
        assert_eq!(rate, 16_000);

        let (params, aus) = h264();
        let init = init_segment_av(&params, Some(&aac(rate, &config))).unwrap();
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        let mut file = init;
        let mut audio_next = 0usize;
        let mut video_time = 0u64;
        let mut audio_frames = 0;
        for (f, w) in keys.windows(2).take(2).enumerate() {
            let video: Vec<Sample> = aus[w[0]..w[1]]
                .iter()
                .map(|au| Sample {
                    data: &au.data,
                    duration: 3600,
                    is_key: au.is_key,
                })
                .collect();
            let video_end = video_time + 3600 * video.len() as u64;
            // The audio frames that start before the fragment's video ends.
            let mut audio = Vec::new();
            while (audio_next as u64 * 1024) * 90_000 < video_end * u64::from(rate) {
                audio.push(AudioSample {
                    data: frames[audio_next],
                    duration: 1024,
                });
                audio_next += 1;
            }
            let base = audio_frames as u64 * 1024;
            audio_frames += audio.len();
            file.extend(
                fragment_av(f as u32 + 1, video_time, &video, Some((base, &audio))).unwrap(),
            );
            video_time = video_end;
        }
        let video_frames = keys[2] - keys[0];
        assert!(frames.len() >= audio_frames, "ADTS stream too short");

        let mp4 = dir.join("av.mp4");
        std::fs::write(&mp4, &file).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_streams",
                "-count_frames",
                "-of",
                "compact",
            ])
            .arg(&mp4)
            .output()
            .expect("VANTAGE_E2E=1 but ffprobe could not be run");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "ffprobe failed: {stderr}");
        assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
        let streams: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("stream|"))
            .collect();
        assert_eq!(streams.len(), 2, "{stdout}");
        let field = |line: &str, key: &str| -> String {
            line.split('|')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing: {line}"))
                .to_owned()
        };
        assert_eq!(field(streams[0], "codec_name"), "h264");
        assert_eq!(
            field(streams[0], "nb_read_frames"),
            video_frames.to_string()
        );
        assert_eq!(field(streams[1], "codec_name"), "aac");
        assert_eq!(field(streams[1], "sample_rate"), "16000");
        assert_eq!(field(streams[1], "channels"), "1");
        assert_eq!(
            field(streams[1], "nb_read_frames"),
            audio_frames.to_string()
        );
    }
}
