//! An AAC audio clip loaded from an ADTS file: raw AAC frames (ADTS headers stripped), the
//! AudioSpecificConfig derived from the headers, and the RTP payloads (RFC 3640, AAC-hbr, one
//! access unit per packet) built once.
//!
//! ADTS (ISO/IEC 13818-7 section 6.2, ISO/IEC 14496-3 section 1.A.2) frame header, 56 bits, then
//! a 16-bit CRC when `protection_absent` is 0:
//!
//! | bits | field |
//! |---|---|
//! | 12 | syncword `0xFFF` |
//! | 1 | ID (0 MPEG-4, 1 MPEG-2) |
//! | 2 | layer (always 0) |
//! | 1 | protection_absent |
//! | 2 | profile (audio object type - 1) |
//! | 4 | sampling_frequency_index |
//! | 1 | private_bit |
//! | 3 | channel_configuration |
//! | 4 | original_copy, home, copyright_identification_bit/start |
//! | 13 | aac_frame_length (header, CRC and raw data) |
//! | 11 | adts_buffer_fullness |
//! | 2 | number_of_raw_data_blocks_in_frame (minus one) |
#![deny(clippy::indexing_slicing)]

use base::{Error, ErrorKind, ResultExt, bail};
use bytes::{BufMut, Bytes, BytesMut};
use media::rtp::RtpPayload;
use media::{AudioCodec, AudioParams};
use std::path::Path;
use std::sync::Arc;

/// Samples per channel in one AAC frame (AAC-LC and the other GA object types with
/// `frameLengthFlag` 0).
pub const AAC_SAMPLES_PER_FRAME: u32 = 1024;

/// Sampling frequencies by `sampling_frequency_index` (ISO/IEC 14496-3 table 1.18); 13 and 14
/// are reserved and 15 (explicit frequency) cannot appear in ADTS.
const SAMPLING_FREQUENCIES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

const ADTS_HEADER_LEN: usize = 7;
const ADTS_CRC_LEN: usize = 2;

/// Fields shared by every frame of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AdtsFormat {
    /// MPEG-4 audio object type (2 = AAC-LC).
    object_type: u8,
    sampling_index: u8,
    channel_config: u8,
}

/// One parsed ADTS header.
#[derive(Debug)]
struct AdtsHeader {
    format: AdtsFormat,
    /// Bytes before the raw data block (7, or 9 with CRC).
    header_len: usize,
    /// The whole ADTS frame, header included.
    frame_len: usize,
}

/// Parses the ADTS header at the start of `b` (`pos` only for messages).
fn parse_header(b: &[u8], pos: usize) -> Result<AdtsHeader, Error> {
    let Some(h) = b.first_chunk::<ADTS_HEADER_LEN>() else {
        bail!(
            InvalidArgument,
            "truncated ADTS header at byte {pos}: {} of {ADTS_HEADER_LEN} bytes",
            b.len()
        );
    };
    if h[0] != 0xFF || h[1] & 0xF0 != 0xF0 {
        bail!(
            InvalidArgument,
            "no ADTS syncword at byte {pos} (found {:02x}{:02x})",
            h[0],
            h[1]
        );
    }
    let layer = (h[1] >> 1) & 0x3;
    if layer != 0 {
        bail!(
            InvalidArgument,
            "ADTS layer {layer} at byte {pos} (must be 0)"
        );
    }
    let protection_absent = h[1] & 0x1 == 1;
    let object_type = (h[2] >> 6) + 1;
    let sampling_index = (h[2] >> 2) & 0xF;
    if usize::from(sampling_index) >= SAMPLING_FREQUENCIES.len() {
        bail!(
            InvalidArgument,
            "reserved ADTS sampling frequency index {sampling_index} at byte {pos}"
        );
    }
    let channel_config = ((h[2] & 0x1) << 2) | (h[3] >> 6);
    if channel_config == 0 {
        bail!(
            InvalidArgument,
            "ADTS channel configuration 0 (in-band program config element) at byte {pos} is not \
             supported"
        );
    }
    let frame_len =
        (usize::from(h[3] & 0x3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    let raw_blocks = usize::from(h[6] & 0x3) + 1;
    if raw_blocks != 1 {
        bail!(
            InvalidArgument,
            "ADTS frame at byte {pos} has {raw_blocks} raw data blocks; only 1 is supported"
        );
    }
    let header_len = if protection_absent {
        ADTS_HEADER_LEN
    } else {
        ADTS_HEADER_LEN + ADTS_CRC_LEN
    };
    if frame_len <= header_len {
        bail!(
            InvalidArgument,
            "ADTS frame at byte {pos}: frame length {frame_len} leaves no room for data after the \
             {header_len}-byte header"
        );
    }
    Ok(AdtsHeader {
        format: AdtsFormat {
            object_type,
            sampling_index,
            channel_config,
        },
        header_len,
        frame_len,
    })
}

/// Splits a whole ADTS stream into raw AAC frames (headers and CRCs stripped) and derives its
/// [`AudioParams`]. Every frame must have the same object type, sampling frequency and channel
/// configuration; the input must be whole frames from its first byte to its last. Never panics.
pub fn parse_adts(data: &[u8]) -> Result<(AudioParams, Vec<Bytes>), Error> {
    let data = Bytes::copy_from_slice(data);
    let mut frames = Vec::new();
    let mut format: Option<AdtsFormat> = None;
    let mut pos = 0usize;
    while let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty()) {
        let h = parse_header(rest, pos)?;
        if rest.len() < h.frame_len {
            bail!(
                InvalidArgument,
                "truncated ADTS frame at byte {pos}: {} of {} bytes",
                rest.len(),
                h.frame_len
            );
        }
        match format {
            None => format = Some(h.format),
            Some(f) if f != h.format => bail!(
                InvalidArgument,
                "ADTS frame {} at byte {pos} changes the format from {f:?} to {:?}",
                frames.len(),
                h.format
            ),
            Some(_) => {}
        }
        frames.push(data.slice(pos + h.header_len..pos + h.frame_len));
        pos += h.frame_len;
    }
    let Some(format) = format else {
        bail!(InvalidArgument, "no ADTS frames in {} bytes", data.len());
    };
    Ok((audio_params(format), frames))
}

fn audio_params(f: AdtsFormat) -> AudioParams {
    // AudioSpecificConfig (ISO/IEC 14496-3 section 1.6.2.1): audioObjectType (5 bits),
    // samplingFrequencyIndex (4), channelConfiguration (4), then GASpecificConfig:
    // frameLengthFlag 0 (1024 samples), dependsOnCoreCoder 0, extensionFlag 0.
    let asc: u16 = (u16::from(f.object_type) << 11)
        | (u16::from(f.sampling_index) << 7)
        | (u16::from(f.channel_config) << 3);
    // Channel configuration 7 is 7.1 (8 channels); 1..=6 are that many channels.
    let channels = if f.channel_config == 7 {
        8
    } else {
        u16::from(f.channel_config)
    };
    AudioParams {
        codec: AudioCodec::Aac,
        // `parse_header` refused an index beyond the table.
        sample_rate: SAMPLING_FREQUENCIES
            .get(usize::from(f.sampling_index))
            .copied()
            .unwrap_or_default(),
        channels,
        rfc6381: format!("mp4a.40.{}", f.object_type),
        config: Bytes::copy_from_slice(&asc.to_be_bytes()),
    }
}

/// The RFC 3640 AAC-hbr payload for one access unit: AU-headers-length (16 bits: one 16-bit
/// AU-header), the AU-header (13-bit size, 3-bit index 0), the raw frame.
fn aac_hbr_payload(frame: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + frame.len());
    b.put_u16(16);
    // ADTS frame lengths are 13 bits, so every raw frame fits the 13-bit size field.
    b.put_u16(((frame.len() as u16) & 0x1FFF) << 3);
    b.put_slice(frame);
    b.freeze()
}

/// A looping AAC audio track for a [`ClipSource`](crate::ClipSource): raw frames of
/// [`AAC_SAMPLES_PER_FRAME`] samples and the stream's parameters.
#[derive(Debug)]
pub struct AudioClip {
    params: AudioParams,
    frames: Vec<Bytes>,
    /// One RTP payload per frame (marker set).
    payloads: Vec<Arc<[RtpPayload]>>,
}

impl AudioClip {
    /// Loads an ADTS file (`.adts`/`.aac`).
    pub fn from_adts_file(path: impl AsRef<Path>) -> Result<AudioClip, Error> {
        let path = path.as_ref();
        let data = std::fs::read(path).err_kind(
            ErrorKind::NotFound,
            format_args!("reading audio clip {}", path.display()),
        )?;
        AudioClip::from_adts(&data)
            .map_err(|e| e.context(format_args!("audio clip {}", path.display())))
    }

    /// Builds a clip from a whole ADTS stream (see [`parse_adts`]). Errors are `InvalidArgument`.
    pub fn from_adts(data: &[u8]) -> Result<AudioClip, Error> {
        let (params, frames) = parse_adts(data)?;
        let payloads = frames
            .iter()
            .map(|f| {
                Arc::from([RtpPayload {
                    data: aac_hbr_payload(f),
                    marker: true,
                }])
            })
            .collect();
        Ok(AudioClip {
            params,
            frames,
            payloads,
        })
    }

    /// Codec, sample rate (also the RTP clock rate), channels, `mp4a.40.N`, AudioSpecificConfig.
    pub fn params(&self) -> &AudioParams {
        &self.params
    }

    /// Raw AAC frames (no ADTS headers), in order; never empty.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Samples per channel in each frame: [`AAC_SAMPLES_PER_FRAME`].
    pub fn samples_per_frame(&self) -> u32 {
        AAC_SAMPLES_PER_FRAME
    }

    /// RTP payloads of frame `i` (one payload, marker set).
    pub(crate) fn payloads(&self, i: usize) -> Option<&Arc<[RtpPayload]>> {
        self.payloads.get(i)
    }

    /// The SDP `a=fmtp` parameters after the payload type (RFC 3640 section 4.1, AAC-hbr).
    pub(crate) fn sdp_fmtp(&self) -> String {
        let config: String = self
            .params
            .config
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        format!(
            "streamtype=5;profile-level-id=15;mode=AAC-hbr;config={config};sizelength=13;\
             indexlength=3;indexdeltalength=3"
        )
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests index what they just built or checked
mod tests {
    use super::*;

    /// An ADTS header for a raw frame of `len` bytes (AAC-LC, 16 kHz, mono unless changed).
    fn header(len: usize, crc: bool) -> Vec<u8> {
        let hl = if crc { 9 } else { 7 };
        let fl = len + hl;
        let mut h = vec![
            0xFF,
            0xF0 | u8::from(!crc),
            (1 << 6) | (8 << 2),
            (1 << 6) | ((fl >> 11) as u8 & 0x3),
            (fl >> 3) as u8,
            ((fl as u8 & 0x7) << 5) | 0x1F,
            0xFC,
        ];
        if crc {
            h.extend_from_slice(&[0xAB, 0xCD]);
        }
        h
    }

    fn frame(payload: &[u8], crc: bool) -> Vec<u8> {
        let mut f = header(payload.len(), crc);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn parses_frames_with_and_without_crc() {
        let mut data = frame(&[1, 2, 3], false);
        data.extend(frame(&[4, 5], true));
        data.extend(frame(&[6; 300], false));
        let (p, frames) = parse_adts(&data).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[0][..], &[1, 2, 3]);
        assert_eq!(&frames[1][..], &[4, 5]);
        assert_eq!(&frames[2][..], &[6; 300][..]);
        assert_eq!(p.codec, AudioCodec::Aac);
        assert_eq!(p.sample_rate, 16_000);
        assert_eq!(p.channels, 1);
        assert_eq!(p.rfc6381, "mp4a.40.2");
        assert_eq!(&p.config[..], &[0x14, 0x08]);
    }

    #[test]
    fn config_for_other_formats() {
        // AAC-LC 48 kHz stereo: 00010 0011 0010 000 = 0x11 0x90.
        let p = audio_params(AdtsFormat {
            object_type: 2,
            sampling_index: 3,
            channel_config: 2,
        });
        assert_eq!(&p.config[..], &[0x11, 0x90]);
        assert_eq!((p.sample_rate, p.channels), (48_000, 2));
        // AAC-LC 44.1 kHz 7.1: 00010 0100 0111 000 = 0x12 0x38.
        let p = audio_params(AdtsFormat {
            object_type: 2,
            sampling_index: 4,
            channel_config: 7,
        });
        assert_eq!(&p.config[..], &[0x12, 0x38]);
        assert_eq!(p.channels, 8);
    }

    #[test]
    fn payload_layout() {
        let c = AudioClip::from_adts(&frame(&[9; 371], false)).unwrap();
        let p = &c.payloads(0).unwrap()[0];
        assert!(p.marker);
        assert_eq!(&p.data[..2], &[0x00, 0x10]);
        assert_eq!(u16::from_be_bytes([p.data[2], p.data[3]]), 371 << 3);
        assert_eq!(&p.data[4..], &[9; 371][..]);
        assert_eq!(
            c.sdp_fmtp(),
            "streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1408;sizelength=13;\
             indexlength=3;indexdeltalength=3"
        );
    }

    #[test]
    fn rejects_bad_input() {
        let good = frame(&[1, 2, 3, 4], false);
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("short header", good[..5].to_vec()),
            ("truncated frame", good[..good.len() - 1].to_vec()),
            ("leading junk", [&[0u8][..], &good].concat()),
            ("trailing junk", [&good[..], &[0xFF]].concat()),
            ("text", b"this is not ADTS at all".to_vec()),
        ];
        let mut m = good.clone();
        m[1] |= 0x02; // layer 1
        cases.push(("layer", m));
        let mut m = good.clone();
        m[2] = (m[2] & !0x3C) | (13 << 2); // reserved sampling index
        cases.push(("sampling index", m));
        let mut m = good.clone();
        m[2] &= !0x01;
        m[3] &= 0x3F; // channel configuration 0
        cases.push(("channels", m));
        let mut m = good.clone();
        m[6] |= 0x01; // two raw data blocks
        cases.push(("blocks", m));
        let mut m = header(0, false); // no data
        m.truncate(7);
        cases.push(("empty frame", m));
        let mut m = header(2, true); // CRC present but frame length only covers the 7-byte header
        m[4] = 0;
        m[5] = (7 << 5) | 0x1F;
        cases.push(("crc beyond frame", m));
        let mut stereo = frame(&[1], false);
        stereo[3] = (stereo[3] & 0x3F) | (2 << 6);
        cases.push(("format change", [&good[..], &stereo].concat()));
        for (what, data) in cases {
            let e = parse_adts(&data).expect_err(what);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let good = [frame(&[1, 2, 3], true), frame(&[4; 40], false)].concat();
        let mut seed = 0x2468_ace1u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..5000 {
            let mut v = good.clone();
            for _ in 0..1 + next() % 4 {
                let i = next() as usize % v.len();
                v[i] = next() as u8;
            }
            v.truncate(next() as usize % (v.len() + 1));
            if let Ok((_, frames)) = parse_adts(&v) {
                assert!(!frames.is_empty());
            }
        }
        for len in 0..64 {
            let v: Vec<u8> = (0..len).map(|_| next() as u8 | 0xF0).collect();
            let _ = parse_adts(&v);
        }
    }
}
