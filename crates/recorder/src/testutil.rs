//! Helpers shared by the crate's tests.

use media::{Codec, VideoParams};
use std::path::PathBuf;
use std::sync::Arc;

/// A fresh directory under the system temp dir, removed on drop. Unique per test thread.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "recorder-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixture clip's access units `(annexb, is_key)` and parameters (25 fps, 2 s GOPs).
pub fn clip(name: &str, codec: Codec) -> (Vec<(bytes::Bytes, bool)>, Arc<VideoParams>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/clips")
        .join(name);
    let c = rtsp_server::ClipSource::from_file(path, codec).expect("fixture clip");
    let frames = c.aus().map(|(d, k)| (d.clone(), k)).collect();
    (frames, Arc::new(c.params().clone()))
}
