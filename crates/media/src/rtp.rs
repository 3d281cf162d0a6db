//! RTP payload packetization of access units: H.264 (RFC 6184, single NAL unit packets and FU-A)
//! and H.265 (RFC 7798, single NAL unit packets and FU type 49), plus a fixed RTP header writer.
//! Access unit delimiters are not sent: the RTP marker bit marks the end of an access unit.

#![deny(clippy::indexing_slicing)]

use crate::Codec;
use crate::nal::{annexb_nals, nal_type};
use bytes::{BufMut, Bytes, BytesMut};

/// Payload sizes below this are raised to it, so every fragment carries at least a few bytes.
pub const MIN_PAYLOAD_SIZE: usize = 16;

/// A common safe RTP payload size for UDP on Ethernet-sized paths.
pub const DEFAULT_PAYLOAD_SIZE: usize = 1200;

/// One RTP payload and whether the packet carrying it gets the marker bit (last of the AU).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPayload {
    pub data: Bytes,
    pub marker: bool,
}

/// Packetizes one Annex B access unit into RTP payloads of at most `max_payload` bytes (at least
/// [`MIN_PAYLOAD_SIZE`]). The last payload has `marker` set. An access unit without NAL units gives
/// no payloads.
pub fn packetize(codec: Codec, au: &[u8], max_payload: usize) -> Vec<RtpPayload> {
    let max = max_payload.max(MIN_PAYLOAD_SIZE);
    let mut out = Vec::new();
    for nal in annexb_nals(au) {
        let skip = match codec {
            Codec::H264 => nal_type(codec, nal) == Some(9),
            Codec::H265 => nal.len() < 2 || nal_type(codec, nal) == Some(35),
        };
        if skip {
            continue;
        }
        if nal.len() <= max {
            out.push(RtpPayload {
                data: Bytes::copy_from_slice(nal),
                marker: false,
            });
            continue;
        }
        // `annexb_nals` never yields empty NALs, and H.265 NALs shorter than their 2-byte header
        // were skipped above, so the headers are there.
        match (codec, nal) {
            (Codec::H264, [h, body @ ..]) => {
                // FU indicator: F and NRI from the NAL header, type 28. FU header: S, E, type.
                let indicator = (h & 0xe0) | 28;
                let typ = h & 0x1f;
                fragment(body, max - 2, &mut out, |start, end, buf| {
                    buf.put_u8(indicator);
                    buf.put_u8(fu_flags(start, end) | typ);
                });
            }
            (Codec::H265, [h0, h1, body @ ..]) => {
                // PayloadHdr: the NAL header with type 49. FU header: S, E, 6-bit type.
                let payload_hdr = (h0 & 0x81) | (49 << 1);
                let typ = (h0 >> 1) & 0x3f;
                let h1 = *h1;
                fragment(body, max - 3, &mut out, |start, end, buf| {
                    buf.put_u8(payload_hdr);
                    buf.put_u8(h1);
                    buf.put_u8(fu_flags(start, end) | typ);
                });
            }
            _ => {}
        }
    }
    if let Some(last) = out.last_mut() {
        last.marker = true;
    }
    out
}

fn fu_flags(start: bool, end: bool) -> u8 {
    (u8::from(start) << 7) | (u8::from(end) << 6)
}

fn fragment(
    body: &[u8],
    chunk: usize,
    out: &mut Vec<RtpPayload>,
    header: impl Fn(bool, bool, &mut BytesMut),
) {
    let n = body.len().div_ceil(chunk);
    for (i, part) in body.chunks(chunk).enumerate() {
        let mut buf = BytesMut::with_capacity(part.len() + 3);
        header(i == 0, i + 1 == n, &mut buf);
        buf.put_slice(part);
        out.push(RtpPayload {
            data: buf.freeze(),
            marker: false,
        });
    }
}

/// Writes a 12-byte RTP header (version 2, no padding, extension or CSRCs) followed by `payload`.
pub fn rtp_packet(
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> Bytes {
    let mut b = BytesMut::with_capacity(12 + payload.len());
    b.put_u8(0x80);
    b.put_u8((u8::from(marker) << 7) | (payload_type & 0x7f));
    b.put_u16(sequence);
    b.put_u32(timestamp);
    b.put_u32(ssrc);
    b.put_slice(payload);
    b.freeze()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;
    use crate::annexb::{push_nal, split_access_units};

    /// Minimal reassembly (the inverse of `packetize`) for round-trip tests.
    fn depacketize(codec: Codec, payloads: &[RtpPayload]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for p in payloads {
            let d = &p.data[..];
            match (codec, nal_type(codec, d)) {
                (Codec::H264, Some(28)) => {
                    let (ind, hdr) = (d[0], d[1]);
                    if hdr & 0x80 != 0 {
                        fu = Some(vec![(ind & 0xe0) | (hdr & 0x1f)]);
                    }
                    let f = fu.as_mut().unwrap();
                    f.extend_from_slice(&d[2..]);
                    if hdr & 0x40 != 0 {
                        push_nal(&mut out, &fu.take().unwrap());
                    }
                }
                (Codec::H265, Some(49)) => {
                    let hdr = d[2];
                    if hdr & 0x80 != 0 {
                        fu = Some(vec![(d[0] & 0x81) | ((hdr & 0x3f) << 1), d[1]]);
                    }
                    fu.as_mut().unwrap().extend_from_slice(&d[3..]);
                    if hdr & 0x40 != 0 {
                        push_nal(&mut out, &fu.take().unwrap());
                    }
                }
                _ => push_nal(&mut out, d),
            }
        }
        assert!(fu.is_none());
        out
    }

    fn without_aud(codec: Codec, au: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in annexb_nals(au) {
            let aud = match codec {
                Codec::H264 => nal_type(codec, n) == Some(9),
                Codec::H265 => nal_type(codec, n) == Some(35),
            };
            if !aud {
                push_nal(&mut v, n);
            }
        }
        v
    }

    #[test]
    fn round_trips_fixture_clips() {
        let clips: [(&[u8], Codec); 2] = [
            (
                include_bytes!("../../../fixtures/clips/h264_a.h264"),
                Codec::H264,
            ),
            (
                include_bytes!("../../../fixtures/clips/h265_a.h265"),
                Codec::H265,
            ),
        ];
        for (data, codec) in clips {
            let aus = split_access_units(codec, data);
            let mut fragmented = 0;
            for mtu in [DEFAULT_PAYLOAD_SIZE, 100, 0] {
                for au in aus.iter().take(60) {
                    let p = packetize(codec, &au.data, mtu);
                    assert!(!p.is_empty());
                    for (i, pl) in p.iter().enumerate() {
                        assert!(pl.data.len() <= mtu.max(MIN_PAYLOAD_SIZE));
                        assert_eq!(pl.marker, i + 1 == p.len());
                    }
                    fragmented += p
                        .iter()
                        .filter(|x| matches!(nal_type(codec, &x.data), Some(28 | 49)))
                        .count();
                    assert_eq!(depacketize(codec, &p), without_aud(codec, &au.data));
                }
            }
            assert!(fragmented > 0);
        }
    }

    #[test]
    fn small_and_empty_units() {
        assert!(packetize(Codec::H264, &[], 1200).is_empty());
        assert!(packetize(Codec::H264, &[0, 0, 0, 1, 0x09, 0x10], 1200).is_empty());
        let p = packetize(Codec::H264, &[0, 0, 1, 0x65, 1, 2, 3], 1200);
        assert_eq!(p.len(), 1);
        assert_eq!(&p[0].data[..], &[0x65, 1, 2, 3]);
        assert!(p[0].marker);
        // A 1-byte H.265 "NAL" cannot be sent and is dropped rather than panicking.
        assert!(packetize(Codec::H265, &[0, 0, 1, 0x26], 1200).is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0xdead_beefu32;
        for len in 0..400usize {
            let v: Vec<u8> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    if i % 4 == 0 {
                        (seed as u8) & 1
                    } else {
                        seed as u8
                    }
                })
                .collect();
            for codec in [Codec::H264, Codec::H265] {
                for mtu in [0, 17, 100] {
                    let _ = packetize(codec, &v, mtu);
                }
            }
        }
    }

    #[test]
    fn header_layout() {
        let p = rtp_packet(96, true, 0x1234, 0xdead_beef, 7, &[9]);
        assert_eq!(
            &p[..],
            &[
                0x80, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 9
            ][..]
        );
    }
}
