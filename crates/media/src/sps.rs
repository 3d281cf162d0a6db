//! Minimal sequence parameter set parsing: picture size, profile/level and frame rate. Only what
//! [`crate::VideoParams`] needs. Parsers return `None` on anything malformed or truncated and never
//! panic.

#![deny(clippy::indexing_slicing)]

use crate::bits::{BitReader, unescape_rbsp};

/// What Vantage needs from an H.264 SPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H264Sps {
    pub profile_idc: u8,
    /// The `constraint_set0..5` flags byte.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub width: u32,
    pub height: u32,
    /// `(time_scale, 2 * num_units_in_tick)` from the VUI timing info, when present.
    pub frame_rate: Option<(u32, u32)>,
    /// 1 (4:2:0) unless a High-family profile says otherwise.
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
}

impl H264Sps {
    /// The SDP `profile-level-id` bytes.
    pub fn profile_level_id(&self) -> [u8; 3] {
        [self.profile_idc, self.constraint_flags, self.level_idc]
    }
}

/// What Vantage needs from an H.265 SPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H265Sps {
    pub general_profile_space: u8,
    pub general_tier_flag: bool,
    pub general_profile_idc: u8,
    pub general_profile_compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, as 6 bytes.
    pub general_constraint_bytes: [u8; 6],
    pub general_level_idc: u8,
    pub width: u32,
    pub height: u32,
    pub max_sub_layers_minus1: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
}

impl H265Sps {
    /// The RFC 6381 / ISO 14496-15 codec string, e.g. `hvc1.1.6.L93.B0`.
    pub fn rfc6381(&self) -> String {
        let space = match self.general_profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let compat = self.general_profile_compatibility_flags.reverse_bits();
        let tier = if self.general_tier_flag { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{compat:X}.{tier}{}",
            self.general_profile_idc, self.general_level_idc
        );
        let used = self
            .general_constraint_bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in self.general_constraint_bytes.iter().take(used) {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// Parses an H.264 SPS NAL unit (with its 1-byte header, without start code).
pub fn parse_h264_sps(nal: &[u8]) -> Option<H264Sps> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape_rbsp(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.read_bits(8)? as u8;
    let constraint_flags = r.read_bits(8)? as u8;
    let level_idc = r.read_bits(8)? as u8;
    let _sps_id = r.read_ue()?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let (mut bit_depth_luma_minus8, mut bit_depth_chroma_minus8) = (0, 0);
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.read_ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.read_flag()?;
        }
        bit_depth_luma_minus8 = r.read_ue()?;
        bit_depth_chroma_minus8 = r.read_ue()?;
        let _qpprime_y_zero_transform_bypass = r.read_flag()?;
        if r.read_flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.read_flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.read_ue()?;
    match r.read_ue()? {
        0 => {
            let _log2_max_poc_lsb = r.read_ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.read_flag()?;
            let _offset_for_non_ref_pic = r.read_se()?;
            let _offset_for_top_to_bottom_field = r.read_se()?;
            let n = r.read_ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.read_se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    let _max_num_ref_frames = r.read_ue()?;
    let _gaps_allowed = r.read_flag()?;
    let width_mbs = u64::from(r.read_ue()?) + 1;
    let height_map_units = u64::from(r.read_ue()?) + 1;
    let frame_mbs_only = r.read_flag()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.read_flag()?;
    }
    let _direct_8x8_inference = r.read_flag()?;
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.read_flag()? {
        crop_l = r.read_ue()?.into();
        crop_r = r.read_ue()?.into();
        crop_t = r.read_ue()?.into();
        crop_b = r.read_ue()?.into();
    }
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let width = (width_mbs * 16).checked_sub(crop_unit_x * (crop_l + crop_r))?;
    let height =
        (field_factor * height_map_units * 16).checked_sub(crop_unit_y * (crop_t + crop_b))?;
    let width = u32::try_from(width).ok().filter(|&w| w > 0)?;
    let height = u32::try_from(height).ok().filter(|&h| h > 0)?;
    // The VUI is optional for our purposes: a truncated or odd VUI just means no frame rate.
    let frame_rate = if r.read_flag().unwrap_or(false) {
        h264_vui_frame_rate(&mut r)
    } else {
        None
    };
    Some(H264Sps {
        chroma_format_idc: u8::try_from(chroma_format_idc).ok()?,
        bit_depth_luma_minus8: u8::try_from(bit_depth_luma_minus8).ok()?,
        bit_depth_chroma_minus8: u8::try_from(bit_depth_chroma_minus8).ok()?,
        profile_idc,
        constraint_flags,
        level_idc,
        width,
        height,
        frame_rate,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.read_se()?);
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

fn h264_vui_frame_rate(r: &mut BitReader<'_>) -> Option<(u32, u32)> {
    if r.read_flag()? {
        // aspect_ratio_info_present_flag
        if r.read_bits(8)? == 255 {
            r.skip_bits(32)?; // sar_width, sar_height
        }
    }
    if r.read_flag()? {
        r.skip_bits(1)?; // overscan_appropriate_flag
    }
    if r.read_flag()? {
        r.skip_bits(4)?; // video_format, video_full_range_flag
        if r.read_flag()? {
            r.skip_bits(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.read_flag()? {
        r.read_ue()?; // chroma_sample_loc_type_top_field
        r.read_ue()?; // chroma_sample_loc_type_bottom_field
    }
    if !r.read_flag()? {
        return None;
    }
    let num_units_in_tick = r.read_bits(32)?;
    let time_scale = r.read_bits(32)?;
    let den = num_units_in_tick.checked_mul(2)?;
    if den == 0 || time_scale == 0 {
        return None;
    }
    Some(reduce(time_scale, den))
}

fn reduce(n: u32, d: u32) -> (u32, u32) {
    let (mut a, mut b) = (n, d);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    // a > 0 here because d > 0.
    (n / a, d / a)
}

/// Parses an H.265 SPS NAL unit (with its 2-byte header, without start code).
pub fn parse_h265_sps(nal: &[u8]) -> Option<H265Sps> {
    if (nal.first()? >> 1) & 0x3f != 33 || nal.len() < 3 {
        return None;
    }
    let rbsp = unescape_rbsp(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    let _vps_id = r.read_bits(4)?;
    let max_sub_layers_minus1 = r.read_bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return None;
    }
    let temporal_id_nesting = r.read_flag()?;
    // profile_tier_level(1, max_sub_layers_minus1)
    let general_profile_space = r.read_bits(2)? as u8;
    let general_tier_flag = r.read_flag()?;
    let general_profile_idc = r.read_bits(5)? as u8;
    let general_profile_compatibility_flags = r.read_bits(32)?;
    let mut general_constraint_bytes = [0u8; 6];
    for b in &mut general_constraint_bytes {
        *b = r.read_bits(8)? as u8;
    }
    let general_level_idc = r.read_bits(8)? as u8;
    // At most 6 sub-layers: checked above.
    let mut sub_layers = [(false, false); 6];
    for (profile, level) in sub_layers.iter_mut().take(max_sub_layers_minus1 as usize) {
        *profile = r.read_flag()?;
        *level = r.read_flag()?;
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip_bits(2)?;
        }
    }
    for &(profile, level) in sub_layers.iter().take(max_sub_layers_minus1 as usize) {
        if profile {
            r.skip_bits(88)?;
        }
        if level {
            r.skip_bits(8)?;
        }
    }
    let _sps_id = r.read_ue()?;
    let chroma_format_idc = r.read_ue()?;
    if chroma_format_idc > 3 {
        return None;
    }
    let mut separate_colour_plane = false;
    if chroma_format_idc == 3 {
        separate_colour_plane = r.read_flag()?;
    }
    let width = u64::from(r.read_ue()?);
    let height = u64::from(r.read_ue()?);
    let (mut l, mut rt, mut t, mut b) = (0u64, 0u64, 0u64, 0u64);
    if r.read_flag()? {
        l = r.read_ue()?.into();
        rt = r.read_ue()?.into();
        t = r.read_ue()?.into();
        b = r.read_ue()?.into();
    }
    let chroma = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_w, sub_h): (u64, u64) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let width = width.checked_sub(sub_w * (l + rt))?;
    let height = height.checked_sub(sub_h * (t + b))?;
    let bit_depth_luma_minus8 = u8::try_from(r.read_ue()?).ok()?;
    let bit_depth_chroma_minus8 = u8::try_from(r.read_ue()?).ok()?;
    Some(H265Sps {
        max_sub_layers_minus1: u8::try_from(max_sub_layers_minus1).ok()?,
        temporal_id_nesting,
        chroma_format_idc: u8::try_from(chroma_format_idc).ok()?,
        bit_depth_luma_minus8,
        bit_depth_chroma_minus8,
        general_profile_space,
        general_tier_flag,
        general_profile_idc,
        general_profile_compatibility_flags,
        general_constraint_bytes,
        general_level_idc,
        width: u32::try_from(width).ok().filter(|&w| w > 0)?,
        height: u32::try_from(height).ok().filter(|&h| h > 0)?,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // Tests index known fixtures.
mod tests {
    use super::*;

    /// x264 High profile SPS for 640x360 (640x368 cropped), level 3.0, VUI timing 25 fps
    /// (from fixtures/clips/h264_a.h264).
    pub(crate) const H264_SPS_HIGH: &str = "6764001eacb201405ff2e022000003000200000300651e2c5c90";
    /// x264 constrained baseline SPS from fixtures/clips/h264_c.h264.
    const H264_SPS_BASELINE: &str = "6742c01ed900a02ff97011000003000100000300328f162e48";
    /// x265 Main SPS from fixtures/clips/h265_a.h265 (its first 42 bytes are enough for the size).
    const H265_SPS_MAIN: &str =
        "42010101600000030090000003000003003fa0050201696592a4932bc05a02000003000200000300";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn parses_h264_sps() {
        let s = parse_h264_sps(&hex(H264_SPS_HIGH)).unwrap();
        assert_eq!((s.width, s.height), (640, 360));
        assert_eq!(s.profile_level_id(), [0x64, 0x00, 0x1e]);
        assert_eq!(s.frame_rate, Some((25, 1)));
        let s = parse_h264_sps(&hex(H264_SPS_BASELINE)).unwrap();
        assert_eq!((s.width, s.height), (640, 360));
        assert_eq!(s.profile_level_id(), [0x42, 0xc0, 0x1e]);
    }

    #[test]
    fn parses_h265_sps() {
        let s = parse_h265_sps(&hex(H265_SPS_MAIN)).unwrap();
        assert_eq!((s.width, s.height), (640, 360));
        assert_eq!(s.general_profile_idc, 1);
        assert_eq!(s.rfc6381(), "hvc1.1.6.L63.90");
        assert_eq!(
            (
                s.chroma_format_idc,
                s.bit_depth_luma_minus8,
                s.bit_depth_chroma_minus8
            ),
            (1, 0, 0),
            "4:2:0 8-bit"
        );
    }

    #[test]
    fn h265_codec_string() {
        let s = H265Sps {
            general_profile_space: 0,
            general_tier_flag: false,
            general_profile_idc: 1,
            general_profile_compatibility_flags: 0x6000_0000,
            general_constraint_bytes: [0xb0, 0, 0, 0, 0, 0],
            general_level_idc: 93,
            width: 1,
            height: 1,
            max_sub_layers_minus1: 0,
            temporal_id_nesting: true,
            chroma_format_idc: 1,
            bit_depth_luma_minus8: 0,
            bit_depth_chroma_minus8: 0,
        };
        assert_eq!(s.rfc6381(), "hvc1.1.6.L93.B0");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..200usize {
            for _ in 0..20 {
                let mut v: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as u8
                    })
                    .collect();
                if let Some(b) = v.first_mut() {
                    *b = 0x67;
                }
                let _ = parse_h264_sps(&v);
                if let Some(b) = v.first_mut() {
                    *b = 33 << 1;
                }
                let _ = parse_h265_sps(&v);
            }
        }
        assert_eq!(parse_h264_sps(&[]), None);
        assert_eq!(parse_h265_sps(&[0x42]), None);
        assert_eq!(parse_h264_sps(&[0x68, 1, 2, 3]), None);
    }
}
