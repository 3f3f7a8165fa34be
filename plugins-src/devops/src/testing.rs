//! What the unit tests share: a state directory of their own and the application table the
//! tools see, so tests run the real history store against the SDK's job stand-in.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::apps::Apps;
use crate::history::Store;

/// A fresh state directory, removed when dropped.
pub(crate) struct StateDir(PathBuf);

impl StateDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("devops-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> String {
        self.0.to_str().expect("utf-8 temp dir").to_owned()
    }

    /// The store of `web` in `staging`.
    pub(crate) fn store(&self) -> Store {
        Store::new(&self.path(), "web", "staging")
    }

    pub(crate) fn history_file(&self) -> PathBuf {
        self.0.join("web.staging.json")
    }

    /// `web` (staging, production) deployed by the granted `deploy-web`, with the history here.
    pub(crate) fn apps(&self) -> Apps {
        Apps::parse(
            r#"{"web": {"environments": ["staging", "production"], "deploy_command": "deploy-web"}}"#,
            self.path(),
        )
        .expect("valid")
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
