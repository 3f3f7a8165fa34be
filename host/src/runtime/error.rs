//! Why a plugin would not load: the runtime's load-boundary error, worded for operators.
//! (Why a call ended without a result is [`crate::model::CallFailure`].)

use crate::model::{CallFailure, WORLD_VERSION};
use std::path::PathBuf;

/// A plugin file that could not be turned into a servable plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid WebAssembly component: {detail}")]
    Compile { path: PathBuf, detail: String },
    #[error(
        "{path}: not a sanctum plugin (it must target the world sanctum:plugin/plugin@{}): {detail}",
        WORLD_VERSION
    )]
    WrongWorld { path: PathBuf, detail: String },
    /// A sanctum plugin built against another, incompatible version of the world.
    #[error("{path}: built against sanctum:plugin@{found}; {}", version_advice(found))]
    WorldVersion { path: PathBuf, found: String },
    #[error("{path}: describe() failed: {reason}")]
    Describe { path: PathBuf, reason: CallFailure },
    /// A plugin is named by its file, so the file name must be a plugin name.
    #[error("{path}: the file name is not a plugin name ({reason}); a plugin is named by its file, e.g. devops.wasm")]
    FileName { path: PathBuf, reason: crate::ids::NameError },
    /// The component calls itself something other than its file name. Identity comes from the
    /// operator's file name, never from the component, so it is refused rather than renamed.
    #[error(
        "{path}: the component declares the plugin name {declared:?} (the plugin of {declared}.wasm), but this \
         file holds plugin {id:?}: a plugin is named by its file, so it is refused"
    )]
    NameMismatch { path: PathBuf, id: String, declared: String },
    /// The policy pins this plugin to other bytes.
    #[error(
        "{path}: SHA-256 {found} differs from the digest the policy pins plugin {id:?} to ({pinned}, \
         plugins.{id}.sha256); refused"
    )]
    DigestMismatch {
        path: PathBuf,
        id: String,
        found: crate::digest::ComponentDigest,
        pinned: crate::digest::ComponentDigest,
    },
    #[error("{path}: describe() returned {size} bytes of text; the limit is {limit}")]
    DescribeTooLarge { path: PathBuf, size: usize, limit: usize },
}

/// What to do about a plugin built against world version `found`.
fn version_advice(found: &str) -> String {
    let current = WORLD_VERSION;
    let number = |v: &str| v.split('.').map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    if number(found) < number(current) {
        format!("this host serves sanctum:plugin@{current}; rebuild the plugin with the current guest SDK")
    } else {
        format!("this host serves only sanctum:plugin@{current}; upgrade sanctum to load it")
    }
}
