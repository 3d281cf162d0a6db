//! A clip loaded from an Annex B elementary stream file, split into access units and packetized
//! once, ready to be played in a loop by a mount, optionally with an AAC audio track
//! ([`AudioClip`]).
#![deny(clippy::indexing_slicing)]

use crate::AudioClip;
use base::{Error, ErrorKind, ResultExt, bail};
use bytes::Bytes;
use media::rtp::{DEFAULT_PAYLOAD_SIZE, RtpPayload, packetize};
use media::{Codec, VideoParams, split_access_units};
use std::path::Path;
use std::sync::Arc;

/// Default clip frame rate: the fixture clips are 25 fps.
pub const DEFAULT_FPS: u32 = 25;

/// One access unit of a clip.
#[derive(Clone, Debug)]
pub struct ClipFrame {
    /// Annex B with 4-byte start codes.
    pub data: Bytes,
    pub is_key: bool,
    /// RTP payloads for this access unit (last one has the marker bit).
    pub payloads: Arc<[RtpPayload]>,
}

/// A looping video clip: access units starting with a key frame, the stream's parameters and its
/// frame rate; optionally an audio track that loops with it (see [`ClipSource::with_audio`]).
#[derive(Debug)]
pub struct ClipSource {
    codec: Codec,
    fps: u32,
    params: VideoParams,
    frames: Vec<ClipFrame>,
    audio: Option<AudioClip>,
}

impl ClipSource {
    /// Loads an Annex B elementary stream (`.h264`/`.h265`) at [`DEFAULT_FPS`].
    pub fn from_file(path: impl AsRef<Path>, codec: Codec) -> Result<ClipSource, Error> {
        let path = path.as_ref();
        let data = std::fs::read(path).err_kind(
            ErrorKind::NotFound,
            format_args!("reading clip {}", path.display()),
        )?;
        ClipSource::from_annexb(codec, &data, DEFAULT_FPS)
            .map_err(|e| e.context(format_args!("clip {}", path.display())))
    }

    /// Builds a clip from a whole Annex B elementary stream. Access units before the first key
    /// frame are dropped; the first key frame must carry the parameter sets.
    pub fn from_annexb(codec: Codec, data: &[u8], fps: u32) -> Result<ClipSource, Error> {
        if fps == 0 || fps > 1000 {
            bail!(InvalidArgument, "unsupported frame rate {fps}");
        }
        let aus = split_access_units(codec, data);
        let mut kept = aus.iter().skip_while(|a| !a.is_key).peekable();
        let Some(first_key) = kept.peek() else {
            bail!(
                InvalidArgument,
                "no {codec} key frame in {} bytes",
                data.len()
            );
        };
        let params = VideoParams::from_key_access_unit(codec, &first_key.data, 0)?;
        let frames = kept
            .map(|au| ClipFrame {
                payloads: packetize(codec, &au.data, DEFAULT_PAYLOAD_SIZE).into(),
                data: au.data.clone(),
                is_key: au.is_key,
            })
            .collect();
        Ok(ClipSource {
            codec,
            fps,
            params,
            frames,
            audio: None,
        })
    }

    /// Adds (or replaces) the audio track. A mount serving this clip then describes a second
    /// media section (`trackID=1`, `mpeg4-generic`) and plays the audio in step with the video:
    /// audio timestamps advance by [`AudioClip::samples_per_frame`] per frame on the
    /// `sample_rate` clock, and each audio frame sent is the one at the same position in the
    /// video loop, so a 10 s audio clip stays in sync with a 10 s video clip on every loop.
    pub fn with_audio(mut self, audio: AudioClip) -> ClipSource {
        self.audio = Some(audio);
        self
    }

    /// The audio track, if any.
    pub fn audio(&self) -> Option<&AudioClip> {
        self.audio.as_ref()
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// Parameters from the clip's first key frame (width, height, profile, parameter sets).
    pub fn params(&self) -> &VideoParams {
        &self.params
    }

    /// Access units in decode order; the first is a key frame.
    pub fn frames(&self) -> &[ClipFrame] {
        &self.frames
    }

    /// `(annexb, is_key)` pairs, as in the design sketch.
    pub fn aus(&self) -> impl Iterator<Item = (&Bytes, bool)> {
        self.frames.iter().map(|f| (&f.data, f.is_key))
    }

    /// RTP timestamp increment per frame on the 90 kHz clock.
    pub fn ticks_per_frame(&self) -> u32 {
        media::VIDEO_CLOCK_RATE / self.fps
    }
}
