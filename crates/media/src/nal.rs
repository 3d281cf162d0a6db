//! H.264 / H.265 NAL unit helpers over Annex B byte streams.

#![deny(clippy::indexing_slicing)]

use crate::Codec;

/// Iterates over the NAL units of an Annex B buffer (3- or 4-byte start codes), yielding each NAL
/// without its start code. Bytes before the first start code are ignored; empty NALs are skipped.
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = find_start_code(data, 0).map(|(_, end)| end);
    std::iter::from_fn(move || {
        loop {
            let start = pos?;
            match find_start_code(data, start) {
                Some((sc, end)) => {
                    pos = Some(end);
                    // start <= sc: the start code was searched from `start`.
                    let nal = trim_trailing_zeros(data.get(start..sc).unwrap_or_default());
                    if !nal.is_empty() {
                        return Some(nal);
                    }
                }
                None => {
                    pos = None;
                    let nal = data.get(start..).unwrap_or_default();
                    if !nal.is_empty() {
                        return Some(nal);
                    }
                }
            }
        }
    })
}

/// Finds the next `00 00 01` at or after `from`; returns (index of its first byte, index after it).
// The hot loop of every NAL scan: plain indexing, each index below `i + 3 <= data.len()`.
#[allow(clippy::indexing_slicing)] // proven: the loop condition bounds i + 2 < data.len().
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

/// A 4-byte start code's leading zero belongs to the start code, not to the previous NAL.
fn trim_trailing_zeros(mut nal: &[u8]) -> &[u8] {
    while let Some((0, rest)) = nal.split_last() {
        nal = rest;
    }
    nal
}

/// The NAL unit type from the first header byte(s).
pub fn nal_type(codec: Codec, nal: &[u8]) -> Option<u8> {
    let b = *nal.first()?;
    Some(match codec {
        Codec::H264 => b & 0x1f,
        Codec::H265 => (b >> 1) & 0x3f,
    })
}

/// True for NAL types that begin a random-access point: H.264 IDR (5); H.265 BLA (16-18), IDR
/// (19-20) and CRA (21).
pub fn is_random_access_nal(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(5)) => true,
        (Codec::H265, Some(t)) => (16..=21).contains(&t),
        _ => false,
    }
}

/// True when any NAL of the access unit is a random-access point.
pub fn is_key_frame(codec: Codec, annexb: &[u8]) -> bool {
    annexb_nals(annexb).any(|n| is_random_access_nal(codec, n))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;

    #[test]
    fn splits_mixed_start_codes() {
        let d = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let v: Vec<&[u8]> = annexb_nals(&d).collect();
        assert_eq!(
            v,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        assert!(is_key_frame(Codec::H264, &d));
        assert_eq!(annexb_nals(&[1, 2, 3]).count(), 0);
        assert_eq!(annexb_nals(&[]).count(), 0);
    }

    #[test]
    fn h265_keyframes_include_cra_and_bla() {
        // NAL header: type << 1 in the first byte.
        for (t, key) in [
            (1u8, false),
            (16, true),
            (19, true),
            (20, true),
            (21, true),
            (22, false),
        ] {
            let d = [0, 0, 0, 1, t << 1, 1, 0xaa];
            assert_eq!(is_key_frame(Codec::H265, &d), key, "type {t}");
        }
    }
}
