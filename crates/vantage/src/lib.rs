//! Wiring of a Vantage node: the node layer's services (crate `node`: catalog, channels and
//! ingest supervisors, admission, the WHEP media loop, recording), the background work (the
//! reconciler, the lease keeper, the WHEP session janitor, the XProtect sync), and the HTTP API. [`Node::start`] is what `vantage serve` and `vantage demo` run, and
//! what the integration tests start in-process.

pub mod demo;
pub mod export_cli;
pub mod users_cli;

use admission::{Limits, MemoryAdmission};
use api::AppState;
use base::{Clocks, Error, RealClocks, ResultExt};
use hub::{ChannelConfig, Hub};
use node::upstreams::Upstreams;
use settings::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use vms::catalog::Catalog;

/// A running node.
pub struct Node {
    pub http_addr: SocketAddr,
    pub webrtc_addr: SocketAddr,
    pub state: Arc<AppState>,
    /// The node layer's services (what `state` translates HTTP into calls on).
    pub services: Arc<node::Services>,
    upstreams: Arc<tokio::sync::Mutex<Upstreams>>,
    reconciler: tokio::task::JoinHandle<()>,
    sync_task: Option<tokio::task::JoinHandle<()>>,
    stop_http: Option<oneshot::Sender<()>>,
    http: tokio::task::JoinHandle<()>,
    janitor: tokio::task::JoinHandle<()>,
    keeper: tokio::task::JoinHandle<()>,
    export_retention: tokio::task::JoinHandle<()>,
    audit_retention: tokio::task::JoinHandle<()>,
    jwks_refresh: Vec<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Starts everything the configuration describes.
    pub async fn start(cfg: Config) -> Result<Node, Error> {
        Node::start_with_clocks(cfg, Arc::new(RealClocks)).await
    }

    /// Like [`Node::start`] with other clocks: tests run leases on [`base::SimulatedClocks`].
    pub async fn start_with_clocks(cfg: Config, clocks: Arc<dyn Clocks>) -> Result<Node, Error> {
        let cfg = Arc::new(cfg);
        let hub = Arc::new(Hub::new());
        let chan_cfg = ChannelConfig {
            idle_grace: cfg.live.idle_grace,
            ..ChannelConfig::default()
        };
        let catalog = Arc::new(Catalog::new(&cfg.cameras));
        let upstreams = Arc::new(tokio::sync::Mutex::new(Upstreams::default()));
        upstreams
            .lock()
            .await
            .apply(&hub, &catalog, &chan_cfg, &clocks)
            .await;
        let whep = webrtc::WhepServer::start_with_clocks(
            webrtc::WhepConfig {
                bind: SocketAddr::new(cfg.webrtc.bind, cfg.webrtc.udp_port),
                advertise: cfg.webrtc.advertise.clone(),
                ..webrtc::WhepConfig::default()
            },
            clocks.clone(),
        )
        .await?;
        let webrtc_addr = whep.local_addr();
        let admission = Arc::new(MemoryAdmission::new(Limits {
            max_streams: cfg.limits.max_streams,
            max_streams_per_user: cfg.limits.max_streams_per_user,
            lease: cfg.limits.lease,
            agencies: cfg
                .agencies
                .iter()
                .map(|a| (a.id.clone(), a.max_streams))
                .collect(),
        }));
        let db = cfg.storage.data_dir.join("vantage.db");
        let audit = store::AuditLog::open(&db).map_err(|e| e.context("management store"))?;
        {
            let (db, audit) = (db.clone(), audit.clone());
            tokio::task::spawn_blocking(move || {
                users_cli::first_admin(
                    &db,
                    &audit,
                    std::env::var("VANTAGE_ADMIN_USER").ok().as_deref(),
                    std::env::var("VANTAGE_ADMIN_PASSWORD").ok().as_deref(),
                    &auth::Passwords::new(),
                )
            })
            .await
            .err_kind(base::ErrorKind::Internal, "creating the first admin")??;
        }
        let vms = match &cfg.milestone {
            Some(m) => {
                let snapshots = Arc::new(store::Snapshots::open(&db)?);
                let sync =
                    vms::sync::VmsSync::new(m.clone(), catalog.clone(), snapshots, clocks.clone());
                sync.load_snapshot();
                Some(sync)
            }
            None => None,
        };
        let recorder = {
            let (cfg, clocks) = (recorder_config(&cfg), clocks.clone());
            tokio::task::spawn_blocking(move || recorder::service::Recorder::start(cfg, clocks))
                .await
                .err_kind(base::ErrorKind::Internal, "starting the recorder")??
        };
        let exports = {
            let (db, cfg, clocks, audit) = (db.clone(), cfg.clone(), clocks.clone(), audit.clone());
            tokio::task::spawn_blocking(move || {
                let key = evidence::SigningKey::load_or_create(
                    &cfg.storage.data_dir.join(node::exports::KEY_FILE),
                )
                .map_err(|e| e.context("export signing key"))?;
                node::exports::Exports::open(
                    store::ExportStore::open(&db)?,
                    node::exports::ExportsSettings::from_config(&cfg.exports),
                    key,
                    clocks,
                    Some(audit),
                )
            })
            .await
            .err_kind(base::ErrorKind::Internal, "starting exports")??
        };
        let access = {
            let (db, cfg, clocks, audit) = (db.clone(), cfg.clone(), clocks.clone(), audit.clone());
            tokio::task::spawn_blocking(move || {
                node::access::Access::open(
                    &db,
                    &cfg.storage.data_dir,
                    &cfg.auth,
                    auth::Passwords::new(),
                    clocks,
                    audit,
                )
            })
            .await
            .err_kind(base::ErrorKind::Internal, "starting access control")??
        };
        let access = Arc::new(access);
        let jwks_refresh = access.spawn_jwks_refresh();
        let services = Arc::new(node::Services::new(node::Parts {
            cfg: cfg.clone(),
            catalog: catalog.clone(),
            hub,
            whep,
            admission,
            audit,
            clocks,
            vms: vms.clone(),
            recorder,
            exports: exports.clone(),
            access: access.clone(),
        }));
        let source: std::sync::Weak<node::Services> = Arc::downgrade(&services);
        exports.attach(source);
        let export_retention = exports.spawn_retention();
        let audit_retention = node::janitor::spawn_audit_retention(
            services.audit.clone(),
            services.clocks.clone(),
            cfg.audit.retention,
        );
        let state = Arc::new(AppState::new(Arc::new(services.clone())));
        let listener = tokio::net::TcpListener::bind(cfg.server.listen)
            .await
            .err_kind(
                base::ErrorKind::Unavailable,
                format_args!("cannot listen on {}", cfg.server.listen),
            )?;
        let http_addr = listener
            .local_addr()
            .err_kind(base::ErrorKind::Internal, "listener address")?;
        let (stop_http, stop_rx) = oneshot::channel();
        let app = api::router(state.clone());
        // Without TCP_NODELAY a response whose headers and first body bytes go out in separate
        // writes waits for the client's delayed ACK (~40 ms on Linux): the playback benchmark
        // measured 44 ms to the first byte of every MP4 before this.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
        });
        let http = tokio::spawn(async move {
            // Handlers see the peer's address (`ConnectInfo`): the audit log and login lockout.
            let r = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
            if let Err(e) = r {
                tracing::error!("http server: {e}");
            }
        });
        let janitor = node::janitor::spawn_session_janitor(services.clone());
        let keeper = node::lease::spawn_lease_keeper(services.clone());
        // Follow the catalog: VMS syncs add, change and remove cameras at run time.
        let reconciler =
            node::upstreams::spawn_reconciler(services.clone(), upstreams.clone(), chan_cfg);
        let sync_task = vms.as_ref().map(|v| v.spawn());
        tracing::info!(%http_addr, %webrtc_addr, cameras = cfg.cameras.len(), "node started");
        Ok(Node {
            http_addr,
            webrtc_addr,
            state,
            services,
            upstreams,
            reconciler,
            sync_task,
            stop_http: Some(stop_http),
            http,
            janitor,
            keeper,
            export_retention,
            audit_retention,
            jwks_refresh,
        })
    }

    /// Stops HTTP, ends every reservation (audited), then stops every supervisor (closing
    /// upstreams).
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop_http.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.http).await;
        self.keeper.abort();
        self.export_retention.abort();
        self.audit_retention.abort();
        for t in &self.jwks_refresh {
            t.abort();
        }
        self.services.shutdown().await;
        self.janitor.abort();
        self.reconciler.abort();
        if let Some(t) = &self.sync_task {
            t.abort();
        }
        // Close, sync and complete every open segment before the upstreams go.
        let rec = self.services.recorder.clone();
        let _ = tokio::task::spawn_blocking(move || rec.shutdown()).await;
        self.upstreams.lock().await.stop_all().await;
    }
}

/// The recorder's configuration from the node's.
fn recorder_config(cfg: &Config) -> recorder::service::RecorderConfig {
    use recorder::service::{Budget, RecorderConfig};
    let budget = |m: settings::MaxUsage| match m {
        settings::MaxUsage::Bytes(b) => Budget::Bytes(b),
        settings::MaxUsage::Percent(p) => Budget::Percent(p),
    };
    let s = &cfg.storage;
    let mut r = RecorderConfig::new(&s.recordings_dir);
    r.segmenter.rotation.period =
        (s.segment_duration.as_millis() as i64).saturating_mul(recorder::TICKS_PER_MS);
    r.writer_threads = s.writer_threads as usize;
    r.sync_interval = s.sync_interval;
    r.max_usage = budget(s.max_usage);
    r.min_free = budget(s.min_free);
    r.retention_interval = s.retention_interval;
    r.max_pin = cfg.playback.max_pin;
    r
}
