//! The DevOps plugin: deploy, roll back, inspect and list the applications an operator
//! configured, using only what the operator granted.
//!
//! Nothing here knows how an application is deployed. The operator names, per application, a
//! granted deploy command (run as `<command> <environment> <version>`, no shell), the
//! environments it may go to, and optionally a health URL (a granted HTTP origin). The plugin
//! validates every argument against that configuration, runs the command, and keeps the
//! deployment history as JSON files in a granted state directory (`/state` unless configured).
//!
//! Calls run one at a time on the host's single worker, so two deploys of one application can
//! never overlap; history is written by atomic rename, so a failed, timed-out or killed deploy
//! never leaves a half-written file.
//!
//! # Layout
//! - `apps`: the operator's configuration, and validation of app, environment and version.
//! - `history`: the deployment records and their store.
//! - `clock`: RFC 3339 timestamps from the WASI wall clock.
//! - `health`: the live health check.
//! - `run`: running the deploy command and recording its outcome (shared by deploy and rollback).
//! - `tools`: the five tools.

mod apps;
mod clock;
mod health;
mod history;
mod run;
mod tools;

use sanctum_guest::Requirement;

sanctum_guest::plugin! {
    name: "devops",
    version: env!("CARGO_PKG_VERSION"),
    description: "Deploy, roll back and check the applications the operator configured, with a recorded history.",
    requirements: [
        Requirement::Config("apps"),
        Requirement::Directory("/state"),
    ],
    tools: [tools::Deploy, tools::Rollback, tools::Status, tools::History, tools::ListApps],
}
