//! The recording policy: a camera records when its effective mode is `continuous` — the setting
//! stored through the API (in the media index), else the configuration's. Retention applies to a
//! camera's recordings whether or not it records now.

use crate::Services;
use recorder::index::RecordingSetting;
use recorder::service::RecordSpec;
use settings::RecordingMode;
use std::collections::HashMap;

/// A camera's effective recording setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effective {
    pub continuous: bool,
    pub retention_days: u32,
    /// Set through the API (else from the configuration).
    pub from_api: bool,
}

/// The effective setting of `cam` given its stored one.
pub fn effective(cam: &settings::Camera, stored: Option<&RecordingSetting>) -> Effective {
    match stored {
        Some(s) => Effective {
            continuous: s.continuous,
            retention_days: s.retention_days.unwrap_or(cam.retention_days),
            from_api: true,
        },
        None => Effective {
            continuous: cam.recording == RecordingMode::Continuous,
            retention_days: cam.retention_days,
            from_api: false,
        },
    }
}

/// The recording settings stored through the API, by camera (empty, logged, if the index
/// cannot be read).
pub fn stored_settings(st: &Services) -> HashMap<String, RecordingSetting> {
    match st.recorder.settings() {
        Ok(v) => v.into_iter().map(|s| (s.camera_id.clone(), s)).collect(),
        Err(e) => {
            tracing::error!("reading recording settings: {e}");
            HashMap::new()
        }
    }
}

/// Records exactly the enabled catalog cameras whose effective mode is `continuous`. The
/// reconciler calls this after every catalog change (once the channels exist); the API after a
/// change of mode.
pub fn apply(st: &Services) {
    let stored = stored_settings(st);
    let all = st.catalog.all();
    let effective: Vec<(&settings::Camera, Effective)> = all
        .iter()
        .map(|c| (&c.camera, effective(&c.camera, stored.get(&c.camera.id))))
        .collect();
    st.recorder.set_retention(
        effective
            .iter()
            .map(|(c, e)| (c.id.clone(), e.retention_days))
            .collect(),
    );
    let wanted: Vec<RecordSpec> = effective
        .iter()
        .filter(|(c, e)| c.enabled && e.continuous)
        .map(|(c, e)| RecordSpec {
            camera_id: c.id.as_str().into(),
            retention_days: e.retention_days,
        })
        .collect();
    st.recorder.apply(&st.hub, &wanted);
}

/// Stores a camera's recording setting (made through the API) and applies it at once.
pub fn set(st: &Services, setting: &RecordingSetting) -> Result<(), base::Error> {
    st.recorder
        .set_recording_setting(setting, base::clock::unix_ms(st.clocks.realtime()))?;
    apply(st);
    tracing::info!(camera = %setting.camera_id, continuous = setting.continuous, retention_days = ?setting.retention_days, "recording mode set through the API");
    Ok(())
}
