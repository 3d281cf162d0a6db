//! One RTSP client session (retina): DESCRIBE, SETUP of the first video stream, PLAY, then frames
//! until something fails. Every failure becomes a [`base::Error`] whose kind tells the supervisor
//! whether the camera is unreachable ([`hub::State::Offline`]) or answered with something unusable
//! ([`hub::State::Error`]); see [`state_for`].

use crate::Sink;
use crate::SourceConfig;
use base::{Clocks, Error, ErrorKind, redact_secret_in};
use bytes::Bytes;
use futures::StreamExt as _;
use media::{AudioCodec, AudioFrame, AudioParams, Codec, Frame, ParameterSets, VideoParams};
use retina::client::{
    self, Credentials, InitialTimestampPolicy, PlayOptions, SessionOptions, SetupOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use std::sync::Arc;
use std::time::Duration;

/// No frame for this long ends the session ("no video frames for 5 s"); audio alone does not count.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Each of DESCRIBE, SETUP and PLAY must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps the kind of a session error to the state shown to operators: the camera cannot be
/// reached or went away (`Offline`), or it answered with something unusable (`Error`).
pub fn state_for(kind: ErrorKind) -> hub::State {
    match kind {
        ErrorKind::Unavailable | ErrorKind::DeadlineExceeded | ErrorKind::Cancelled => {
            hub::State::Offline
        }
        _ => hub::State::Error,
    }
}

/// Where the session was when it failed; a truncated message at EOF means different things before
/// and after PLAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Describe,
    Setup,
    Play,
    Streaming,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Describe => "DESCRIBE",
            Phase::Setup => "SETUP",
            Phase::Play => "PLAY",
            Phase::Streaming => "streaming",
        }
    }
}

/// Classifies a retina error. Retina's error enum is private, so this relies on its status code
/// and its stable message prefixes (retina is pinned to an exact version).
fn classify(e: &retina::Error, phase: Phase) -> ErrorKind {
    if let Some(status) = e.status_code() {
        return match status {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            500..=599 => ErrorKind::Unavailable,
            // A 2xx here means the response body (SDP, transport) could not be used.
            _ => ErrorKind::DataLoss,
        };
    }
    let msg = e.to_string();
    if msg.starts_with("Unable to connect")
        || msg.starts_with("Error reading from RTSP peer")
        || msg.starts_with("Error writing to RTSP peer")
        || msg.starts_with("Error receiving UDP packet")
        || msg.starts_with("Timeout")
    {
        ErrorKind::Unavailable
    } else if msg.starts_with("RTSP framing error") {
        // A message cut short by the peer closing mid-stream is a lost connection, not garbage.
        if phase == Phase::Streaming && msg.contains("at EOF") {
            ErrorKind::Unavailable
        } else {
            ErrorKind::DataLoss
        }
    } else if msg.starts_with("Unsupported") {
        ErrorKind::Unimplemented
    } else if msg.starts_with("Internal error") {
        ErrorKind::Internal
    } else {
        ErrorKind::DataLoss
    }
}

/// Context for error messages: camera id and URL (which never holds credentials), with the
/// password scrubbed from whatever the library said.
struct Ctx<'a> {
    source: &'a SourceConfig,
    url: String,
}

impl Ctx<'_> {
    fn error(&self, kind: ErrorKind, detail: impl std::fmt::Display) -> Error {
        // Retina's messages span several lines (connection and packet context); keep one line.
        let detail = detail.to_string();
        let detail: Vec<&str> = detail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let msg = format!(
            "camera {} ({}): {}",
            self.source.camera_id,
            self.url,
            detail.join("; ")
        );
        let msg = self
            .source
            .secrets()
            .iter()
            .fold(msg, |m, secret| redact_secret_in(&m, secret));
        Error::new(kind, msg)
    }

    fn retina(&self, e: retina::Error, phase: Phase) -> Error {
        let kind = classify(&e, phase);
        self.error(kind, format_args!("{} failed: {e}", phase.as_str()))
    }

    fn timeout(&self, phase: Phase) -> Error {
        self.error(
            ErrorKind::DeadlineExceeded,
            format_args!(
                "no response to {} within {} s",
                phase.as_str(),
                REQUEST_TIMEOUT.as_secs()
            ),
        )
    }
}

/// Builds [`VideoParams`] from the parameter sets found in a key frame, falling back to retina's
/// view of the stream for what our SPS parser cannot tell.
fn build_params(
    codec: Codec,
    data: &[u8],
    retina_params: Option<&retina::codec::VideoParameters>,
    version: u32,
) -> Result<VideoParams, String> {
    let ps = ParameterSets::from_access_unit(codec, data);
    match VideoParams::from_parameter_sets(codec, &ps, version) {
        Ok(mut p) => {
            if p.frame_rate.is_none() {
                p.frame_rate = retina_params.and_then(|r| r.frame_rate());
            }
            Ok(p)
        }
        Err(e) => {
            // Our parser failed but the sets are there: use retina's dimensions and codec string.
            let (Some(r), Some(sps), Some(pps)) = (retina_params, ps.sps, ps.pps) else {
                return Err(e.to_string());
            };
            if codec == Codec::H265 && ps.vps.is_none() {
                return Err(e.to_string());
            }
            let (width, height) = r.pixel_dimensions();
            Ok(VideoParams {
                codec,
                version,
                width,
                height,
                frame_rate: r.frame_rate(),
                rfc6381: r.rfc6381_codec().to_owned(),
                h264_profile_level_id: match codec {
                    Codec::H264 => sps.get(1..4).and_then(|b| b.try_into().ok()),
                    Codec::H265 => None,
                },
                vps: ps.vps,
                sps,
                pps,
            })
        }
    }
}

/// Reports pts rewrites: each one to the sink (a counter on the channel), and to the log with
/// the camera id, the first at once and then at most one line per [`REWRITE_LOG_INTERVAL`]
/// with the number of rewrites since the previous line.
struct RewriteLog {
    /// Rewrites not yet logged, and when the last line was written.
    unlogged: u64,
    last_line: Option<std::time::Instant>,
}

/// At most one log line about rewritten pts per camera in this interval.
pub const REWRITE_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl RewriteLog {
    fn new() -> Self {
        RewriteLog {
            unlogged: 0,
            last_line: None,
        }
    }

    /// One rewritten frame: `camera_pts` as the camera sent it, `pts` as published. Returns
    /// whether a log line was written.
    fn note(
        &mut self,
        camera_id: &str,
        (camera_pts, pts): (i64, i64),
        now: std::time::Instant,
        sink: &mut dyn Sink,
    ) -> bool {
        sink.pts_rewritten(camera_pts, pts);
        self.unlogged += 1;
        if self
            .last_line
            .is_some_and(|t| now.saturating_duration_since(t) < REWRITE_LOG_INTERVAL)
        {
            return false;
        }
        tracing::warn!(
            camera = camera_id,
            camera_pts,
            pts,
            rewritten = self.unlogged,
            "camera clock did not advance: pts rewritten to keep the timeline monotonic \
             ({} frame(s) since the last report)",
            self.unlogged
        );
        self.unlogged = 0;
        self.last_line = Some(now);
        true
    }
}

fn same_sets(a: &VideoParams, ps: &ParameterSets) -> bool {
    ps.sps.as_ref() == Some(&a.sps) && ps.pps.as_ref() == Some(&a.pps) && ps.vps == a.vps
}

/// Turns retina frames into [`Frame`]s: 90 kHz pts monotonic within the session, our key-frame
/// detection (H.265 CRA/BLA included), and parameters rebuilt when they change.
struct FrameBuilder {
    codec: Codec,
    clock_rate: u32,
    params: Option<Arc<VideoParams>>,
    /// The parameters of the previous session of this camera; reused if unchanged so consumers
    /// see the same version.
    prev: Option<Arc<VideoParams>>,
    /// Retina reported new parameters; rebuild at the next key frame.
    pending_new: bool,
    last_pts: Option<i64>,
    /// Frames dropped before the first key frame (undecodable without parameters).
    dropped_before_key: u64,
    /// The last built frame's pts was rewritten: (the camera's pts, the pts published).
    rewrite: Option<(i64, i64)>,
}

impl FrameBuilder {
    fn new(codec: Codec, clock_rate: u32, prev: Option<Arc<VideoParams>>) -> Self {
        FrameBuilder {
            codec,
            clock_rate,
            params: None,
            prev: prev.filter(|p| p.codec == codec),
            pending_new: false,
            last_pts: None,
            dropped_before_key: 0,
            rewrite: None,
        }
    }

    /// Whether the last frame built had its pts rewritten: (the camera's pts, the new pts).
    fn take_rewrite(&mut self) -> Option<(i64, i64)> {
        self.rewrite.take()
    }

    fn next_version(&self) -> u32 {
        self.params
            .as_ref()
            .or(self.prev.as_ref())
            .map_or(0, |p| p.version.wrapping_add(1))
    }

    /// Takes one access unit (Annex B, retina's timestamp relative to the session start, whether
    /// retina saw new parameters). Returns `Ok(None)` for frames dropped before the first key
    /// frame.
    fn build(
        &mut self,
        ts: i64,
        data: Vec<u8>,
        has_new_parameters: bool,
        retina_params: impl FnOnce() -> Option<retina::codec::VideoParameters>,
        received: std::time::SystemTime,
    ) -> Result<Option<Frame>, String> {
        self.pending_new |= has_new_parameters;
        let is_key = media::nal::is_key_frame(self.codec, &data);
        if is_key && (self.params.is_none() || self.pending_new) {
            let ps = ParameterSets::from_access_unit(self.codec, &data);
            let current = self.params.as_ref().or(self.prev.as_ref());
            match current {
                Some(c) if same_sets(c, &ps) => {
                    if self.params.is_none() {
                        self.params = Some(c.clone());
                    }
                }
                _ => {
                    let r = retina_params();
                    let p = build_params(self.codec, &data, r.as_ref(), self.next_version())?;
                    tracing::debug!(
                        version = p.version,
                        width = p.width,
                        height = p.height,
                        codec = %p.rfc6381,
                        "new video parameters"
                    );
                    self.params = Some(Arc::new(p));
                }
            }
            self.pending_new = false;
        }
        let Some(params) = self.params.clone() else {
            self.dropped_before_key += 1;
            if self.dropped_before_key == 1 {
                tracing::debug!("dropping frames until the first key frame");
            }
            return Ok(None);
        };
        if self.dropped_before_key > 0 {
            tracing::debug!(
                dropped = self.dropped_before_key,
                "dropped frames before the first key frame"
            );
            self.dropped_before_key = 0;
        }
        let mut pts = if self.clock_rate == media::VIDEO_CLOCK_RATE || self.clock_rate == 0 {
            ts
        } else {
            (i128::from(ts) * i128::from(media::VIDEO_CLOCK_RATE) / i128::from(self.clock_rate))
                as i64
        };
        self.rewrite = None;
        if let Some(last) = self.last_pts
            && pts <= last
        {
            // Keep the timeline strictly monotonic; a camera that goes backwards in time
            // would otherwise confuse every consumer. Counted and logged by the caller
            // (`take_rewrite`): nothing is changed silently.
            let camera_pts = pts;
            pts = last.saturating_add(1);
            self.rewrite = Some((camera_pts, pts));
        }
        self.last_pts = Some(pts);
        Ok(Some(Frame {
            pts,
            received,
            is_key,
            data: Bytes::from(data),
            params,
        }))
    }
}

/// Runs one session of `source` until it fails and returns why. `prev` is the parameters of the
/// previous session (reused with the same version if unchanged); `sink` gets every frame,
/// starting at the first key frame, and the AAC audio if the camera sends it.
pub async fn run_session(
    source: &SourceConfig,
    prev: Option<Arc<VideoParams>>,
    clocks: &dyn Clocks,
    sink: &mut dyn Sink,
) -> Error {
    let ctx = Ctx {
        source,
        url: source.redacted_url(),
    };
    match session_inner(&ctx, prev, clocks, sink).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn session_inner(
    ctx: &Ctx<'_>,
    prev: Option<Arc<VideoParams>>,
    clocks: &dyn Clocks,
    sink: &mut dyn Sink,
) -> Result<std::convert::Infallible, Error> {
    let source = ctx.source;
    if source.url.scheme() != "rtsp" {
        return Err(ctx.error(
            ErrorKind::InvalidArgument,
            format_args!("unsupported URL scheme {:?}", source.url.scheme()),
        ));
    }
    if !source.url.username().is_empty() || source.url.password().is_some() {
        return Err(ctx.error(
            ErrorKind::InvalidArgument,
            "credentials belong in username/password, not in the URL",
        ));
    }
    let creds = match (&source.username, &source.password) {
        (None, None) => None,
        (u, p) => Some(Credentials {
            username: u.clone().unwrap_or_default(),
            password: p.clone().unwrap_or_default(),
        }),
    };
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("vantage/{}", env!("CARGO_PKG_VERSION")));

    let mut session = tokio::time::timeout(
        REQUEST_TIMEOUT,
        client::Session::describe(source.url.clone(), opts),
    )
    .await
    .map_err(|_| ctx.timeout(Phase::Describe))?
    .map_err(|e| ctx.retina(e, Phase::Describe))?;

    let Some((stream_i, stream)) = session
        .streams()
        .iter()
        .enumerate()
        .find(|(_, s)| s.media() == "video")
    else {
        return Err(ctx.error(ErrorKind::DataLoss, "bad SDP: no video stream"));
    };
    let codec = match stream.encoding_name() {
        "h264" => Codec::H264,
        "h265" => Codec::H265,
        other => {
            return Err(ctx.error(
                ErrorKind::Unimplemented,
                format_args!("unsupported codec {other:?} (only H.264 and H.265 are forwarded)"),
            ));
        }
    };
    let clock_rate = stream.clock_rate_hz();
    let transport = match source.transport {
        crate::Transport::Tcp => client::Transport::Tcp(Default::default()),
        crate::Transport::Udp => client::Transport::Udp(Default::default()),
    };
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        session.setup(
            stream_i,
            SetupOptions::default()
                .transport(transport.clone())
                .frame_format(FrameFormat::SIMPLE),
        ),
    )
    .await
    .map_err(|_| ctx.timeout(Phase::Setup))?
    .map_err(|e| ctx.retina(e, Phase::Setup))?;

    // Audio: the first AAC stream, if any. A camera whose audio cannot be set up still streams
    // video; other audio codecs are not recorded (design 0006).
    let mut audio = None;
    if let Some((i, s)) = session
        .streams()
        .iter()
        .enumerate()
        .find(|(_, s)| s.media() == "audio")
    {
        let encoding = s.encoding_name().to_owned();
        if encoding == "mpeg4-generic" {
            let setup = tokio::time::timeout(
                REQUEST_TIMEOUT,
                // Raw AAC frames with the AudioSpecificConfig out of band (MP4 framing), as
                // the recorder's `mp4a` track wants them; SIMPLE would wrap them in ADTS.
                session.setup(
                    i,
                    SetupOptions::default()
                        .transport(transport.clone())
                        .frame_format(FrameFormat::MP4),
                ),
            )
            .await;
            match setup {
                Ok(Ok(())) => audio = Some(i),
                Ok(Err(e)) => tracing::warn!(
                    "audio stream not set up, recording video only: {}",
                    ctx.retina(e, Phase::Setup)
                ),
                Err(_) => tracing::warn!(
                    "audio stream not set up, recording video only: {}",
                    ctx.timeout(Phase::Setup)
                ),
            }
        } else {
            tracing::info!(encoding, "audio codec not recorded (only AAC is)");
        }
    }
    let audio_params = audio.and_then(|i| match session.streams().get(i)?.parameters()? {
        ParametersRef::Audio(a) => audio_params(a),
        _ => None,
    });
    if audio.is_some() && audio_params.is_none() {
        tracing::warn!("AAC stream without a usable config: audio not recorded");
    }
    sink.audio_params(audio_params.clone());

    // With audio, align the streams on RTP-Info's rtptime when the camera sends it for both,
    // else on each stream's first packet (cameras that omit RTP-Info must still play).
    let play_opts = PlayOptions::default().initial_timestamp(if audio.is_some() {
        InitialTimestampPolicy::Permissive
    } else {
        InitialTimestampPolicy::Default
    });
    let playing = tokio::time::timeout(REQUEST_TIMEOUT, session.play(play_opts))
        .await
        .map_err(|_| ctx.timeout(Phase::Play))?
        .map_err(|e| ctx.retina(e, Phase::Play))?;
    let mut demuxed = playing.demuxed().map_err(|e| ctx.retina(e, Phase::Play))?;
    tracing::debug!(%codec, transport = ?source.transport, "playing");

    let mut builder = FrameBuilder::new(codec, clock_rate, prev);
    let mut rewrites = RewriteLog::new();
    // The stall deadline is the video's: audio alone does not keep a session alive.
    let mut video_deadline = tokio::time::Instant::now() + STALL_TIMEOUT;
    loop {
        let item = match tokio::time::timeout_at(video_deadline, demuxed.next()).await {
            Err(_) => {
                return Err(ctx.error(
                    ErrorKind::DeadlineExceeded,
                    format_args!("no video frames for {} s", STALL_TIMEOUT.as_secs()),
                ));
            }
            Ok(None) => {
                return Err(ctx.error(ErrorKind::Unavailable, "stream closed by the camera"));
            }
            Ok(Some(Err(e))) => return Err(ctx.retina(e, Phase::Streaming)),
            Ok(Some(Ok(item))) => item,
        };
        let f = match item {
            CodecItem::VideoFrame(f) => f,
            CodecItem::AudioFrame(f) => {
                if let (Some(p), Some(i)) = (&audio_params, audio)
                    && f.stream_id() == i
                {
                    sink.audio(audio_frame(&f, p, clocks));
                }
                continue;
            }
            _ => continue,
        };
        if f.stream_id() != stream_i {
            continue;
        }
        video_deadline = tokio::time::Instant::now() + STALL_TIMEOUT;
        // Retina's view of the parameters, looked up only when they are rebuilt.
        let retina_params = || match demuxed.streams().get(stream_i)?.parameters()? {
            ParametersRef::Video(v) => Some(v.clone()),
            _ => None,
        };
        let (ts, new_params) = (f.timestamp().elapsed(), f.has_new_parameters());
        match builder.build(
            ts,
            f.into_data(),
            new_params,
            retina_params,
            clocks.realtime(),
        ) {
            Ok(Some(frame)) => deliver(
                &mut builder,
                &mut rewrites,
                &source.camera_id,
                frame,
                clocks,
                sink,
            ),
            Ok(None) => {}
            Err(why) => {
                return Err(ctx.error(
                    ErrorKind::DataLoss,
                    format_args!("bad parameter sets: {why}"),
                ));
            }
        }
    }
}

/// Hands a built frame to the sink, reporting a rewritten pts first.
fn deliver(
    builder: &mut FrameBuilder,
    rewrites: &mut RewriteLog,
    camera_id: &str,
    frame: Frame,
    clocks: &dyn Clocks,
    sink: &mut dyn Sink,
) {
    if let Some(r) = builder.take_rewrite() {
        rewrites.note(camera_id, r, clocks.monotonic(), sink);
    }
    sink.video(frame);
}

/// Our view of retina's AAC parameters; `None` without an AudioSpecificConfig or a clock rate.
fn audio_params(a: &retina::codec::AudioParameters) -> Option<Arc<AudioParams>> {
    let config = a.extra_data();
    if config.is_empty() || a.clock_rate() == 0 {
        return None;
    }
    Some(Arc::new(AudioParams {
        codec: AudioCodec::Aac,
        sample_rate: a.clock_rate(),
        channels: a.channels().get(),
        rfc6381: a.rfc6381_codec().unwrap_or("mp4a.40.2").to_owned(),
        config: Bytes::copy_from_slice(config),
    }))
}

/// An AAC frame on the session's 90 kHz timeline (the video's): retina's elapsed time is counted
/// from the same instant for both streams when the camera sends RTP-Info.
fn audio_frame(
    f: &retina::codec::AudioFrame,
    params: &Arc<AudioParams>,
    clocks: &dyn Clocks,
) -> AudioFrame {
    let rate = i128::from(params.sample_rate.max(1));
    let pts = i128::from(f.timestamp().elapsed()) * i128::from(media::VIDEO_CLOCK_RATE) / rate;
    AudioFrame {
        pts: i64::try_from(pts).unwrap_or(i64::MAX),
        received: clocks.realtime(),
        duration: f.frame_length().get(),
        data: Bytes::copy_from_slice(f.data()),
        params: params.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_states() {
        assert_eq!(state_for(ErrorKind::Unavailable), hub::State::Offline);
        assert_eq!(state_for(ErrorKind::DeadlineExceeded), hub::State::Offline);
        assert_eq!(state_for(ErrorKind::Unauthenticated), hub::State::Error);
        assert_eq!(state_for(ErrorKind::DataLoss), hub::State::Error);
        assert_eq!(state_for(ErrorKind::Unimplemented), hub::State::Error);
        assert_eq!(state_for(ErrorKind::NotFound), hub::State::Error);
    }

    #[test]
    fn messages_are_one_line_without_password() {
        let src = SourceConfig {
            camera_id: "cam-1".into(),
            url: url::Url::parse("rtsp://10.0.0.1/x").unwrap_or_else(|_| unreachable!()),
            username: Some("admin".into()),
            password: Some("hunter2".into()),
            transport: crate::Transport::Tcp,
        };
        let ctx = Ctx {
            source: &src,
            url: src.redacted_url(),
        };
        let e = ctx.error(
            ErrorKind::Unauthenticated,
            "bad pw hunter2\n\nconn: a\nmsg: b",
        );
        assert_eq!(
            e.to_string(),
            "camera cam-1 (rtsp://10.0.0.1/x): bad pw ***; conn: a; msg: b"
        );
    }

    /// The first key access unit and the following delta access unit of a fixture clip.
    fn fixture(name: &str, codec: Codec) -> (Vec<u8>, Vec<u8>) {
        let path = format!("{}/../../fixtures/clips/{name}", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read(path).expect("fixture");
        let aus = media::split_access_units(codec, &data);
        let k = aus.iter().position(|a| a.is_key).expect("key frame");
        (aus[k].data.to_vec(), aus[k + 1].data.to_vec())
    }

    fn none() -> Option<retina::codec::VideoParameters> {
        None
    }

    #[test]
    fn frames_start_at_key_and_params_follow_changes() {
        let now = std::time::SystemTime::now();
        let (key_a, delta_a) = fixture("h264_a.h264", Codec::H264);
        let (key_b, _) = fixture("h264_b.h264", Codec::H264);
        let mut b = FrameBuilder::new(Codec::H264, 90_000, None);
        // A delta frame before any key frame is dropped.
        assert!(
            b.build(0, delta_a.clone(), false, none, now)
                .expect("ok")
                .is_none()
        );
        let f0 = b
            .build(3600, key_a.clone(), false, none, now)
            .expect("ok")
            .expect("frame");
        assert!(f0.is_key);
        assert_eq!(f0.params.version, 0);
        assert_eq!(&f0.data[..4], &[0, 0, 0, 1]);
        let f1 = b
            .build(7200, delta_a.clone(), false, none, now)
            .expect("ok")
            .expect("frame");
        assert!(!f1.is_key);
        assert!(Arc::ptr_eq(&f0.params, &f1.params));
        // Same sets again: no new version even if retina says so.
        let f2 = b
            .build(10800, key_a.clone(), true, none, now)
            .expect("ok")
            .expect("frame");
        assert!(Arc::ptr_eq(&f0.params, &f2.params));
        // New sets announced on a delta frame take effect at the next key frame.
        let f3 = b
            .build(14400, delta_a.clone(), true, none, now)
            .expect("ok")
            .expect("frame");
        assert_eq!(f3.params.version, 0);
        let f4 = b
            .build(18000, key_b.clone(), false, none, now)
            .expect("ok")
            .expect("frame");
        assert_eq!(f4.params.version, 1);
        assert_ne!(f4.params.sps, f0.params.sps);
        // pts stays strictly monotonic even if the camera's clock steps back.
        let f5 = b
            .build(100, delta_a.clone(), false, none, now)
            .expect("ok")
            .expect("frame");
        assert_eq!(f5.pts, 18001);

        // The next session reuses the channel's parameters when unchanged...
        let mut b2 = FrameBuilder::new(Codec::H264, 90_000, Some(f4.params.clone()));
        let g = b2
            .build(0, key_b, false, none, now)
            .expect("ok")
            .expect("frame");
        assert!(Arc::ptr_eq(&g.params, &f4.params));
        // ...and continues the version sequence when they changed.
        let mut b3 = FrameBuilder::new(Codec::H264, 90_000, Some(f4.params.clone()));
        let g = b3
            .build(0, key_a, false, none, now)
            .expect("ok")
            .expect("frame");
        assert_eq!(g.params.version, 2);
    }

    /// A sink that keeps what it is handed.
    #[derive(Default)]
    struct Collect {
        frames: Vec<Frame>,
        rewrites: Vec<(i64, i64)>,
    }

    impl Sink for Collect {
        fn video(&mut self, frame: Frame) {
            self.frames.push(frame);
        }
        fn pts_rewritten(&mut self, camera_pts: i64, pts: i64) {
            self.rewrites.push((camera_pts, pts));
        }
    }

    #[test]
    fn rewritten_pts_are_counted_on_the_channel_and_logged_rate_limited() {
        let boot = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clocks = base::SimulatedClocks::new(boot);
        let (key, delta) = fixture("h264_a.h264", Codec::H264);
        let ch = hub::Channel::new("cam-jumpy", hub::ChannelConfig::default(), boot);
        let sub = ch.subscribe();
        let mut sink = crate::supervisor::ChannelSink::new(&ch, &clocks);
        let mut b = FrameBuilder::new(Codec::H264, 90_000, None);
        let mut log = RewriteLog::new();
        let mut logged = Vec::new();
        // Returns whether the frame's rewrite (if any) was logged.
        let mut feed = |ts: i64, data: &[u8], sink: &mut dyn Sink| {
            let f = b
                .build(ts, data.to_vec(), false, none, clocks.realtime())
                .expect("ok")
                .expect("frame");
            let line = b
                .take_rewrite()
                .map(|r| log.note("cam-jumpy", r, clocks.monotonic(), &mut *sink));
            sink.video(f);
            line
        };
        // A camera clock that repeats a timestamp, steps back, then recovers.
        for ts in [0, 3600, 3600, 100, 10_800] {
            logged.extend(feed(ts, if ts == 0 { &key } else { &delta }, &mut sink));
        }
        assert_eq!(ch.stats().pts_rewritten, 2);
        assert_eq!(ch.pts_rewritten(), 2);
        // The first rewrite is logged at once, the second (same second) only counted.
        assert_eq!(logged, vec![true, false]);
        // After the interval the next one is logged again.
        clocks.advance(REWRITE_LOG_INTERVAL);
        logged.extend(feed(10_800, &delta, &mut sink));
        assert_eq!(logged, vec![true, false, true]);
        assert_eq!(ch.pts_rewritten(), 3);
        // What subscribers get is strictly monotonic.
        let pts: Vec<i64> = std::iter::from_fn(|| sub.try_recv())
            .map(|f| f.pts)
            .collect();
        assert_eq!(pts, vec![0, 3600, 3601, 3602, 10_800, 10_801]);

        // Through `deliver` (the session's path), with the camera's and the new pts reported.
        let mut c = Collect::default();
        let mut b = FrameBuilder::new(Codec::H264, 90_000, None);
        let mut log = RewriteLog::new();
        for ts in [7200, 3600] {
            let data = if ts == 7200 { &key } else { &delta };
            let f = b
                .build(ts, data.clone(), false, none, boot)
                .expect("ok")
                .expect("frame");
            deliver(&mut b, &mut log, "cam-x", f, &clocks, &mut c);
        }
        assert_eq!(c.rewrites, vec![(3600, 7201)]);
        assert_eq!(c.frames.len(), 2);
    }

    #[test]
    fn h265_cra_is_a_key_frame() {
        let (key, delta) = fixture("h265_a.h265", Codec::H265);
        // Rewrite the IDR slices (type 19/20) into CRA (21), which retina does not flag.
        let mut cra = key.clone();
        let mut i = 0;
        while i + 4 < cra.len() {
            if cra[i..i + 3] == [0, 0, 1] {
                let t = (cra[i + 3] >> 1) & 0x3f;
                if t == 19 || t == 20 {
                    cra[i + 3] = (cra[i + 3] & 0x81) | (21 << 1);
                }
                i += 3;
            } else {
                i += 1;
            }
        }
        assert_ne!(cra, key);
        let now = std::time::SystemTime::now();
        let mut b = FrameBuilder::new(Codec::H265, 90_000, None);
        let f = b
            .build(0, cra, false, none, now)
            .expect("ok")
            .expect("frame");
        assert!(f.is_key);
        assert_eq!(f.params.codec, Codec::H265);
        assert!(f.params.vps.is_some());
        let f = b
            .build(3600, delta, false, none, now)
            .expect("ok")
            .expect("frame");
        assert!(!f.is_key);
    }

    #[test]
    fn key_frame_without_parameter_sets_is_an_error() {
        let now = std::time::SystemTime::now();
        let mut b = FrameBuilder::new(Codec::H264, 90_000, None);
        let idr_only = vec![0, 0, 0, 1, 0x65, 0x88, 0x84];
        assert!(b.build(0, idr_only, false, none, now).is_err());
    }

    #[test]
    fn other_clock_rates_are_rescaled() {
        let (key, _) = fixture("h264_a.h264", Codec::H264);
        let mut b = FrameBuilder::new(Codec::H264, 1000, None);
        let now = std::time::SystemTime::now();
        let f = b
            .build(40, key, false, none, now)
            .expect("ok")
            .expect("frame");
        assert_eq!(f.pts, 3600);
    }
}
