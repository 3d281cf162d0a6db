//! Fragmented MP4 (ISO BMFF, ISO/IEC 14496-12) writer for one video track: an initialization
//! segment ([`init_segment`]) and media fragments ([`fragment`]). Pure code, no I/O.
//!
//! Layout of the initialization segment:
//! ```text
//! ftyp (major isom, compatible isom iso6 mp41)
//! moov
//!   mvhd (timescale 90000, duration 0, next_track_ID 2)
//!   trak
//!     tkhd (track 1, enabled + in movie, width/height 16.16)
//!     mdia
//!       mdhd (timescale 90000, language und)
//!       hdlr (vide)
//!       minf
//!         vmhd
//!         dinf / dref / url (self-contained)
//!         stbl
//!           stsd / avc1 + avcC  or  hvc1 + hvcC
//!           stts, stsc, stsz, stco (all empty)
//!   mvex / trex (track 1, sample description 1)
//! ```
//! Layout of a fragment:
//! ```text
//! moof
//!   mfhd (sequence_number)
//!   traf
//!     tfhd (track 1, default-base-is-moof)
//!     tfdt (version 1: 64-bit base media decode time, 90 kHz)
//!     trun (data-offset, per-sample duration, size and flags)
//! mdat (samples with 4-byte big-endian length prefixes)
//! ```
//! All times are on the 90 kHz clock ([`crate::VIDEO_CLOCK_RATE`]); there are no composition time
//! offsets (the cameras' streams have no B-frames), so decode time equals presentation time.

use crate::nal::annexb_nals;
use crate::sps::parse_h265_sps;
use crate::{Codec, VIDEO_CLOCK_RATE, VideoParams};
use base::{Error, bail, err};

/// The only track's id.
pub const TRACK_ID: u32 = 1;

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

/// Writes the initialization segment (`ftyp` + `moov`) for a stream with `params`.
pub fn init_segment(params: &VideoParams) -> Result<Vec<u8>, Error> {
    let (Ok(width), Ok(height)) = (u16::try_from(params.width), u16::try_from(params.height))
    else {
        bail!(
            InvalidArgument,
            "picture size {}x{} does not fit an MP4 sample entry",
            params.width,
            params.height
        );
    };
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
        let mvhd = begin_full(&mut out, b"mvhd", 0, 0);
        put_u32(&mut out, 0); // creation_time
        put_u32(&mut out, 0); // modification_time
        put_u32(&mut out, VIDEO_CLOCK_RATE); // timescale
        put_u32(&mut out, 0); // duration (unknown: fragmented)
        put_u32(&mut out, 0x0001_0000); // rate 1.0
        put_u16(&mut out, 0x0100); // volume 1.0
        out.extend_from_slice(&[0; 10]); // reserved
        put_matrix(&mut out);
        out.extend_from_slice(&[0; 24]); // pre_defined
        put_u32(&mut out, TRACK_ID + 1); // next_track_ID
        end(&mut out, mvhd)?;

        let trak = begin(&mut out, b"trak");
        {
            let tkhd = begin_full(&mut out, b"tkhd", 0, 0x3); // enabled, in movie
            put_u32(&mut out, 0); // creation_time
            put_u32(&mut out, 0); // modification_time
            put_u32(&mut out, TRACK_ID);
            put_u32(&mut out, 0); // reserved
            put_u32(&mut out, 0); // duration
            out.extend_from_slice(&[0; 8]); // reserved
            put_u16(&mut out, 0); // layer
            put_u16(&mut out, 0); // alternate_group
            put_u16(&mut out, 0); // volume (video)
            put_u16(&mut out, 0); // reserved
            put_matrix(&mut out);
            put_u32(&mut out, u32::from(width) << 16);
            put_u32(&mut out, u32::from(height) << 16);
            end(&mut out, tkhd)?;

            let mdia = begin(&mut out, b"mdia");
            {
                let mdhd = begin_full(&mut out, b"mdhd", 0, 0);
                put_u32(&mut out, 0); // creation_time
                put_u32(&mut out, 0); // modification_time
                put_u32(&mut out, VIDEO_CLOCK_RATE);
                put_u32(&mut out, 0); // duration
                put_u16(&mut out, 0x55c4); // language "und"
                put_u16(&mut out, 0); // pre_defined
                end(&mut out, mdhd)?;

                let hdlr = begin_full(&mut out, b"hdlr", 0, 0);
                put_u32(&mut out, 0); // pre_defined
                out.extend_from_slice(b"vide");
                out.extend_from_slice(&[0; 12]); // reserved
                out.extend_from_slice(b"VideoHandler\0");
                end(&mut out, hdlr)?;

                let minf = begin(&mut out, b"minf");
                {
                    let vmhd = begin_full(&mut out, b"vmhd", 0, 1);
                    out.extend_from_slice(&[0; 8]); // graphicsmode, opcolor
                    end(&mut out, vmhd)?;

                    let dinf = begin(&mut out, b"dinf");
                    let dref = begin_full(&mut out, b"dref", 0, 0);
                    put_u32(&mut out, 1); // entry_count
                    let url = begin_full(&mut out, b"url ", 0, 1); // media in the same file
                    end(&mut out, url)?;
                    end(&mut out, dref)?;
                    end(&mut out, dinf)?;

                    let stbl = begin(&mut out, b"stbl");
                    {
                        let stsd = begin_full(&mut out, b"stsd", 0, 0);
                        put_u32(&mut out, 1); // entry_count
                        write_sample_entry(&mut out, params, width, height)?;
                        end(&mut out, stsd)?;
                        for fourcc in [b"stts", b"stsc", b"stco"] {
                            let b = begin_full(&mut out, fourcc, 0, 0);
                            put_u32(&mut out, 0); // entry_count
                            end(&mut out, b)?;
                        }
                        let stsz = begin_full(&mut out, b"stsz", 0, 0);
                        put_u32(&mut out, 0); // sample_size
                        put_u32(&mut out, 0); // sample_count
                        end(&mut out, stsz)?;
                    }
                    end(&mut out, stbl)?;
                }
                end(&mut out, minf)?;
            }
            end(&mut out, mdia)?;
        }
        end(&mut out, trak)?;

        let mvex = begin(&mut out, b"mvex");
        let trex = begin_full(&mut out, b"trex", 0, 0);
        put_u32(&mut out, TRACK_ID);
        put_u32(&mut out, 1); // default_sample_description_index
        put_u32(&mut out, 0); // default_sample_duration
        put_u32(&mut out, 0); // default_sample_size
        put_u32(&mut out, 0); // default_sample_flags
        end(&mut out, trex)?;
        end(&mut out, mvex)?;
    }
    end(&mut out, moov)?;
    Ok(out)
}

/// Writes one fragment (`moof` + `mdat`) holding `samples` in decode order, the first of which
/// is decoded at `base_decode_time` (90 kHz). Samples are converted from Annex B to 4-byte length
/// prefixes; their NAL units are kept as they are (in-band parameter sets included, which players
/// accept and which keeps each sample the size of its Annex B form with 4-byte start codes).
///
/// Fails with `InvalidArgument` for no samples, a sample without NAL units, or a fragment too big
/// for 32-bit box sizes.
pub fn fragment(
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample],
) -> Result<Vec<u8>, Error> {
    if samples.is_empty() {
        bail!(InvalidArgument, "an MP4 fragment needs at least one sample");
    }
    let Ok(sample_count) = u32::try_from(samples.len()) else {
        bail!(InvalidArgument, "too many samples for one fragment");
    };
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
    let moof_size = 8 + 16 + 8 + 16 + 20 + 20 + 16 * samples.len() as u64;
    let total = moof_size + 8 + payload;
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
        out.extend_from_slice(&base_decode_time.to_be_bytes());
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
    end(&mut out, moof)?;
    // The first sample starts right after the mdat header; offsets count from the moof's start.
    let Ok(data_offset) = u32::try_from(out.len() - moof + 8) else {
        bail!(InvalidArgument, "moof too large");
    };
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());

    let mdat = begin(&mut out, b"mdat");
    for nal in nals {
        // Fits: the sample's size was checked against u32 above.
        put_u32(&mut out, nal.len() as u32);
        out.extend_from_slice(nal);
    }
    end(&mut out, mdat)?;
    Ok(out)
}

/// Appends a box header with a size placeholder; returns where the box starts.
fn begin(out: &mut Vec<u8>, fourcc: &[u8; 4]) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(fourcc);
    at
}

/// Appends a full box header (version and 24-bit flags).
fn begin_full(out: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let at = begin(out, fourcc);
    put_u32(out, (u32::from(version) << 24) | (flags & 0x00ff_ffff));
    at
}

/// Patches the size of the box started at `at`.
fn end(out: &mut [u8], at: usize) -> Result<(), Error> {
    let size = u32::try_from(out.len() - at).map_err(|_| err!(InvalidArgument, "box too large"))?;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The identity transformation matrix of `mvhd` and `tkhd`.
fn put_matrix(out: &mut Vec<u8>) {
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
}
