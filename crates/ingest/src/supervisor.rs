//! The per-camera supervisor: starts the upstream session on demand, reports its state to the
//! channel, reconnects with backoff while the stream is wanted and stops it when demand ends.
//!
//! ```text
//!   Idle --wanted--> Connecting --first frame--> Online
//!     ^                  |                           |
//!     |             fail |                           | fail
//!     |                  v                           v
//!     +--not wanted-- Offline / Error <--------------+
//!                     |  ^
//!                     +--+ backoff delay, retry (state kept until the first frame)
//! ```
//! A retry keeps `Offline`/`Error` until frames arrive again: a failing camera does not flicker
//! to `Connecting` between attempts, so admission and operators see the failure for the whole
//! time the camera is failing, not only during the backoff waits.
//! Demand is watched concurrently with the session and with the backoff wait, so a camera goes
//! back to `Idle` (and its connection closes) as soon as the idle grace of its channel ends.

use crate::SourceConfig;
use crate::backoff::{Backoff, BackoffPolicy};
use crate::session::{run_session, state_for};
use base::{Clocks, Error};
use futures::future::BoxFuture;
use hub::{Channel, State};
use media::{AudioFrame, AudioParams, Frame, VideoParams};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// Where a session delivers what it receives.
pub trait Sink: Send {
    /// One video frame (the first of a session is a key frame).
    fn video(&mut self, frame: Frame);
    /// The session's recordable audio stream, announced before its first frame (`None`: the
    /// session has no audio Vantage records).
    fn audio_params(&mut self, _params: Option<Arc<AudioParams>>) {}
    /// One audio frame.
    fn audio(&mut self, _frame: AudioFrame) {}
    /// The next video frame's pts had to be rewritten (`camera_pts` as the camera sent it, not
    /// after the previous frame's; `pts` as delivered) to keep the timeline monotonic.
    fn pts_rewritten(&mut self, _camera_pts: i64, _pts: i64) {}
}

/// A way to obtain frames for a camera. [`RtspConnector`] is the real one; tests and other
/// sources (e.g. a VMS image server) provide their own.
pub trait Connector: Send + Sync + 'static {
    /// Runs one session until it fails and returns why; hands every frame to `sink`.
    /// `prev` is the parameters of the channel's previous session, if any.
    fn run<'a>(
        &'a self,
        source: &'a SourceConfig,
        prev: Option<Arc<VideoParams>>,
        clocks: &'a dyn Clocks,
        sink: &'a mut dyn Sink,
    ) -> BoxFuture<'a, Error>;
}

/// Sessions over RTSP with retina: see [`crate::run_session`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RtspConnector;

impl Connector for RtspConnector {
    fn run<'a>(
        &'a self,
        source: &'a SourceConfig,
        prev: Option<Arc<VideoParams>>,
        clocks: &'a dyn Clocks,
        sink: &'a mut dyn Sink,
    ) -> BoxFuture<'a, Error> {
        Box::pin(run_session(source, prev, clocks, sink))
    }
}

/// Controls a running supervisor. Dropping it aborts the supervisor (and its session).
pub struct SupervisorHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SupervisorHandle {
    /// Stops the supervisor: closes the session, reports `Idle` and waits for the task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Aborts the task without waiting (the status is left as it was).
    pub fn abort(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Starts the supervisor of one camera's RTSP upstream on the current tokio runtime.
pub fn spawn_supervisor(
    channel: Arc<Channel>,
    source: SourceConfig,
    policy: BackoffPolicy,
    clocks: Arc<dyn Clocks>,
) -> SupervisorHandle {
    spawn_supervisor_with(Arc::new(RtspConnector), channel, source, policy, clocks)
}

/// Like [`spawn_supervisor`] with another way of obtaining frames.
pub fn spawn_supervisor_with(
    connector: Arc<dyn Connector>,
    channel: Arc<Channel>,
    source: SourceConfig,
    policy: BackoffPolicy,
    clocks: Arc<dyn Clocks>,
) -> SupervisorHandle {
    let (stop, stop_rx) = watch::channel(false);
    let span = tracing::info_span!(
        "ingest",
        camera = %source.camera_id,
        url = %source.redacted_url()
    );
    let sup = Supervisor {
        connector,
        channel,
        source,
        backoff: Backoff::new(policy),
        clocks,
        stop: stop_rx,
    };
    let task = tokio::spawn(sup.run().instrument(span));
    SupervisorHandle {
        stop,
        task: Some(task),
    }
}

struct Supervisor {
    connector: Arc<dyn Connector>,
    channel: Arc<Channel>,
    source: SourceConfig,
    backoff: Backoff,
    clocks: Arc<dyn Clocks>,
    stop: watch::Receiver<bool>,
}

/// Why the supervisor left the active state.
enum Exit {
    Unwanted,
    Stop,
}

impl Supervisor {
    async fn run(mut self) {
        loop {
            if !self.wait_for_demand().await {
                break;
            }
            tracing::info!("upstream wanted: starting");
            match self.active().await {
                Exit::Unwanted => {
                    tracing::info!("no more demand: upstream stopped");
                    self.backoff.reset();
                    self.set(State::Idle, None);
                }
                Exit::Stop => break,
            }
        }
        self.set(State::Idle, None);
        tracing::debug!("supervisor stopped");
    }

    fn set(&self, state: State, error: Option<String>) {
        self.channel
            .set_status(state, error, self.clocks.realtime());
    }

    /// Waits until the upstream is wanted; false when told to stop.
    async fn wait_for_demand(&mut self) -> bool {
        tokio::select! {
            _ = self.channel.until_wanted() => true,
            _ = stopped(&mut self.stop) => false,
        }
    }

    /// Sessions and backoff waits while the upstream is wanted.
    async fn active(&mut self) -> Exit {
        loop {
            if !matches!(self.channel.status().state, State::Offline | State::Error) {
                self.set(State::Connecting, None);
            }
            let mut sink = ChannelSink::new(&self.channel, &*self.clocks);
            let outcome = {
                let channel = &self.channel;
                let clocks = &*self.clocks;
                let prev = channel.params();
                let session = self.connector.run(&self.source, prev, clocks, &mut sink);
                tokio::select! {
                    e = session => Ok(e),
                    _ = channel.until_unwanted() => Err(Exit::Unwanted),
                    _ = stopped(&mut self.stop) => Err(Exit::Stop),
                }
            };
            let online_at = sink.online_at;
            // Whatever happened, the session is gone now (its future was dropped).
            self.channel.upstream_ended();
            if let Some(t) = online_at {
                self.backoff.on_online(t);
            }
            let err = match outcome {
                Ok(e) => e,
                Err(exit) => return exit,
            };
            let now = self.clocks.monotonic();
            self.backoff.on_session_end(now);
            let state = state_for(err.kind());
            let delay = self.backoff.next_delay(rand::random::<f64>());
            tracing::warn!(
                state = state.as_str(),
                kind = %err.kind(),
                retry_in_ms = delay.as_millis() as u64,
                "upstream failed: {err}"
            );
            self.set(state, Some(err.message().to_owned()));
            // The backoff wait is on the supervisor's clocks (simulated in tests).
            tokio::select! {
                _ = self.clocks.sleep(delay) => {}
                _ = self.channel.until_unwanted() => return Exit::Unwanted,
                _ = stopped(&mut self.stop) => return Exit::Stop,
            }
        }
    }
}

/// Publishes a session's frames to the camera's channel; the first frame makes it `Online`.
pub(crate) struct ChannelSink<'a> {
    channel: &'a Channel,
    clocks: &'a dyn Clocks,
    online_at: Option<Instant>,
}

impl<'a> ChannelSink<'a> {
    pub(crate) fn new(channel: &'a Channel, clocks: &'a dyn Clocks) -> Self {
        ChannelSink {
            channel,
            clocks,
            online_at: None,
        }
    }
}

impl Sink for ChannelSink<'_> {
    fn video(&mut self, f: Frame) {
        if self.online_at.is_none() {
            self.online_at = Some(self.clocks.monotonic());
            self.channel
                .set_status(State::Online, None, self.clocks.realtime());
            tracing::info!(
                codec = %f.params.codec,
                width = f.params.width,
                height = f.params.height,
                "online"
            );
        }
        self.channel.publish(f);
    }

    fn audio_params(&mut self, params: Option<Arc<AudioParams>>) {
        self.channel.set_audio_params(params);
    }

    fn audio(&mut self, f: AudioFrame) {
        self.channel.publish_audio(f);
    }

    fn pts_rewritten(&mut self, _camera_pts: i64, _pts: i64) {
        self.channel.note_pts_rewritten(1);
    }
}

/// Resolves when the handle asks the supervisor to stop (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::ErrorKind;
    use bytes::Bytes;
    use hub::ChannelConfig;
    use media::Codec;
    use parking_lot::Mutex;
    use std::time::{Duration, SystemTime};

    /// Monotonic time and waits on tokio's clock, so `tokio::time::pause` drives the hub's
    /// deadlines, the backoff and the supervisor together.
    use base::TokioClocks;

    fn params() -> Arc<VideoParams> {
        Arc::new(VideoParams {
            codec: Codec::H264,
            version: 0,
            width: 16,
            height: 16,
            frame_rate: None,
            rfc6381: "avc1.42c01e".into(),
            h264_profile_level_id: Some([0x42, 0xc0, 0x1e]),
            vps: None,
            sps: Bytes::from_static(&[0x67, 0x42]),
            pps: Bytes::from_static(&[0x68, 0xce]),
        })
    }

    /// Fails every attempt at once; or, with `frames`, delivers one frame and then hangs.
    struct Fake {
        attempts: Mutex<Vec<tokio::time::Instant>>,
        deliver: bool,
        live: Arc<()>,
        /// When set, the channel's state at the start of each attempt is recorded.
        observe: Option<(Arc<Channel>, Mutex<Vec<State>>)>,
    }

    impl Connector for Fake {
        fn run<'a>(
            &'a self,
            _source: &'a SourceConfig,
            _prev: Option<Arc<VideoParams>>,
            _clocks: &'a dyn Clocks,
            sink: &'a mut dyn Sink,
        ) -> BoxFuture<'a, Error> {
            self.attempts.lock().push(tokio::time::Instant::now());
            if let Some((ch, seen)) = &self.observe {
                seen.lock().push(ch.status().state);
            }
            let live = self.live.clone();
            Box::pin(async move {
                let _live = live;
                if !self.deliver {
                    return Error::new(ErrorKind::Unavailable, "connection refused");
                }
                sink.video(Frame {
                    pts: 0,
                    received: SystemTime::now(),
                    is_key: true,
                    data: Bytes::from_static(&[0, 0, 0, 1, 0x65, 1]),
                    params: params(),
                });
                std::future::pending::<Error>().await
            })
        }
    }

    fn source() -> SourceConfig {
        SourceConfig {
            camera_id: "cam-sim".into(),
            url: url::Url::parse("rtsp://192.0.2.1/x").expect("static url"),
            username: None,
            password: None,
            transport: crate::Transport::Tcp,
        }
    }

    async fn wait_state(ch: &Channel, s: State) {
        for _ in 0..100_000 {
            if ch.status().state == s {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("never reached {s:?}; status {:?}", ch.status());
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_schedule_in_simulated_time() {
        let ch = Channel::new("cam-sim", ChannelConfig::default(), SystemTime::now());
        let fake = Arc::new(Fake {
            attempts: Mutex::new(Vec::new()),
            deliver: false,
            live: Arc::new(()),
            observe: Some((ch.clone(), Mutex::new(Vec::new()))),
        });
        let policy = BackoffPolicy {
            jitter: 0.0,
            ..BackoffPolicy::default()
        };
        let h = spawn_supervisor_with(
            fake.clone(),
            ch.clone(),
            source(),
            policy,
            Arc::new(TokioClocks),
        );
        // Not wanted: no attempt however long we wait.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(fake.attempts.lock().is_empty());
        assert_eq!(ch.status().state, State::Idle);

        let pin = ch.pin();
        tokio::time::sleep(Duration::from_secs(200)).await;
        let a = fake.attempts.lock().clone();
        let gaps: Vec<u64> = a.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(&gaps[..7], &[1, 2, 4, 8, 16, 30, 30], "{gaps:?}");
        let st = ch.status();
        assert_eq!(st.state, State::Offline);
        assert!(
            st.last_error
                .is_some_and(|e| e.contains("connection refused"))
        );
        assert!(st.failed_attempts >= 8);
        // Only the first attempt is `Connecting`; retries keep `Offline`, so admission never sees
        // a failing camera as merely connecting.
        let seen = fake.observe.as_ref().map(|(_, s)| s.lock().clone());
        let seen = seen.unwrap_or_default();
        assert_eq!(seen.first(), Some(&State::Connecting), "{seen:?}");
        assert!(seen[1..].iter().all(|s| *s == State::Offline), "{seen:?}");

        // Demand ends during the backoff wait: idle at once (idle grace 10 s), no more attempts.
        drop(pin);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(ch.status().state, State::Idle);
        let n = fake.attempts.lock().len();
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(fake.attempts.lock().len(), n);
        h.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn online_then_idle_after_grace() {
        let cfg = ChannelConfig {
            idle_grace: Duration::from_millis(300),
            ..ChannelConfig::default()
        };
        let ch = Channel::new("cam-sim", cfg, SystemTime::now());
        let fake = Arc::new(Fake {
            attempts: Mutex::new(Vec::new()),
            deliver: true,
            live: Arc::new(()),
            observe: None,
        });
        let h = spawn_supervisor_with(
            fake.clone(),
            ch.clone(),
            source(),
            BackoffPolicy::default(),
            Arc::new(TokioClocks),
        );
        let sub = ch.subscribe();
        wait_state(&ch, State::Online).await;
        assert!(sub.recv().await.is_key);
        assert_eq!(Arc::strong_count(&fake.live), 2, "session running");
        let t0 = tokio::time::Instant::now();
        drop(sub);
        wait_state(&ch, State::Idle).await;
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(400),
            "{took:?}"
        );
        assert_eq!(Arc::strong_count(&fake.live), 1, "session dropped");
        assert_eq!(fake.attempts.lock().len(), 1);
        h.shutdown().await;
        assert_eq!(ch.status().state, State::Idle);
    }
}
