//! Channels: the live state of one camera stream in the process. One upstream per camera, shared by
//! every subscriber (viewers, later the recorder, RTSP re-serve and the transcoder).
//!
//! The pure logic lives in [`core::ChannelCore`]; [`Channel`] wraps it in a mutex and adds the
//! notifications the async world needs. The ingest supervisor of a camera watches
//! [`Channel::demand_changed`] and [`Channel::wanted`] to start and stop its upstream, publishes
//! frames with [`Channel::publish`] and reports its state with [`Channel::set_status`].

pub mod core;

pub use crate::core::{ChannelConfig, ChannelStats, SubscriberStats};

use crate::core::ChannelCore;
use base::{ChannelId, Clocks};
use media::{AudioFrame, AudioParams, Frame, VideoParams};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;

/// The state of a camera's upstream as shown to operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Nobody needs the stream; no connection is open.
    Idle,
    /// Connecting after being idle (a retry after a failure keeps `Offline`/`Error`).
    Connecting,
    /// Frames are arriving.
    Online,
    /// The camera cannot be reached or closed the stream; retrying.
    Offline,
    /// The camera answered with something unusable (bad credentials, garbage, unsupported codec);
    /// retrying.
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting => "connecting",
            State::Online => "online",
            State::Offline => "offline",
            State::Error => "error",
        }
    }
}

/// A camera's upstream status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// When `state` was entered.
    pub since: SystemTime,
    /// The last failure, without credentials; kept after recovery for diagnosis.
    pub last_error: Option<String>,
    /// Connection attempts since the last time the stream was online.
    pub failed_attempts: u32,
}

/// One camera's channel.
pub struct Channel {
    id: ChannelId,
    core: Mutex<ChannelCore>,
    status: Mutex<Status>,
    params: Mutex<Option<Arc<VideoParams>>>,
    /// The audio of the current session, when the upstream has audio Vantage can record.
    audio_params: Mutex<Option<Arc<AudioParams>>>,
    demand: Notify,
    /// Where demand times (a subscriber leaving, the idle grace) are read and waited on.
    clocks: Arc<dyn Clocks>,
}

impl Channel {
    /// A channel on tokio's clock ([`base::TokioClocks`]); its status starts `Idle` at `now`.
    pub fn new(id: impl Into<ChannelId>, cfg: ChannelConfig, now: SystemTime) -> Arc<Self> {
        Self::build(id.into(), cfg, now, Arc::new(base::TokioClocks))
    }

    /// A channel whose demand (idle grace) runs on `clocks`: pass the supervisor's, so that a
    /// test on [`base::SimulatedClocks`] decides when the grace ends.
    pub fn with_clocks(
        id: impl Into<ChannelId>,
        cfg: ChannelConfig,
        clocks: Arc<dyn Clocks>,
    ) -> Arc<Self> {
        let now = clocks.realtime();
        Self::build(id.into(), cfg, now, clocks)
    }

    fn build(
        id: ChannelId,
        cfg: ChannelConfig,
        now: SystemTime,
        clocks: Arc<dyn Clocks>,
    ) -> Arc<Self> {
        Arc::new(Channel {
            id,
            core: Mutex::new(ChannelCore::new(cfg)),
            status: Mutex::new(Status {
                state: State::Idle,
                since: now,
                last_error: None,
                failed_attempts: 0,
            }),
            params: Mutex::new(None),
            audio_params: Mutex::new(None),
            demand: Notify::new(),
            clocks,
        })
    }

    /// The clocks demand is measured on.
    pub fn clocks(&self) -> &Arc<dyn Clocks> {
        &self.clocks
    }

    pub fn id(&self) -> &ChannelId {
        &self.id
    }

    /// Subscribes with a waker of its own.
    pub fn subscribe(self: &Arc<Self>) -> Subscriber {
        self.subscribe_with(Arc::new(Notify::new()))
    }

    /// Subscribes with a shared waker: one task serving many subscribers (a WebRTC media loop) can
    /// wait on one `Notify` and then drain all of them with [`Subscriber::try_recv`].
    pub fn subscribe_with(self: &Arc<Self>, wake: Arc<Notify>) -> Subscriber {
        self.subscribe_inner(wake, false)
    }

    /// Subscribes to video and audio: [`Subscriber::try_recv_audio`] returns the audio frames
    /// (the recorder). Viewers use [`Channel::subscribe_with`] and never queue audio.
    pub fn subscribe_av(self: &Arc<Self>, wake: Arc<Notify>) -> Subscriber {
        self.subscribe_inner(wake, true)
    }

    fn subscribe_inner(self: &Arc<Self>, wake: Arc<Notify>, audio: bool) -> Subscriber {
        let id = {
            let mut core = self.core.lock();
            if audio {
                core.subscribe_av(wake.clone())
            } else {
                core.subscribe(wake.clone())
            }
        };
        self.demand.notify_waiters();
        Subscriber {
            channel: self.clone(),
            id,
            wake,
        }
    }

    /// Keeps the upstream running while the returned guard lives.
    pub fn pin(self: &Arc<Self>) -> Pin {
        self.core.lock().pin();
        self.demand.notify_waiters();
        Pin {
            channel: self.clone(),
        }
    }

    /// Whether the upstream should run at `now` (monotonic).
    pub fn wanted(&self, now: Instant) -> bool {
        self.core.lock().wanted(now)
    }

    /// When the upstream stops being wanted if nothing changes.
    pub fn idle_deadline(&self) -> Option<Instant> {
        self.core.lock().idle_deadline()
    }

    /// Resolves once the upstream is no longer wanted: on a demand change that leaves it
    /// unwanted, or when the idle grace runs out on the channel's clocks (a wait through
    /// [`Clocks::sleep_until`], so simulated clocks decide when).
    pub async fn until_unwanted(&self) {
        loop {
            let notified = self.demand_changed();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.clocks.monotonic();
            if !self.wanted(now) {
                return;
            }
            match self.idle_deadline() {
                Some(deadline) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = self.clocks.sleep_until(deadline) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Resolves once the upstream is wanted.
    pub async fn until_wanted(&self) {
        loop {
            let notified = self.demand_changed();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.wanted(self.clocks.monotonic()) {
                return;
            }
            notified.await;
        }
    }

    /// Resolves when subscribers or pins come or go. Create the future before checking
    /// [`Channel::wanted`] to avoid missing a change (see `tokio::sync::Notify::notified`).
    pub fn demand_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.demand.notified()
    }

    /// Hands a frame from the upstream to the GOP cache and every subscriber.
    pub fn publish(&self, frame: Frame) {
        {
            let mut p = self.params.lock();
            if p.as_ref().is_none_or(|p| !Arc::ptr_eq(p, &frame.params)) {
                *p = Some(frame.params.clone());
            }
        }
        self.core.lock().publish(frame);
    }

    /// Hands an audio frame from the upstream to the subscribers that want audio.
    pub fn publish_audio(&self, frame: AudioFrame) {
        self.core.lock().publish_audio(frame);
    }

    /// The upstream session set up an audio stream with these parameters (or none). Set before
    /// the session's first frame is published, so a consumer that sees a frame of the session
    /// also sees its audio parameters.
    pub fn set_audio_params(&self, params: Option<Arc<AudioParams>>) {
        let mut p = self.audio_params.lock();
        // Equal parameters keep the existing `Arc`, so consumers compare pointers.
        if *p != params {
            *p = params;
        }
    }

    /// The audio parameters of the current (or last) session, if it has recordable audio.
    pub fn audio_params(&self) -> Option<Arc<AudioParams>> {
        self.audio_params.lock().clone()
    }

    /// The upstream session ended (error, camera gone, or no more demand).
    pub fn upstream_ended(&self) {
        self.core.lock().upstream_ended();
    }

    /// The parameters of the most recent frame, if any frame was ever received.
    pub fn params(&self) -> Option<Arc<VideoParams>> {
        self.params.lock().clone()
    }

    /// Sets the state, keeping `since` when the state does not change.
    pub fn set_status(&self, state: State, error: Option<String>, now: SystemTime) {
        let mut s = self.status.lock();
        if s.state != state {
            s.state = state;
            s.since = now;
        }
        match state {
            State::Online => s.failed_attempts = 0,
            State::Offline | State::Error => s.failed_attempts += 1,
            _ => {}
        }
        if error.is_some() {
            s.last_error = error;
        }
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    pub fn stats(&self) -> ChannelStats {
        self.core.lock().stats()
    }

    /// The upstream had to rewrite the pts of `n` frames (non-monotonic camera clock); counted in
    /// [`ChannelStats::pts_rewritten`].
    pub fn note_pts_rewritten(&self, n: u64) {
        self.core.lock().note_pts_rewritten(n);
    }

    /// Frames whose pts the upstream rewrote since the channel was created:
    /// `stats().pts_rewritten`.
    pub fn pts_rewritten(&self) -> u64 {
        self.core.lock().stats().pts_rewritten
    }

    pub fn subscriber_count(&self) -> usize {
        self.core.lock().subscriber_count()
    }
}

/// A consumer's handle on a channel. Dropping it unsubscribes.
pub struct Subscriber {
    channel: Arc<Channel>,
    id: u64,
    wake: Arc<Notify>,
}

impl Subscriber {
    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// The next queued frame, if any.
    pub fn try_recv(&self) -> Option<Frame> {
        self.channel.core.lock().pop(self.id)
    }

    /// The next queued audio frame, if this subscriber asked for audio.
    pub fn try_recv_audio(&self) -> Option<AudioFrame> {
        self.channel.core.lock().pop_audio(self.id)
    }

    /// Waits for the next frame. With a shared waker, use `try_recv` from the task that owns it.
    pub async fn recv(&self) -> Frame {
        loop {
            if let Some(f) = self.try_recv() {
                return f;
            }
            self.wake.notified().await;
        }
    }

    /// A new subscription to the same channel with the same waker, whose queue starts with the
    /// cached GOP. A consumer that could not use frames for a while (a WebRTC session until ICE
    /// and DTLS complete) swaps its subscriber for this one so that it starts at the latest key
    /// frame at once instead of waiting for the next one. Demand is unaffected: the new
    /// subscription exists before the old one is dropped.
    pub fn resubscribe(&self) -> Subscriber {
        self.channel.subscribe_with(self.wake.clone())
    }

    /// The receiver lost decoder state (PLI/FIR): see [`core::ChannelCore::request_key_frame`].
    pub fn request_key_frame(&self) {
        self.channel.core.lock().request_key_frame(self.id);
    }

    pub fn stats(&self) -> SubscriberStats {
        self.channel
            .core
            .lock()
            .subscriber_stats(self.id)
            .unwrap_or_default()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let now = self.channel.clocks.monotonic();
        self.channel.core.lock().unsubscribe(self.id, now);
        self.channel.demand.notify_waiters();
    }
}

/// Keeps a channel's upstream wanted while alive.
pub struct Pin {
    channel: Arc<Channel>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let now = self.channel.clocks.monotonic();
        self.channel.core.lock().unpin(now);
        self.channel.demand.notify_waiters();
    }
}

/// All channels of the process, by camera id.
#[derive(Default)]
pub struct Hub {
    channels: RwLock<BTreeMap<ChannelId, Arc<Channel>>>,
}

impl Hub {
    pub fn new() -> Self {
        Hub::default()
    }

    /// Adds a channel; replaces none (returns the existing one if the id is taken).
    pub fn add(&self, channel: Arc<Channel>) -> Arc<Channel> {
        self.channels
            .write()
            .entry(channel.id().clone())
            .or_insert(channel)
            .clone()
    }

    /// Removes a channel from the index; holders of it keep it until they drop it.
    pub fn remove(&self, id: &str) -> Option<Arc<Channel>> {
        self.channels.write().remove(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Channel>> {
        self.channels.read().get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Channel>> {
        self.channels.read().values().cloned().collect()
    }
}
