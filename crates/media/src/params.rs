//! Parameter sets (VPS/SPS/PPS) taken from key access units, and the [`VideoParams`] built from
//! them, including the SDP `fmtp` attribute that describes them.

#![deny(clippy::indexing_slicing)]

use crate::nal::{annexb_nals, nal_type};
use crate::sps::{parse_h264_sps, parse_h265_sps};
use crate::{Codec, VideoParams};
use base::{Error, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;

/// Raw parameter-set NAL units (with NAL header, without start code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParameterSets {
    /// H.265 only.
    pub vps: Option<Bytes>,
    pub sps: Option<Bytes>,
    pub pps: Option<Bytes>,
}

impl ParameterSets {
    /// Collects the first VPS, SPS and PPS found in an Annex B access unit.
    pub fn from_access_unit(codec: Codec, au: &[u8]) -> Self {
        let mut ps = ParameterSets::default();
        for nal in annexb_nals(au) {
            let slot = match (codec, nal_type(codec, nal)) {
                (Codec::H264, Some(7)) | (Codec::H265, Some(33)) => &mut ps.sps,
                (Codec::H264, Some(8)) | (Codec::H265, Some(34)) => &mut ps.pps,
                (Codec::H265, Some(32)) => &mut ps.vps,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(Bytes::copy_from_slice(nal));
            }
        }
        ps
    }

    /// True when every parameter set the codec needs is present.
    pub fn is_complete(&self, codec: Codec) -> bool {
        self.sps.is_some() && self.pps.is_some() && (codec == Codec::H264 || self.vps.is_some())
    }
}

impl VideoParams {
    /// Builds parameters from parameter sets; fails with `InvalidArgument` when one is missing or
    /// the SPS cannot be parsed.
    pub fn from_parameter_sets(
        codec: Codec,
        ps: &ParameterSets,
        version: u32,
    ) -> Result<VideoParams, Error> {
        let (Some(sps), Some(pps)) = (&ps.sps, &ps.pps) else {
            bail!(InvalidArgument, "{codec} stream lacks SPS or PPS");
        };
        match codec {
            Codec::H264 => {
                let Some(s) = parse_h264_sps(sps) else {
                    bail!(
                        InvalidArgument,
                        "unparseable H.264 SPS ({} bytes)",
                        sps.len()
                    );
                };
                let plid = s.profile_level_id();
                Ok(VideoParams {
                    codec,
                    version,
                    width: s.width,
                    height: s.height,
                    frame_rate: s.frame_rate,
                    rfc6381: format!("avc1.{:02x}{:02x}{:02x}", plid[0], plid[1], plid[2]),
                    h264_profile_level_id: Some(plid),
                    vps: None,
                    sps: sps.clone(),
                    pps: pps.clone(),
                })
            }
            Codec::H265 => {
                let Some(vps) = &ps.vps else {
                    bail!(InvalidArgument, "H.265 stream lacks VPS");
                };
                let Some(s) = parse_h265_sps(sps) else {
                    bail!(
                        InvalidArgument,
                        "unparseable H.265 SPS ({} bytes)",
                        sps.len()
                    );
                };
                Ok(VideoParams {
                    codec,
                    version,
                    width: s.width,
                    height: s.height,
                    frame_rate: None,
                    rfc6381: s.rfc6381(),
                    h264_profile_level_id: None,
                    vps: Some(vps.clone()),
                    sps: sps.clone(),
                    pps: pps.clone(),
                })
            }
        }
    }

    /// Builds parameters from the parameter sets in a key access unit (Annex B).
    pub fn from_key_access_unit(
        codec: Codec,
        au: &[u8],
        version: u32,
    ) -> Result<VideoParams, Error> {
        VideoParams::from_parameter_sets(
            codec,
            &ParameterSets::from_access_unit(codec, au),
            version,
        )
    }

    /// The value of the SDP `a=fmtp:<pt>` attribute (without the `a=fmtp:<pt> ` prefix):
    /// H.264 `packetization-mode=1;profile-level-id=..;sprop-parameter-sets=..`, H.265
    /// `sprop-vps=..;sprop-sps=..;sprop-pps=..`.
    pub fn sdp_fmtp(&self) -> String {
        match self.codec {
            Codec::H264 => {
                let plid = self
                    .h264_profile_level_id
                    .or_else(|| self.sps.get(1..4).and_then(|b| b.try_into().ok()))
                    .unwrap_or([0x42, 0xe0, 0x1f]);
                format!(
                    "packetization-mode=1;profile-level-id={:02X}{:02X}{:02X};sprop-parameter-sets={},{}",
                    plid[0],
                    plid[1],
                    plid[2],
                    BASE64.encode(&self.sps),
                    BASE64.encode(&self.pps)
                )
            }
            Codec::H265 => {
                let mut s = String::new();
                if let Some(vps) = &self.vps {
                    s.push_str(&format!("sprop-vps={};", BASE64.encode(vps)));
                }
                s.push_str(&format!(
                    "sprop-sps={};sprop-pps={}",
                    BASE64.encode(&self.sps),
                    BASE64.encode(&self.pps)
                ));
                s
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;
    use crate::annexb::split_access_units;

    /// (clip bytes, codec, expected RFC 6381 string, expected profile-level-id)
    type Case = (&'static [u8], Codec, &'static str, Option<[u8; 3]>);

    #[test]
    fn params_from_fixture_clips() {
        let clips: [Case; 4] = [
            (
                include_bytes!("../../../fixtures/clips/h264_a.h264"),
                Codec::H264,
                "avc1.64001e",
                Some([0x64, 0x00, 0x1e]),
            ),
            (
                include_bytes!("../../../fixtures/clips/h264_b.h264"),
                Codec::H264,
                "avc1.4d401e",
                Some([0x4d, 0x40, 0x1e]),
            ),
            (
                include_bytes!("../../../fixtures/clips/h264_c.h264"),
                Codec::H264,
                "avc1.42c01e",
                Some([0x42, 0xc0, 0x1e]),
            ),
            (
                include_bytes!("../../../fixtures/clips/h265_a.h265"),
                Codec::H265,
                "hvc1.1.6.L63.90",
                None,
            ),
        ];
        for (data, codec, rfc, plid) in clips {
            let aus = split_access_units(codec, data);
            let p = VideoParams::from_key_access_unit(codec, &aus[0].data, 3).unwrap();
            assert_eq!((p.width, p.height), (640, 360), "{rfc}");
            assert_eq!(p.rfc6381, rfc);
            assert_eq!(p.h264_profile_level_id, plid);
            assert_eq!(p.version, 3);
            assert_eq!(p.vps.is_some(), codec == Codec::H265);
            let fmtp = p.sdp_fmtp();
            match codec {
                Codec::H264 => {
                    assert!(
                        fmtp.contains("packetization-mode=1;profile-level-id="),
                        "{fmtp}"
                    )
                }
                Codec::H265 => assert!(fmtp.starts_with("sprop-vps="), "{fmtp}"),
            }
            // A non-key access unit has no parameter sets.
            let e = VideoParams::from_key_access_unit(codec, &aus[1].data, 0).unwrap_err();
            assert_eq!(e.kind(), base::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn garbage_parameter_sets_are_errors() {
        let ps = ParameterSets {
            vps: Some(Bytes::from_static(&[0x40, 1])),
            sps: Some(Bytes::from_static(&[0x42, 1, 0xff])),
            pps: Some(Bytes::from_static(&[0x44, 1])),
        };
        assert!(ps.is_complete(Codec::H265));
        assert!(VideoParams::from_parameter_sets(Codec::H265, &ps, 0).is_err());
        assert!(VideoParams::from_parameter_sets(Codec::H264, &ps, 0).is_err());
        assert!(VideoParams::from_key_access_unit(Codec::H264, &[0, 0, 1, 0x67], 0).is_err());
    }
}
