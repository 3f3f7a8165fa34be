//! Paths the host owns — its plugins, policy, pins, compile cache, audit log, jobs and token
//! files — which no directory grant may reach, read-only or writable. A plugin that could write
//! the plugins directory or the compile cache could plant code the host runs outside the
//! sandbox; one that could read the cache's key or the tokens could forge artefacts or callers.
//!
//! This module only compares paths; start-up (`app/startup.rs`) decides what is reserved.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The host's own paths, each with what it is (for the operator's error message).
#[derive(Debug, Clone, Default)]
pub struct ReservedPaths(Vec<(&'static str, PathBuf)>);

impl ReservedPaths {
    /// Reserve `path` (a file or directory, existing or not yet), described as `what`.
    #[must_use]
    pub fn with(mut self, what: &'static str, path: &Path) -> Self {
        self.0.push((what, resolve(path)));
        self
    }

    /// Why granting the directory `dir` would reach a reserved path, if it would: `dir` is,
    /// contains, or lies inside one.
    pub fn conflict(&self, dir: &Path) -> Option<String> {
        let dir = resolve(dir);
        self.0.iter().find_map(|(what, path)| {
            if path.starts_with(&dir) {
                Some(format!("it holds the host's {what} ({})", path.display()))
            } else if dir.starts_with(path) {
                Some(format!("it is inside the host's {what} ({})", path.display()))
            } else {
                None
            }
        })
    }
}

/// `path` made absolute with its symbolic links resolved as far as it exists (a cache or jobs
/// directory may not exist yet), so that a link to a reserved path, or a reserved path reached
/// through a link, is still recognised.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut head = absolute;
    let mut missing: Vec<OsString> = Vec::new();
    while !head.exists() {
        let Some(name) = head.file_name().map(ToOwned::to_owned) else { break };
        missing.push(name);
        head.pop();
    }
    let mut resolved = head.canonicalize().unwrap_or(head);
    for name in missing.into_iter().rev() {
        resolved.push(name);
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_that_is_holds_or_lies_inside_a_reserved_path_conflicts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("srv/plugins")).expect("plugins");
        std::fs::create_dir_all(root.join("srv/data")).expect("data");
        std::fs::write(root.join("srv/policy.toml"), "").expect("policy");
        let reserved = ReservedPaths::default()
            .with("plugins directory", &root.join("srv/plugins"))
            .with("policy file", &root.join("srv/policy.toml"))
            .with("compile cache", &root.join("cache/not/yet"));

        let conflict = |path: &Path| reserved.conflict(path);
        assert!(conflict(&root.join("srv/plugins")).is_some_and(|why| why.contains("plugins directory")));
        assert!(conflict(&root.join("srv")).is_some_and(|why| why.contains("holds the host's plugins directory")));
        assert!(conflict(root).is_some(), "a parent of everything");
        assert!(conflict(Path::new("/")).is_some(), "the root directory");
        assert!(conflict(&root.join("cache")).is_some_and(|why| why.contains("compile cache")), "not created yet");
        std::fs::create_dir_all(root.join("srv/plugins/sub")).expect("sub");
        assert!(conflict(&root.join("srv/plugins/sub")).is_some_and(|why| why.contains("inside")));
        // A link to a reserved directory is that directory.
        std::os::unix::fs::symlink(root.join("srv"), root.join("link")).expect("symlink");
        assert!(conflict(&root.join("link")).is_some());

        // Siblings and their insides do not conflict, nor does a name that only shares a prefix.
        assert_eq!(conflict(&root.join("srv/data")), None);
        std::fs::create_dir_all(root.join("srv/plugins-old")).expect("prefix");
        assert_eq!(conflict(&root.join("srv/plugins-old")), None);
        assert_eq!(ReservedPaths::default().conflict(Path::new("/")), None, "nothing reserved");
    }
}
