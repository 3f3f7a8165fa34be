//! The tools: `deploy` and `rollback` change things, `status`, `history` and `list_apps` only
//! look.

mod change;
mod inspect;

pub(crate) use change::{Deploy, Rollback};
pub(crate) use inspect::{History, ListApps, Status};
