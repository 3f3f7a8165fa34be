//! `notes`: lets an agent list, read and search a directory of Markdown and text notes that the
//! operator grants to the plugin. The plugin built in `docs/plugin-development.md`.
//!
//! `store` is the only module that touches the file system; the tools in `list`, `read` and
//! `search` turn its results into what the model sees.

mod list;
mod read;
mod search;
mod store;

sanctum_guest::plugin! {
    name: "notes",
    version: env!("CARGO_PKG_VERSION"),
    description: "Lists, reads and searches the Markdown and text notes in a directory the operator \
                  grants.",
    // Declared so that `sanctum check` and the server's start-up report a missing grant.
    requirements: [sanctum_guest::Requirement::Directory(store::NOTES_DIR)],
    tools: [list::ListNotes, read::ReadNote, search::SearchNotes],
}
