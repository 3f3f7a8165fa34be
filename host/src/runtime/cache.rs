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
//! - every artefact ends with an HMAC-SHA-256 tag, computed with a random 32-byte key kept
//!   `0600` in the cache directory, over the compatibility hash, the source's hash and the
//!   artefact itself; a file that fails the check is counted, deleted and replaced by a fresh
//!   compilation.
//!
//! A verified artefact is mapped from its file, not copied into the heap: the native code and
//! the memory image of a Python or JS component are tens of MB, and mapped they are clean page
//! cache the kernel can share and reclaim, of which only the pages a call touches are resident
//! (and wasmtime maps memory images straight from the file instead of copying them into a
//! memfd). The tag is checked by reading the very file (the open descriptor) that is then mapped,
//! so renaming or replacing the path in between changes nothing. What remains is writing into
//! that file in place, which needs this user's write access to a `0600` file in a `0700`
//! directory: whoever has it can read the key beside it and tag anything they like, so the
//! check-then-map order gives them nothing they did not have.
//!
//! Nothing here knows about plugins, only about turning `.wasm` bytes into a `Component`.

use std::fs::{DirBuilder, File, OpenOptions};
use std::hash::Hasher;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::digest::ComponentDigest;

type Tag = Hmac<Sha256>;

/// Bytes of the HMAC-SHA-256 tag at the end of every artefact file.
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
        match self.load(engine, &path, &digest) {
            Ok(Some(component)) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                tracing::info!(plugin = label, artefact = %path.display(), "compile cache hit");
                return Ok(component);
            }
            Ok(None) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                tracing::info!(plugin = label, "compile cache miss; compiling");
            }
            Err(reason) => self.reject(&path, label, &reason),
        }
        let compiled = Component::new(engine, wasm)?;
        let artefact = match compiled.serialize() {
            Ok(artefact) => artefact,
            Err(e) => {
                tracing::warn!(plugin = label, error = %format!("{e:#}"), "cannot serialize a component");
                return Ok(compiled);
            }
        };
        if let Err(e) = self.write(&path, &digest, &artefact) {
            tracing::warn!(plugin = label, error = %e, "cannot write the compile cache; carrying on without");
            return Ok(compiled);
        }
        drop(artefact);
        // Serve from the mapped artefact rather than the freshly compiled copy on the heap, so a
        // cold start costs the same memory as a warm one from here on.
        match self.load(engine, &path, &digest) {
            Ok(Some(mapped)) => Ok(mapped),
            Ok(None) | Err(_) => Ok(compiled),
        }
    }

    /// The verified component in `path`; `None` if there is no such file, `Err(why)` if there
    /// is one this host must not or cannot load.
    fn load(&self, engine: &Engine, path: &Path, digest: &str) -> Result<Option<Component>, String> {
        let file =
            match OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32).open(path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
        let verified = self.verify(digest, file)?;
        deserialize_verified(engine, verified).map(Some).map_err(|e| format!("{e:#}"))
    }

    fn reject(&self, path: &Path, label: &str, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(plugin = label, artefact = %path.display(), reason, "compile cache artefact refused; recompiling");
        let _ = std::fs::remove_file(path);
    }

    /// The tag's state before the artefact's bytes: keyed, over what the artefact is for.
    fn tag_prefix(&self, digest: &str) -> Tag {
        let mut mac = Tag::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(self.compat.as_bytes());
        mac.update(b"\0");
        mac.update(digest.as_bytes());
        mac.update(b"\0");
        mac
    }

    /// `file` (open, so the path no longer matters) if it is a private regular file of ours
    /// whose trailing tag is ours over everything before it (compared in constant time).
    fn verify(&self, digest: &str, mut file: File) -> Result<Verified, String> {
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() || meta.uid() != rustix::process::getuid().as_raw() || meta.mode() & 0o077 != 0 {
            return Err("not a private regular file of this user".into());
        }
        let artefact_len = meta.len().checked_sub(TAG_BYTES as u64).ok_or("shorter than its tag")?;
        let mut mac = self.tag_prefix(digest);
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = artefact_len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
            file.read_exact(&mut chunk[..want]).map_err(|e| e.to_string())?;
            mac.update(&chunk[..want]);
            left -= want as u64;
        }
        let mut tag = [0u8; TAG_BYTES];
        file.read_exact(&mut tag).map_err(|e| e.to_string())?;
        mac.verify_slice(&tag).map_err(|_| "the integrity tag does not match".to_owned())?;
        Ok(Verified { file, artefact_len })
    }

    /// Write atomically: a private temporary file in the same directory, renamed into place,
    /// so a reader never sees half an artefact.
    fn write(&self, path: &Path, digest: &str, artefact: &[u8]) -> std::io::Result<()> {
        let mut mac = self.tag_prefix(digest);
        mac.update(artefact);
        let tag = mac.finalize().into_bytes();
        let temporary = self.dir.join(format!(".{digest}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
            // The artefact first, at offset 0 where wasmtime expects it (its sections stay
            // page-aligned for mapping); the tag after it, which wasmtime never reads.
            file.write_all(artefact)?;
            file.write_all(&tag)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }
}

/// An open artefact file whose tag was checked against this cache's key. Only
/// [`CompileCache::verify`] makes one.
struct Verified {
    file: File,
    artefact_len: u64,
}

/// The one place sanctum loads native code.
#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, verified: Verified) -> wasmtime::Result<Component> {
    // Where the process can name its open descriptor, wasmtime maps that very file (the
    // magic link opens the inode we verified, whatever the path now points at).
    let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", verified.file.as_raw_fd()));
    if by_descriptor.exists() {
        // SAFETY: `Component::deserialize_file` trusts the file to be an artefact wasmtime
        // produced for a compatible engine. A `Verified` exists only for a file whose trailing
        // HMAC-SHA-256 tag, keyed with this cache's secret (random, 0600, in a 0700 directory
        // owned by this user and refused otherwise), matches the bytes before it; only
        // `CompileCache::write` computes such tags, over artefacts `Component::serialize`
        // produced in this process for an engine with the same compatibility hash (part of the
        // tagged data and of the directory name). The tag was read through this descriptor and
        // the mapping is made from it, so a rename or replacement of the path cannot intervene;
        // changing the file in place needs this user's access to the key too (module docs).
        // wasmtime additionally checks the engine compatibility header.
        return unsafe { Component::deserialize_file(engine, &by_descriptor) };
    }
    let mut file = verified.file;
    let mut artefact = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    (&mut file).take(verified.artefact_len).read_to_end(&mut artefact)?;
    // SAFETY: as above, except that these bytes are read again after the check: without
    // `/proc` there is no descriptor to map, and the same-user argument in the module docs
    // covers the re-read.
    unsafe { Component::deserialize(engine, &artefact) }
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
        let good = std::fs::read(&artefact).expect("read");
        // A flipped byte in the code, in the tag; the file cut short; a file too short to
        // hold a tag; the old layout (tag first): each is refused and replaced.
        let mut in_body = good.clone();
        in_body[good.len() / 2] ^= 0xff;
        let mut in_tag = good.clone();
        in_tag[good.len() - 1] ^= 0xff;
        let tag_first = [&good[good.len() - TAG_BYTES..], &good[..good.len() - TAG_BYTES]].concat();
        let bad: [&[u8]; 5] = [&in_body, &in_tag, &good[..good.len() - 1], &good[..TAG_BYTES - 1], &tag_first];
        for (n, bytes) in bad.into_iter().enumerate() {
            std::fs::write(&artefact, bytes).expect("tamper");
            cache.component(&engine, wasm, digest, "empty").expect("recompiles");
            let rejected = n as u64 + 1;
            assert_eq!(cache.counts(), CacheCounts { hits: 1, misses: 1, rejected }, "case {n}");
            assert_eq!(std::fs::read(&artefact).expect("rewritten"), good, "case {n}: the artefact is written afresh");
        }
        cache.component(&engine, wasm, digest, "empty").expect("loads the rewritten artefact");
        assert_eq!(cache.counts().hits, 2);
    }

    #[test]
    fn an_artefact_that_is_not_private_or_not_a_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine();
        let wasm = b"\0asm\x0d\0\x01\0";
        let cache = CompileCache::open(&dir.path().join("cache"), &engine).expect("opens");
        let digest = ComponentDigest::of(wasm);
        cache.component(&engine, wasm, digest, "empty").expect("compiles");
        let artefact = cache.dir.join(format!("{}.cwasm", digest.hex()));
        std::fs::set_permissions(&artefact, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        cache.component(&engine, wasm, digest, "empty").expect("recompiles");
        assert_eq!(cache.counts().rejected, 1, "a group- or world-readable artefact is refused");

        let elsewhere = dir.path().join("elsewhere.cwasm");
        std::fs::rename(&artefact, &elsewhere).expect("move");
        std::os::unix::fs::symlink(&elsewhere, &artefact).expect("symlink");
        cache.component(&engine, wasm, digest, "empty").expect("recompiles");
        assert_eq!(cache.counts().rejected, 2, "a symbolic link is not followed");
        assert!(std::fs::symlink_metadata(&artefact).expect("rewritten").is_file());
        cache.component(&engine, wasm, digest, "empty").expect("loads");
        assert_eq!(cache.counts().hits, 1);
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
