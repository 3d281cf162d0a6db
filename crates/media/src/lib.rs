//! Pure codec and container code: no I/O, no clock, never panics on input.
//!
//! The process-wide frame representation is [`Frame`]: one access unit in Annex B form with 4-byte
//! start codes. Key frames carry their parameter sets in-band, so any consumer can start at a key
//! frame without out-of-band data. Annex B with 4-byte start codes is the same size as the 4-byte
//! length-prefixed (AVCC/HVCC) form used by MP4, so either converts to the other in place.

pub mod annexb;
pub mod bits;
pub mod fmp4;
pub mod mp4;
pub mod nal;
pub mod params;
pub mod rtp;
pub mod scan;
pub mod sps;

pub use annexb::{AccessUnit, split_access_units};
pub use params::ParameterSets;

use bytes::Bytes;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// RTP and MP4 video clock rate.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// A video codec that Vantage forwards without decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    /// The name used in SDP `a=rtpmap` lines and in error messages.
    pub fn rtp_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
        }
    }

    /// The name shown to people ("H.264").
    pub fn display_name(self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// What a consumer needs to know about a video stream's encoding. A new value (with a higher
/// `version`) is created whenever the camera changes its parameter sets mid-stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    pub codec: Codec,
    /// Increases by one each time the parameter sets of a channel change.
    pub version: u32,
    pub width: u32,
    pub height: u32,
    /// Frames per second as a fraction, when the stream says.
    pub frame_rate: Option<(u32, u32)>,
    /// RFC 6381 codec string (`avc1.640028`, `hvc1.1.6.L93.B0`).
    pub rfc6381: String,
    /// H.264 only: `profile_idc`, constraint flags and `level_idc` (the SDP `profile-level-id`).
    pub h264_profile_level_id: Option<[u8; 3]>,
    /// Raw parameter-set NAL units without start codes: VPS (H.265 only), SPS, PPS.
    pub vps: Option<Bytes>,
    pub sps: Bytes,
    pub pps: Bytes,
}

/// One video access unit.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Presentation time on a 90 kHz timeline that is monotonic within one upstream session (run).
    pub pts: i64,
    /// Wall-clock time at which the frame was fully received.
    pub received: SystemTime,
    /// A random-access point: H.264 IDR; H.265 IDR, CRA or BLA.
    pub is_key: bool,
    /// Annex B, 4-byte start codes; key frames begin with their parameter sets.
    pub data: Bytes,
    /// The parameters in force for this frame.
    pub params: Arc<VideoParams>,
}

impl Frame {
    pub fn codec(&self) -> Codec {
        self.params.codec
    }
}

/// An audio codec that Vantage records without decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// MPEG-4 AAC, carried over RTP as `mpeg4-generic` (RFC 3640, AAC-hbr mode).
    Aac,
}

impl AudioCodec {
    /// The name shown to people.
    pub fn display_name(self) -> &'static str {
        match self {
            AudioCodec::Aac => "AAC",
        }
    }
}

/// What a consumer needs to know about an audio stream's encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioParams {
    pub codec: AudioCodec,
    /// Samples per second (also the RTP clock rate and the MP4 track's timescale).
    pub sample_rate: u32,
    pub channels: u16,
    /// RFC 6381 codec string (`mp4a.40.2` for AAC-LC).
    pub rfc6381: String,
    /// AAC: the AudioSpecificConfig (ISO/IEC 14496-3), as in the SDP `config=` parameter.
    pub config: Bytes,
}

/// One audio access unit (for AAC: one raw frame, no ADTS header).
#[derive(Clone, Debug)]
pub struct AudioFrame {
    /// Presentation time on the same 90 kHz session timeline as the video frames' `pts`.
    pub pts: i64,
    /// Wall-clock time at which the frame was fully received.
    pub received: SystemTime,
    /// Number of samples (per channel) in this frame, at `params.sample_rate` (1024 for AAC-LC).
    pub duration: u32,
    pub data: Bytes,
    pub params: Arc<AudioParams>,
}
