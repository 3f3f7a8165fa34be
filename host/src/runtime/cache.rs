//! The compile cache: each plugin is compiled once, and the native code sanctum produced is
//! reused across restarts and reloads.
//!
//! Artefacts are keyed by the SHA-256 of the `.wasm` and by the engine's compatibility hash
//! (wasmtime version and every setting that changes code generation), so a new build of the
//! host or a changed engine configuration never reads an old artefact.
//!
//! Loading native code is `unsafe` in wasmtime: it does no validation, so arbitrary bytes could
//! mean arbitrary code execution. Only artefacts this host wrote are ever deserialized:
//! - the cache directory is created `0700` by us and refused if it is anyone else's or is
//!   reachable by other users;
//! - every artefact carries an HMAC-SHA-256 tag, computed with a random 32-byte key kept `0600`
//!   in the cache directory, over the compatibility hash, the source's hash and the artefact
//!   itself; the file is read once into memory, the tag checked, and the *same bytes*
//!   deserialized (no window for the file to change between check and use);
//! - a file that fails the check is counted, deleted and replaced by a fresh compilation.
//!
//! Nothing here knows about plugins, only about turning `.wasm` bytes into a `Component`.

use std::fs::{DirBuilder, OpenOptions};
use std::hash::Hasher;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::digest::ComponentDigest;

type Tag = Hmac<Sha256>;

/// Bytes of the HMAC-SHA-256 tag at the start of every artefact file.
const TAG_BYTES: usize = 32;
/// Bytes of the per-cache secret key.
const KEY_BYTES: usize = 32;
/// The key file's name inside the cache directory.
const KEY_FILE: &str = "key";

/// Why the cache cannot be used. The host then compiles every time; it never falls back to
/// reading artefacts it cannot vouch for.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("compile cache {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("compile cache {path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    #[error("compile cache: no random key: {0}")]
    Random(String),
}

/// What the cache did since start-up (observable through `/healthz` and the logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheCounts {
    /// Components loaded from a verified artefact.
    pub hits: u64,
    /// Components compiled because no artefact existed.
    pub misses: u64,
    /// Artefacts refused (bad tag, truncated, or not loadable) and compiled afresh.
    pub rejected: u64,
}

/// A directory of host-produced, tagged artefacts for one engine configuration.
pub(crate) struct CompileCache {
    /// `<root>/<compatibility hash>`: artefacts of other engines live elsewhere.
    dir: PathBuf,
    key: [u8; KEY_BYTES],
    compat: String,
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CompileCache").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl CompileCache {
    /// Open (creating if needed) the cache at `root` for `engine`.
    ///
    /// `root` may be any directory (a Docker volume is 0755, a Kubernetes `emptyDir` 0777): the
    /// key and artefacts live in a private subdirectory checked below. Should someone else
    /// swap that subdirectory later, what they plant fails the tag check against the key read
    /// here.
    pub(crate) fn open(root: &Path, engine: &Engine) -> Result<Self, CacheError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|source| CacheError::Io { path: root.to_owned(), source })?;
        let root = &root.join(PRIVATE_DIR);
        private_dir(root)?;
        let key = read_or_create_key(&root.join(KEY_FILE))?;
        let compat = compatibility(engine);
        let dir = root.join(&compat);
        private_dir(&dir)?;
        Ok(Self { dir, key, compat, hits: AtomicU64::new(0), misses: AtomicU64::new(0), rejected: AtomicU64::new(0) })
    }

    pub(crate) fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Whether an artefact for `digest` is there (not yet verified: a load checks it).
    pub(crate) fn has(&self, digest: ComponentDigest) -> bool {
        self.dir.join(format!("{}.cwasm", digest.hex())).is_file()
    }

    /// The component for `wasm`: from a verified artefact if there is one, else compiled (and
    /// the artefact written for next time). `label` names the plugin file in logs.
    pub(crate) fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: ComponentDigest,
        label: &str,
    ) -> wasmtime::Result<Component> {
        let digest = digest.hex();
        let path = self.dir.join(format!("{digest}.cwasm"));
        match std::fs::read(&path) {
            Ok(file) => match self.verify(&digest, &file) {
                Some(verified) => match deserialize_verified(engine, verified) {
                    Ok(component) => {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(plugin = label, artefact = %path.display(), "compile cache hit");
                        return Ok(component);
                    }
                    Err(e) => self.reject(&path, label, &format!("{e:#}")),
                },
                None => self.reject(&path, label, "the integrity tag does not match"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                tracing::info!(plugin = label, "compile cache miss; compiling");
            }
            Err(e) => self.reject(&path, label, &e.to_string()),
        }
        let component = Component::new(engine, wasm)?;
        match component.serialize() {
            Ok(artefact) => {
                if let Err(e) = self.write(&path, &digest, &artefact) {
                    tracing::warn!(plugin = label, error = %e, "cannot write the compile cache; carrying on without");
                }
            }
            Err(e) => tracing::warn!(plugin = label, error = %format!("{e:#}"), "cannot serialize a component"),
        }
        Ok(component)
    }

    fn reject(&self, path: &Path, label: &str, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(plugin = label, artefact = %path.display(), reason, "compile cache artefact refused; recompiling");
        let _ = std::fs::remove_file(path);
    }

    fn tag(&self, digest: &str, artefact: &[u8]) -> Tag {
        let mut mac = Tag::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(self.compat.as_bytes());
        mac.update(b"\0");
        mac.update(digest.as_bytes());
        mac.update(b"\0");
        mac.update(artefact);
        mac
    }

    /// The artefact part of `file` if its tag is ours (checked in constant time).
    fn verify<'a>(&self, digest: &str, file: &'a [u8]) -> Option<Verified<'a>> {
        let (tag, artefact) = file.split_at_checked(TAG_BYTES)?;
        self.tag(digest, artefact).verify_slice(tag).ok()?;
        Some(Verified(artefact))
    }

    /// Write atomically: a private temporary file in the same directory, renamed into place,
    /// so a reader never sees half an artefact.
    fn write(&self, path: &Path, digest: &str, artefact: &[u8]) -> std::io::Result<()> {
        let tag = self.tag(digest, artefact).finalize().into_bytes();
        let temporary = self.dir.join(format!(".{digest}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
            file.write_all(&tag)?;
            file.write_all(artefact)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }
}

/// Artefact bytes whose tag was checked against this cache's key. Only
/// [`CompileCache::verify`] makes one.
#[derive(Clone, Copy)]
struct Verified<'a>(&'a [u8]);

/// The one place sanctum loads native code.
#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, verified: Verified<'_>) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be an artefact wasmtime produced for
    // a compatible engine. A `Verified` exists only for bytes whose HMAC-SHA-256 tag, keyed with
    // this cache's secret (random, 0600, in a 0700 directory owned by this user and refused
    // otherwise), matches; only `CompileCache::write` computes such tags, over artefacts
    // `Component::serialize` produced in this process for an engine with the same
    // compatibility hash (part of the tagged data and of the directory name). The bytes are
    // checked and deserialized from the same in-memory buffer, so the file cannot change in
    // between. wasmtime additionally checks the engine compatibility header.
    unsafe { Component::deserialize(engine, verified.0) }
}

/// The private part of a cache root, holding the key and one directory per engine.
const PRIVATE_DIR: &str = "private";

/// Create `dir` (mode 0700) if missing, then insist it is a real directory, ours, and closed
/// to everyone else: anyone who can write there could plant artefacts next to our key.
fn private_dir(dir: &Path) -> Result<(), CacheError> {
    let io = |source| CacheError::Io { path: dir.to_owned(), source };
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    let refuse = |reason: String| Err(CacheError::Unsafe { path: dir.to_owned(), reason });
    if !meta.is_dir() {
        return refuse("not a directory (symbolic links are refused)".into());
    }
    if meta.uid() != rustix::process::getuid().as_raw() {
        return refuse(format!("owned by uid {}, not by this user", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return refuse(format!("mode {:o} lets other users in; it must be 0700", meta.mode() & 0o777));
    }
    Ok(())
}

fn read_or_create_key(path: &Path) -> Result<[u8; KEY_BYTES], CacheError> {
    let io = |source| CacheError::Io { path: path.to_owned(), source };
    let mut key = [0u8; KEY_BYTES];
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            getrandom::fill(&mut key).map_err(|e| CacheError::Random(e.to_string()))?;
            file.write_all(&key).and_then(|()| file.sync_all()).map_err(io)?;
            return Ok(key);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.is_file() || meta.uid() != rustix::process::getuid().as_raw() || meta.mode() & 0o077 != 0 {
        return Err(CacheError::Unsafe {
            path: path.to_owned(),
            reason: "the key must be a regular file owned by this user with mode 0600".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.len() != KEY_BYTES {
        return Err(CacheError::Unsafe { path: path.to_owned(), reason: format!("the key is not {KEY_BYTES} bytes") });
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The engine's compatibility hash as a short hex name. wasmtime exposes it only as
/// `impl Hash`, so it is fed into SHA-256 (stable across runs, unlike `DefaultHasher`'s keys).
fn compatibility(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let digest = hasher.0.finalize();
    hex(&digest[..12])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::new(&wasmtime::Config::new()).expect("engine")
    }

    #[test]
    fn a_tampered_artefact_is_refused_and_rewritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("cache");
        let engine = engine();
        // The smallest valid component: an empty one.
        let wasm = b"\0asm\x0d\0\x01\0";
        let cache = CompileCache::open(&root, &engine).expect("opens");
        let digest = ComponentDigest::of(wasm);
        cache.component(&engine, wasm, digest, "empty").expect("compiles");
        assert_eq!(cache.counts(), CacheCounts { hits: 0, misses: 1, rejected: 0 });
        cache.component(&engine, wasm, digest, "empty").expect("loads");
        assert_eq!(cache.counts().hits, 1);

        let artefact = std::fs::read_dir(&cache.dir).expect("dir").next().expect("one file").expect("entry").path();
        let mut bytes = std::fs::read(&artefact).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&artefact, &bytes).expect("tamper");
        cache.component(&engine, wasm, digest, "empty").expect("recompiles");
        assert_eq!(cache.counts(), CacheCounts { hits: 1, misses: 1, rejected: 1 });
        cache.component(&engine, wasm, digest, "empty").expect("loads the rewritten artefact");
        assert_eq!(cache.counts().hits, 2);
    }

    #[test]
    fn an_open_root_is_fine_but_an_open_private_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        CompileCache::open(dir.path(), &engine()).expect("a volume's mode does not matter");
        let private = dir.path().join(PRIVATE_DIR);
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let error = CompileCache::open(dir.path(), &engine()).expect_err("refused");
        assert!(matches!(error, CacheError::Unsafe { .. }), "{error}");
    }
}
