//! The admin socket's file: a private directory (0700, owned by the server's user; created if
//! missing, refused otherwise), the socket itself (0600), the refusal of a path that exists and
//! is not a stale socket, removal on exit, and the peer check (the connecting process must run
//! as the server's user or root, read with `SO_PEERCRED`). Owns nothing about HTTP.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::AdminError;

/// The bound socket, removed from the file system when dropped (if it is still ours: a
/// successor's socket at the same path is left alone).
#[derive(Debug)]
pub(super) struct BoundSocket {
    path: PathBuf,
    /// Device and inode of the socket this server created.
    identity: (u64, u64),
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the admin socket");
        }
    }
}

/// Bind the socket at `path`, making its directory private first.
pub(super) fn bind(path: &Path) -> Result<(UnixListener, BoundSocket), AdminError> {
    let refuse = |reason: String| AdminError::Socket { path: path.to_owned(), reason };
    let io = |what: &'static str| move |source| AdminError::Io { path: path.to_owned(), what, source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    private_dir(dir).map_err(refuse)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(io("cannot inspect the path")(source)),
        Ok(meta) if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            return Err(refuse("exists and is not a socket; remove it or choose another path".into()));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(AdminError::InUse { path: path.to_owned() }),
            // Nobody listens: a socket left behind by a server that did not exit cleanly.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(io("cannot remove the stale socket"))?;
                tracing::info!(path = %path.display(), "removed a stale admin socket");
            }
            Err(source) => return Err(io("exists and cannot be checked")(source)),
        },
    }
    let listener = UnixListener::bind(path).map_err(|source| match source.kind() {
        // Another server bound it between the check and here.
        io::ErrorKind::AddrInUse => AdminError::InUse { path: path.to_owned() },
        _ => io("cannot bind")(source),
    })?;
    // The directory is private already; 0600 keeps the socket so if the directory is loosened.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io("cannot set mode 0600"))?;
    let meta = std::fs::symlink_metadata(path).map_err(io("cannot inspect the bound socket"))?;
    Ok((listener, BoundSocket { path: path.to_owned(), identity: (meta.dev(), meta.ino()) }))
}

/// `dir` exists (or is created, mode 0700), is a real directory owned by this user, and no
/// one else may enter it.
fn private_dir(dir: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
            std::fs::symlink_metadata(dir).map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?
        }
        Err(e) => return Err(format!("cannot inspect the directory {}: {e}", dir.display())),
    };
    if meta.file_type().is_symlink() {
        return Err(format!("its directory {} is a symbolic link; name the real directory", dir.display()));
    }
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(format!(
            "its directory {} belongs to uid {}, not to this server's uid {uid}",
            dir.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "its directory {} is open to other users (mode {mode:03o}); make it 0700 or choose another path",
            dir.display()
        ));
    }
    Ok(())
}

/// Who is on the other end: `Ok(identity)` for this server's user or root, `Err(reason)` for
/// anyone else (or when the kernel cannot say).
pub(super) fn peer(stream: &UnixStream) -> Result<String, String> {
    let cred = stream.peer_cred().map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
    let uid = cred.uid();
    let server = rustix::process::geteuid().as_raw();
    if uid == server || uid == 0 {
        Ok(format!("unix:uid={uid}"))
    } else {
        Err(format!("uid {uid} may not use this server's admin socket (only uid {server} and root)"))
    }
}
