//! Follows the WHEP sessions the media loop ended on its own (peer gone, ICE/DTLS failure,
//! DTLS close): detaches them from their reservations and ends per-session reservations.

use crate::Services;
use std::sync::Arc;

pub fn spawn_session_janitor(st: Arc<Services>) -> tokio::task::JoinHandle<()> {
    let mut events = st.whep.subscribe_events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(webrtc::SessionEvent::Ended { id, reason }) => {
                    tracing::info!(session = %id, %reason, "whep session ended");
                    st.session_ended(&id);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "session events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

/// How often audit retention runs: a hundredth of the retention, between a minute and an hour.
pub fn audit_retention_interval(retention: std::time::Duration) -> std::time::Duration {
    (retention / 100).clamp(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(3600),
    )
}

/// Audit retention (`audit.retention`, design 0009 "Audit hash chain"): every
/// [`audit_retention_interval`] on `clocks`, the rows older than the retention are deleted, oldest
/// first, and the chain anchored at the last one deleted, so what remains still verifies.
pub fn spawn_audit_retention(
    audit: store::AuditLog,
    clocks: Arc<dyn base::Clocks>,
    retention: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            clocks.sleep(audit_retention_interval(retention)).await;
            let Some(before) = clocks.realtime().checked_sub(retention) else {
                continue;
            };
            match audit.delete_before(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "audit rows deleted by audit.retention"),
                Err(e) => tracing::warn!("audit retention: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::SimulatedClocks;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    use store::{AuditAction, AuditEvent, AuditFilter, AuditLog};

    #[tokio::test]
    async fn audit_rows_older_than_the_retention_go_and_the_chain_still_verifies() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clocks = Arc::new(SimulatedClocks::new(t0));
        let dir = std::env::temp_dir().join(format!(
            "vantage-audit-retention-{}-{}",
            std::process::id(),
            t0.elapsed().map(|d| d.as_nanos()).unwrap_or(0)
        ));
        let db = dir.join("vantage.db");
        let log = AuditLog::open(&db).unwrap();
        let ev =
            |at: SystemTime, user: &str| AuditEvent::new(at, AuditAction::Release, user, "cam-1");
        // Three rows 3 days old, two 1 day old; retention 2 days.
        for u in ["old-1", "old-2", "old-3"] {
            log.record(ev(t0 - Duration::from_secs(3 * 86_400), u));
        }
        for u in ["new-1", "new-2"] {
            log.record(ev(t0 - Duration::from_secs(86_400), u));
        }
        log.flush().await;
        let retention = Duration::from_secs(2 * 86_400);
        let task = spawn_audit_retention(log.clone(), clocks.clone(), retention);
        let users = || async {
            let mut v: Vec<String> = log
                .query(AuditFilter::default())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.event.user_id)
                .collect();
            v.sort();
            v
        };
        // Nothing happens before the first interval passes on the simulated clock.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(users().await.len(), 5);
        let step = audit_retention_interval(retention);
        let started = Instant::now();
        while users().await.len() == 5 {
            clocks.advance(step);
            assert!(started.elapsed() < Duration::from_secs(10), "never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(users().await, ["new-1", "new-2"]);
        let report = log.verify_chain().await.unwrap();
        assert!(report.broken.is_none(), "{report:?}");
        task.abort();
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
