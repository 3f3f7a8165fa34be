//! The notes directory: which files count as notes, and reading them.
//!
//! The operator grants a host directory that the sandbox shows at [`NOTES_DIR`]. This is the
//! only module that touches the file system, and it takes the directory as a value, so the tools
//! can be unit-tested natively against a temporary directory.

use std::io;
use std::path::{Path, PathBuf};

use sanctum_guest::ToolError;

/// Where the granted directory appears inside the sandbox: the policy's `guest` path.
pub(crate) const NOTES_DIR: &str = "/notes";

/// Files with these extensions, directly in the directory, are notes.
const EXTENSIONS: [&str; 2] = ["md", "txt"];

/// The largest note read. A call's memory is capped (64 MiB by default), and a model gains
/// little from a bigger file in one piece.
pub(crate) const MAX_NOTE_BYTES: u64 = 1 << 20;

/// A directory of notes.
#[derive(Debug, Clone)]
pub(crate) struct Notes {
    root: PathBuf,
}

/// One note, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoteInfo {
    pub(crate) name: String,
    pub(crate) bytes: u64,
}

impl Notes {
    /// The directory the operator granted.
    pub(crate) fn granted() -> Self {
        Self::at(NOTES_DIR)
    }

    pub(crate) fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Every note, sorted by name. Subdirectories, hidden files and other extensions are skipped.
    pub(crate) fn list(&self) -> Result<Vec<NoteInfo>, ToolError> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| self.unavailable(&e))?;
        let mut notes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.unavailable(&e))?;
            // A name that is not UTF-8 could not be passed back to `read` as a JSON string.
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(metadata) = entry.metadata() else { continue };
            if is_note_name(&name) && metadata.is_file() {
                notes.push(NoteInfo { name, bytes: metadata.len() });
            }
        }
        notes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(notes)
    }

    /// The text of the note called `name` (a file name as [`Notes::list`] returns it).
    pub(crate) fn read(&self, name: &str) -> Result<String, ToolError> {
        if !is_note_name(name) {
            return Err(ToolError::new(format!(
                "`{name}` is not a note name: pass a file name exactly as `notes__list` shows it, such as \
                 `ideas.md` (no directories; notes end in .md or .txt)"
            )));
        }
        let path = self.root.join(name);
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Err(self.no_such_note(name)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.no_such_note(name)),
            Err(e) => return Err(self.unavailable(&e)),
        };
        if metadata.len() > MAX_NOTE_BYTES {
            return Err(ToolError::new(format!(
                "`{name}` is {} bytes, more than the {MAX_NOTE_BYTES} this plugin reads; use `notes__search` to \
                 find the lines you need in it",
                metadata.len()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| self.unavailable(&e))?;
        String::from_utf8(bytes)
            .map_err(|_| ToolError::new(format!("`{name}` is not UTF-8 text, so it cannot be read")))
    }

    /// Names the notes that do exist, so the model can correct itself in one step.
    fn no_such_note(&self, name: &str) -> ToolError {
        let known: Vec<String> =
            self.list().map(|notes| notes.into_iter().map(|n| n.name).collect()).unwrap_or_default();
        if known.is_empty() {
            ToolError::new(format!("there is no note called `{name}`; there are no notes at all"))
        } else {
            ToolError::new(format!("there is no note called `{name}`; the notes are: {}", known.join(", ")))
        }
    }

    /// The usual cause is that the operator has not granted the directory; say how to.
    fn unavailable(&self, error: &io::Error) -> ToolError {
        ToolError::new(format!(
            "the notes directory {} cannot be read ({error}). The operator must grant it in sanctum's policy: \
             [plugins.notes] directories = [{{ host = \"/path/to/notes\", guest = \"{NOTES_DIR}\" }}]",
            self.root.display()
        ))
    }
}

/// A plain file name with a note extension: no directories, not hidden.
fn is_note_name(name: &str) -> bool {
    let path = Path::new(name);
    !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && path.extension().and_then(|ext| ext.to_str()).is_some_and(|ext| EXTENSIONS.contains(&ext))
}

/// A temporary notes directory for unit tests, removed when dropped. (std only, so the plugin's
/// dependencies stay what `new-plugin` generated.)
#[cfg(test)]
pub(crate) struct TempNotes {
    pub(crate) notes: Notes,
    dir: PathBuf,
}

#[cfg(test)]
impl TempNotes {
    pub(crate) fn with(files: &[(&str, &str)]) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!("notes-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&dir).expect("create the temporary notes directory");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a note");
        }
        Self { notes: Notes::at(&dir), dir }
    }
}

#[cfg(test)]
impl Drop for TempNotes {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_notes_sorted_by_name() {
        let temp = TempNotes::with(&[("b.md", "bee"), ("a.txt", "a"), ("image.png", ""), (".hidden.md", "")]);
        std::fs::create_dir(temp.dir.join("sub.md")).expect("a directory named like a note");
        let names: Vec<_> = temp.notes.list().expect("listed").into_iter().map(|n| (n.name, n.bytes)).collect();
        assert_eq!(names, [("a.txt".to_owned(), 1), ("b.md".to_owned(), 3)]);
    }

    #[test]
    fn reads_a_note_and_names_the_notes_when_it_is_missing() {
        let temp = TempNotes::with(&[("ideas.md", "# Ideas\n"), ("todo.txt", "- call Ada\n")]);
        assert_eq!(temp.notes.read("ideas.md"), Ok("# Ideas\n".to_owned()));
        let missing = temp.notes.read("idea.md").expect_err("no such note");
        assert!(missing.message().ends_with("the notes are: ideas.md, todo.txt"), "{missing}");
    }

    #[test]
    fn refuses_paths_and_other_files() {
        let temp = TempNotes::with(&[]);
        for name in ["../secret.md", "/etc/passwd", "sub/x.md", ".hidden.md", "image.png"] {
            let error = temp.notes.read(name).expect_err(name);
            assert!(error.message().contains("is not a note name"), "{name}: {error}");
        }
    }

    #[test]
    fn a_missing_directory_says_how_to_grant_it() {
        let error = Notes::at("/no/such/notes/dir").list().expect_err("no directory");
        assert!(error.message().contains("guest = \"/notes\""), "{error}");
    }
}
