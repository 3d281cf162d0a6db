//! Splits a whole Annex B elementary stream (an `.h264`/`.h265` file) into access units.
//!
//! Boundary rules (H.264 7.4.1.2.3, H.265 7.4.2.4.4), applied once the current access unit holds a
//! picture (VCL NAL unit):
//! - H.264: a new access unit starts at an AUD, SPS, PPS, SEI, types 14..=18, or a VCL NAL unit
//!   (1..=5) whose `first_mb_in_slice` is 0 (top bit of the byte after the header set).
//! - H.265: a new access unit starts at an AUD, VPS, SPS, PPS, prefix SEI, types 41..=44 and
//!   48..=55, or a VCL NAL unit (0..=31) with `first_slice_segment_in_pic_flag` set (top bit of the
//!   byte after the 2-byte header).

#![deny(clippy::indexing_slicing)]

use crate::Codec;
use crate::nal::{annexb_nals, is_random_access_nal, nal_type};
use bytes::Bytes;

/// One access unit in Annex B form with 4-byte start codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Bytes,
    /// Holds a random-access picture (H.264 IDR; H.265 IDR, CRA or BLA).
    pub is_key: bool,
}

/// True for NAL units that carry coded picture data.
pub fn is_vcl(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(t)) => (1..=5).contains(&t),
        (Codec::H265, Some(t)) => t <= 31,
        _ => false,
    }
}

/// True when `nal` begins a new access unit, given that the current one already holds a picture.
fn starts_access_unit(codec: Codec, nal: &[u8]) -> bool {
    let Some(t) = nal_type(codec, nal) else {
        return false;
    };
    match codec {
        Codec::H264 => match t {
            6..=9 | 14..=18 => true,
            1..=5 => nal.get(1).is_some_and(|b| b & 0x80 != 0),
            _ => false,
        },
        Codec::H265 => match t {
            32..=35 | 39 | 41..=44 | 48..=55 => true,
            0..=31 => nal.get(2).is_some_and(|b| b & 0x80 != 0),
            _ => false,
        },
    }
}

/// Appends `nal` to `out` behind a 4-byte start code.
pub fn push_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(nal);
}

/// Splits an Annex B elementary stream into access units. NAL units before the first picture are
/// kept with it; trailing NAL units with no picture after them are dropped. Never panics.
pub fn split_access_units(codec: Codec, stream: &[u8]) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut has_vcl = false;
    let mut is_key = false;
    for nal in annexb_nals(stream) {
        if has_vcl && starts_access_unit(codec, nal) {
            out.push(AccessUnit {
                data: Bytes::from(std::mem::take(&mut cur)),
                is_key,
            });
            has_vcl = false;
            is_key = false;
        }
        push_nal(&mut cur, nal);
        has_vcl |= is_vcl(codec, nal);
        is_key |= is_random_access_nal(codec, nal);
    }
    if has_vcl {
        out.push(AccessUnit {
            data: Bytes::from(cur),
            is_key,
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            // Mix 3- and 4-byte start codes.
            if v.len() % 2 == 0 {
                v.extend_from_slice(&[0, 0, 1]);
                v.extend_from_slice(n);
            } else {
                push_nal(&mut v, n);
            }
        }
        v
    }

    #[test]
    fn splits_h264() {
        let s = annexb(&[
            &[0x09, 0x10],
            &[0x67, 1, 2],
            &[0x68, 3],
            &[0x65, 0x88, 1],
            &[0x65, 0x08, 2], // second slice of the same picture
            &[0x41, 0x9a, 3],
            &[0x41, 0x9a, 4],
            &[0x06, 5],
            &[0x41, 0x9a, 5],
        ]);
        let aus = split_access_units(Codec::H264, &s);
        assert_eq!(aus.len(), 4);
        assert!(aus[0].is_key && !aus[1].is_key && !aus[2].is_key && !aus[3].is_key);
        let nals: Vec<&[u8]> = annexb_nals(&aus[0].data).collect();
        assert_eq!(nals.len(), 5);
        assert!(aus[0].data.starts_with(&[0, 0, 0, 1, 0x09]));
        assert_eq!(
            &aus[3].data[..],
            &[0, 0, 0, 1, 6, 5, 0, 0, 0, 1, 0x41, 0x9a, 5][..]
        );
    }

    #[test]
    fn splits_h265() {
        let s = annexb(&[
            &[0x46, 0x01, 0x10],    // AUD
            &[0x40, 0x01, 0x0c],    // VPS
            &[0x42, 0x01, 0x01],    // SPS
            &[0x44, 0x01, 0xc1],    // PPS
            &[0x26, 0x01, 0xaf, 1], // IDR_W_RADL, first slice
            &[0x26, 0x01, 0x2f, 2], // second slice segment
            &[0x50, 0x01, 0x00],    // suffix SEI stays
            &[0x02, 0x01, 0xd0, 3], // TRAIL_R first slice
            &[0x2a, 0x01, 0x80, 4], // CRA
        ]);
        let aus = split_access_units(Codec::H265, &s);
        assert_eq!(aus.len(), 3);
        assert_eq!(annexb_nals(&aus[0].data).count(), 7);
        assert!(aus[0].is_key && !aus[1].is_key && aus[2].is_key);
    }

    #[test]
    fn splits_fixture_clips() {
        let h264 = include_bytes!("../../../fixtures/clips/h264_a.h264");
        let aus = split_access_units(Codec::H264, h264);
        assert_eq!(aus.len(), 250);
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        assert_eq!(keys, vec![0, 50, 100, 150, 200]);
        let h265 = include_bytes!("../../../fixtures/clips/h265_a.h265");
        let aus = split_access_units(Codec::H265, h265);
        assert_eq!(aus.len(), 250);
        let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_key).collect();
        assert_eq!(keys, vec![0, 50, 100, 150, 200]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9u32;
        for len in 0..300usize {
            let v: Vec<u8> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    // Plenty of zeros and ones so start codes appear.
                    if i % 3 == 0 {
                        (seed as u8) & 1
                    } else {
                        seed as u8
                    }
                })
                .collect();
            for codec in [Codec::H264, Codec::H265] {
                for au in split_access_units(codec, &v) {
                    assert!(au.data.starts_with(&[0, 0, 0, 1]));
                }
            }
        }
        assert!(split_access_units(Codec::H264, &[]).is_empty());
        assert!(split_access_units(Codec::H265, &[0, 0, 1]).is_empty());
    }
}
