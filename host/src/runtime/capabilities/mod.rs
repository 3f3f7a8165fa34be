//! Host implementations of the capability imports. One module per capability; each checks the
//! plugin's [`PluginGrants`](crate::model::PluginGrants) first and denies what is not granted,
//! writing an audit record either way.

pub(crate) mod config;
pub(crate) mod containment;
pub(crate) mod http;
pub(crate) mod jobs;
pub(crate) mod process;
pub(crate) mod spawn;
