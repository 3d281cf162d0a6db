//! Fragments for MSE and HLS: an init segment for a file's tracks ([`mse_init`]) and its
//! fragments moved onto another timeline ([`remux_moof`]).

use super::boxes::{Reader, children, first_box, need};
use super::fragment::read_fragment;
use super::init::InitInfo;
use crate::fmp4::{
    begin, begin_full, end, put_matrix, put_u16, put_u32, put_u64, write_dinf,
    write_empty_sample_tables, write_hdlr, write_trex,
};
use base::{Error, bail, err};

/// An initialization segment (`ftyp` + `moov` with `mvex`) for the tracks of `info`, for fragments
/// of that file as [`remux_moof`] rewrites them:
/// ```text
/// ftyp (major isom, compatible isom iso6 mp41)
/// moov
///   mvhd (the video timescale, duration 0)
///   trak (video)  tkhd, mdia / mdhd, hdlr vide, minf / vmhd, dinf, stbl / stsd (the file's
///                 sample entry, byte for byte) and empty stts, stsc, stsz, stco
///   trak (audio)  likewise with smhd and the mp4a entry
///   mvex / trex per track (sample description 1, no defaults)
/// ```
/// Track ids are the file's (the fragments keep theirs); there is no edit list: MSE places media
/// by `tfdt`.
pub fn mse_init(info: &InitInfo) -> Vec<u8> {
    // Cannot fail: the sample entries come from an init segment of at most MAX_INIT_LEN bytes, so
    // every box is far below 4 GiB.
    write_mse_init(info).unwrap_or_default()
}

fn write_mse_init(info: &InitInfo) -> Result<Vec<u8>, Error> {
    let v = &info.video;
    let mut out = Vec::with_capacity(1024);
    let ftyp = begin(&mut out, b"ftyp");
    out.extend_from_slice(b"isom");
    put_u32(&mut out, 0x200);
    for brand in [b"isom", b"iso6", b"mp41"] {
        out.extend_from_slice(brand);
    }
    end(&mut out, ftyp)?;

    let moov = begin(&mut out, b"moov");
    let mvhd = begin_full(&mut out, b"mvhd", 0, 0);
    put_u32(&mut out, 0); // creation_time
    put_u32(&mut out, 0); // modification_time
    put_u32(&mut out, v.timescale);
    put_u32(&mut out, 0); // duration
    put_u32(&mut out, 0x0001_0000); // rate 1.0
    put_u16(&mut out, 0x0100); // volume 1.0
    out.extend_from_slice(&[0; 10]);
    put_matrix(&mut out);
    out.extend_from_slice(&[0; 24]);
    let last = info
        .audio
        .as_ref()
        .map_or(v.track_id, |a| a.track_id.max(v.track_id));
    put_u32(&mut out, last.saturating_add(1)); // next_track_ID
    end(&mut out, mvhd)?;

    write_trak(
        &mut out,
        v.track_id,
        (v.width, v.height),
        v.timescale,
        &v.sample_entry,
    )?;
    if let Some(a) = &info.audio {
        write_trak(&mut out, a.track_id, (0, 0), a.sample_rate, &a.sample_entry)?;
    }
    let mvex = begin(&mut out, b"mvex");
    write_trex(&mut out, v.track_id)?;
    if let Some(a) = &info.audio {
        write_trex(&mut out, a.track_id)?;
    }
    end(&mut out, mvex)?;
    end(&mut out, moov)?;
    Ok(out)
}

/// A `trak` with no samples; video when it has a picture size.
fn write_trak(
    out: &mut Vec<u8>,
    id: u32,
    (width, height): (u16, u16),
    timescale: u32,
    entry: &[u8],
) -> Result<(), Error> {
    let video = width != 0 || height != 0 || entry.get(4..8) != Some(b"mp4a");
    let trak = begin(out, b"trak");
    let tkhd = begin_full(out, b"tkhd", 0, 0x3); // enabled, in movie
    put_u32(out, 0);
    put_u32(out, 0);
    put_u32(out, id);
    put_u32(out, 0);
    put_u32(out, 0); // duration
    out.extend_from_slice(&[0; 8]);
    put_u16(out, 0); // layer
    put_u16(out, 0); // alternate_group
    put_u16(out, if video { 0 } else { 0x0100 });
    put_u16(out, 0);
    put_matrix(out);
    put_u32(out, u32::from(width) << 16);
    put_u32(out, u32::from(height) << 16);
    end(out, tkhd)?;
    let mdia = begin(out, b"mdia");
    let mdhd = begin_full(out, b"mdhd", 0, 0);
    put_u32(out, 0);
    put_u32(out, 0);
    put_u32(out, timescale);
    put_u32(out, 0);
    put_u16(out, 0x55c4); // "und"
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
        put_u32(out, 0);
        end(out, smhd)?;
    }
    write_dinf(out)?;
    let stbl = begin(out, b"stbl");
    let stsd = begin_full(out, b"stsd", 0, 0);
    put_u32(out, 1);
    out.extend_from_slice(entry);
    end(out, stsd)?;
    write_empty_sample_tables(out)?;
    end(out, stbl)?;
    end(out, minf)?;
    end(out, mdia)?;
    end(out, trak)
}

/// The `moof` box at the start of `moof` (as [`super::read_fragment`] accepts it) with `mfhd`
/// sequence number `sequence` and base media decode times `video_tfdt` (first `traf`) and
/// `audio_tfdt` (second `traf`, in its timescale). The `mdat` that follows it is sent unchanged.
///
/// Every `tfdt` is written as version 1. Version 1 `tfdt`s (what Vantage writes) are replaced in
/// place, so the box keeps its size and the `trun` data offsets stay valid; a version 0 `tfdt`
/// grows by 4 bytes, and the data offsets of runs that count from the `moof` grow by as much as
/// the `moof` did. Other boxes are copied as they are.
///
/// Fails with `DataLoss` for what [`super::read_fragment`] refuses, and with `InvalidArgument`
/// for a fragment with an audio `traf` but no `audio_tfdt`, or a `tfhd` with an absolute
/// base-data-offset (meaningless once the fragment is sent on its own).
pub fn remux_moof(
    moof: &[u8],
    sequence: u32,
    video_tfdt: u64,
    audio_tfdt: Option<u64>,
) -> Result<Vec<u8>, Error> {
    read_fragment(moof, 0)?; // Validates the tables.
    let b = first_box(moof)?;
    let mut out = Vec::with_capacity(b.whole.len() + 16);
    let at = begin(&mut out, b"moof");
    // Data-offset fields of runs counting from the moof, in `out`.
    let mut moof_relative = Vec::new();
    let mut trafs = 0;
    for c in children(b.body)? {
        match &c.fourcc {
            b"mfhd" => {
                let mfhd = begin_full(&mut out, b"mfhd", 0, 0);
                put_u32(&mut out, sequence);
                end(&mut out, mfhd)?;
            }
            b"traf" => {
                let tfdt = match trafs {
                    0 => video_tfdt,
                    _ => audio_tfdt.ok_or_else(|| {
                        err!(
                            InvalidArgument,
                            "fragment has audio but no audio tfdt was given"
                        )
                    })?,
                };
                trafs += 1;
                write_traf(&mut out, c.body, tfdt, trafs == 1, &mut moof_relative)?;
            }
            _ => out.extend_from_slice(c.whole),
        }
    }
    end(&mut out, at)?;
    let grown = out.len() as i64 - b.whole.len() as i64; // Both below MAX_MOOF_LEN + 16 each.
    if grown != 0 {
        for at in moof_relative {
            let field = out
                .get_mut(at..at + 4)
                .ok_or_else(|| err!(Internal, "data offset at {at} out of range"))?;
            let old = i32::from_be_bytes(field.try_into().map_err(|_| err!(Internal, "offset"))?);
            let new = i32::try_from(i64::from(old) + grown)
                .map_err(|_| err!(DataLoss, "data offset {old} out of range"))?;
            field.copy_from_slice(&new.to_be_bytes());
        }
    }
    Ok(out)
}

/// Copies a `traf` with its `tfdt` replaced by a version 1 one holding `tfdt`, recording where
/// the data offsets that count from the `moof` are.
fn write_traf(
    out: &mut Vec<u8>,
    traf: &[u8],
    tfdt: u64,
    first: bool,
    moof_relative: &mut Vec<usize>,
) -> Result<(), Error> {
    let (_, flags) = Reader::new(need(traf, b"tfhd")?, "tfhd").version_flags()?;
    if flags & 0x01 != 0 {
        bail!(
            InvalidArgument,
            "a fragment with an absolute base-data-offset cannot be sent on its own"
        );
    }
    // A later traf without default-base-is-moof counts from the previous track's data, which
    // moves with the mdat: its offsets stay.
    let from_moof = first || flags & 0x02_0000 != 0;
    let at = begin(out, b"traf");
    for c in children(traf)? {
        match &c.fourcc {
            b"tfdt" => {
                let b = begin_full(out, b"tfdt", 1, 0);
                put_u64(out, tfdt);
                end(out, b)?;
            }
            b"trun" => {
                let header = c.whole.len() - c.body.len();
                let start = out.len();
                out.extend_from_slice(c.whole);
                let (_, flags) = Reader::new(c.body, "trun").version_flags()?;
                if flags & 0x001 != 0 && from_moof {
                    moof_relative.push(start + header + 8); // version/flags, sample_count
                }
            }
            _ => out.extend_from_slice(c.whole),
        }
    }
    end(out, at)
}
