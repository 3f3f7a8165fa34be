//! The tools: `deploy` and `rollback` start a deploy job, `cancel` stops one; `status`,
//! `history` and `list_apps` look (and record the outcomes of jobs that have ended).

mod cancel;
mod change;
mod inspect;
mod status;

pub(crate) use cancel::Cancel;
pub(crate) use change::{Deploy, Rollback};
pub(crate) use inspect::{History, ListApps};
pub(crate) use status::Status;
