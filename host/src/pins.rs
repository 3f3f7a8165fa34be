//! Tool definition pins: what the operator has approved each tool to look like.
//!
//! A model chooses and uses tools by their definitions, so a plugin update that quietly
//! rewrites a description or widens a schema can steer an agent ("rug pull"). The first time a
//! tool is seen, the hash of its definition (name, title, description, input and output schemas,
//! annotations) is recorded in the pin file; when a later version of the plugin changes it, the
//! registry holds the tool back until an operator runs `sanctum plugins approve`.
//!
//! The pin file is JSON (`{"tools": {"echo__echo": "<sha256>"}}`), written atomically. Two
//! processes write it (the server pinning new tools, `sanctum plugins approve`), so a save takes
//! an exclusive lock on a lock file beside it, re-reads it and writes only this process's
//! approvals over what is on disk: neither loses the other's. A leaf module: plain data and one
//! file; it serves nothing and loads nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ToolInfo;

/// Why the pin file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("pin file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("pin file {path} is not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
}

/// A tool's definition measured against its pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinStatus {
    /// Identical to what was approved.
    Approved,
    /// Never seen before: recorded (and served) on first sight.
    New,
    /// Different from what was approved: held back until approved again.
    Changed,
}

impl std::fmt::Display for PinStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Approved => "approved",
            Self::New => "new",
            Self::Changed => "changed",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PinFile {
    /// Served tool name → SHA-256 of its canonical definition.
    tools: BTreeMap<String, String>,
}

/// The approved definitions, and where they are kept (`None`: pinning is off).
#[derive(Debug, Clone, Default)]
pub struct Pins {
    path: Option<PathBuf>,
    file: PinFile,
    /// Approvals not yet written, merged over the file on disk when saved. Saving only when
    /// there are some keeps a server that watches its own pin file from reacting to its own
    /// writes.
    unsaved: BTreeMap<String, String>,
}

impl Pins {
    /// Pinning off: every tool is served as it is.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The pins at `path`; a missing file is an empty set (everything is new).
    pub fn load(path: &Path) -> Result<Self, PinError> {
        let file = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| PinError::Parse { path: path.to_owned(), source })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PinFile::default(),
            Err(source) => return Err(PinError::Io { path: path.to_owned(), source }),
        };
        Ok(Self { path: Some(path.to_owned()), file, unsaved: BTreeMap::new() })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn is_enabled(&self) -> bool {
        self.path.is_some()
    }

    /// How `hash` (of tool `name`) compares with its pin. Always approved when pinning is off.
    pub fn status(&self, name: &str, hash: &str) -> PinStatus {
        match self.file.tools.get(name) {
            _ if self.path.is_none() => PinStatus::Approved,
            None => PinStatus::New,
            Some(pinned) if pinned == hash => PinStatus::Approved,
            Some(_) => PinStatus::Changed,
        }
    }

    /// Approve `hash` as tool `name`'s definition. Returns whether anything changed.
    pub fn approve(&mut self, name: &str, hash: &str) -> bool {
        let changed =
            self.path.is_some() && self.file.tools.insert(name.to_owned(), hash.to_owned()).as_deref() != Some(hash);
        if changed {
            self.unsaved.insert(name.to_owned(), hash.to_owned());
        }
        changed
    }

    /// Write the pins if anything was approved since they were read or last written.
    pub fn save_if_changed(&mut self) -> Result<(), PinError> {
        if !self.unsaved.is_empty() {
            self.save()?;
        }
        Ok(())
    }

    /// Write this process's approvals into the pin file: under an exclusive lock, re-read the
    /// file, put the approvals over it (the file's entries for every other tool stay, since
    /// another process may have approved them), and write it atomically (a temporary file
    /// renamed over the old one, so a running server watching the file never reads half of it).
    /// Afterwards these pins are the file's.
    pub fn save(&mut self) -> Result<(), PinError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let io = |source| PinError::Io { path: path.clone(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // A separate lock file: the pin file itself is replaced by rename, so a lock on it
        // would be on an inode the next writer no longer opens. Released when dropped.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_file_name(format!(".{file_name}.lock")))
            .map_err(io)?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| io(e.into()))?;
        // A file that cannot be parsed is overwritten with what this process knows, as before
        // there was merging; one that cannot be read at all stops the save.
        let mut merged = match Self::load(&path) {
            Ok(on_disk) => on_disk.file,
            Err(PinError::Parse { .. }) => self.file.clone(),
            Err(e) => return Err(e),
        };
        merged.tools.extend(self.unsaved.iter().map(|(name, hash)| (name.clone(), hash.clone())));
        let mut json =
            serde_json::to_vec_pretty(&merged).map_err(|source| PinError::Parse { path: path.clone(), source })?;
        json.push(b'\n');
        let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result.map_err(io)?;
        self.file = merged;
        self.unsaved.clear();
        drop(lock);
        Ok(())
    }
}

/// The SHA-256 (hex) of the definition of tool `served_name` as clients would see it. Schemas
/// are parsed and written with sorted keys, so formatting alone never counts as a change.
pub fn definition_hash(served_name: &str, tool: &ToolInfo) -> String {
    let schema = |text: &str| serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    let a = tool.annotations;
    let definition = serde_json::json!({
        "name": served_name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": schema(&tool.input_schema),
        "outputSchema": tool.output_schema.as_deref().map(schema),
        "annotations": [a.read_only, a.destructive, a.idempotent, a.open_world],
    });
    crate::digest::json_sha256(&definition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Annotations;

    fn tool(description: &str, schema: &str) -> ToolInfo {
        ToolInfo {
            name: "t".into(),
            title: None,
            description: description.into(),
            input_schema: schema.into(),
            output_schema: None,
            annotations: Annotations::default(),
        }
    }

    #[test]
    fn formatting_is_not_a_change_but_wording_is() {
        let a = definition_hash("p__t", &tool("d", r#"{"type":"object","properties":{}}"#));
        let b = definition_hash("p__t", &tool("d", "{ \"properties\": {}, \"type\": \"object\" }"));
        let c = definition_hash("p__t", &tool("d!", r#"{"type":"object","properties":{}}"#));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn new_then_approved_then_changed_and_saved() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pins.json");
        let mut pins = Pins::load(&path).expect("missing file is empty");
        assert_eq!(pins.status("p__t", "h1"), PinStatus::New);
        assert!(pins.approve("p__t", "h1"));
        assert!(!pins.approve("p__t", "h1"), "no change the second time");
        pins.save().expect("saves");
        let pins = Pins::load(&path).expect("reads back");
        assert_eq!(pins.status("p__t", "h1"), PinStatus::Approved);
        assert_eq!(pins.status("p__t", "h2"), PinStatus::Changed);
        assert_eq!(Pins::disabled().status("p__t", "h2"), PinStatus::Approved);
    }

    #[test]
    fn two_writers_keep_each_others_approvals() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pins.json");
        // Both read the same (empty) file, as the server and `plugins approve` would.
        let mut server = Pins::load(&path).expect("empty");
        let mut cli = Pins::load(&path).expect("empty");
        assert!(server.approve("a__t", "ha"));
        assert!(cli.approve("b__t", "hb"));
        assert!(cli.approve("a__t", "ha2"), "the operator re-approves a__t too");
        cli.save_if_changed().expect("cli saves");
        server.save_if_changed().expect("server saves");
        let on_disk = Pins::load(&path).expect("reads back");
        assert_eq!(on_disk.status("b__t", "hb"), PinStatus::Approved, "the other writer's approval stays");
        assert_eq!(on_disk.status("a__t", "ha"), PinStatus::Approved, "the last writer wins for what it changed");
        assert_eq!(server.status("b__t", "hb"), PinStatus::Approved, "the saver now knows the merged file");
    }
}
