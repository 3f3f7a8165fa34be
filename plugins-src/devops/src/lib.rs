//! The DevOps plugin: deploy, roll back, follow, cancel, inspect and list the applications an
//! operator configured, using only what the operator granted.
//!
//! Nothing here knows how an application is deployed. The operator names, per application, a
//! granted deploy command (run as `<command> <environment> <version>`, no shell), the
//! environments it may go to, and optionally a health URL (a granted HTTP origin). The plugin
//! validates every argument against that configuration, starts the command as a job the host
//! supervises, and keeps the deployment history as JSON files in a granted state directory
//! (`/state` unless configured).
//!
//! A deploy outlives the call that starts it: `deploy` returns with the job id, and every later
//! call that reads the history first records the outcome of jobs that have ended. Two deploys
//! of one application never overlap: the plugin refuses while the history has one running, and
//! the host runs no more jobs of a command than its grant's `max_jobs` (1 unless raised).
//! History is written by atomic rename, so a killed call never leaves a half-written file.
//!
//! # Layout
//! - `apps`: the operator's configuration, and validation of app, environment and version.
//! - `history`: the deployment records and their store.
//! - `reconcile`: recording the outcome of deploy jobs that have ended.
//! - `run`: starting the deploy job and recording it (shared by deploy and rollback).
//! - `output`: what of a job's output is kept and shown.
//! - `clock`: RFC 3339 timestamps and readable durations.
//! - `health`: the live health check.
//! - `tools`: the six tools.

mod apps;
mod clock;
mod health;
mod history;
mod output;
mod reconcile;
mod run;
#[cfg(all(test, not(target_family = "wasm")))]
mod testing;
mod tools;

use sanctum_guest::Requirement;

sanctum_guest::plugin! {
    name: "devops",
    version: env!("CARGO_PKG_VERSION"),
    description: "Deploy, roll back, follow and cancel deploys of the applications the operator configured, with a recorded history.",
    requirements: [
        Requirement::Config("apps"),
        Requirement::Directory("/state"),
    ],
    tools: [tools::Deploy, tools::Rollback, tools::Cancel, tools::Status, tools::History, tools::ListApps],
}
