//! `cancel`: stop the deploy or rollback running in one environment.

use sanctum_guest::jobs::{self, Job};
use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::change::Report;
use crate::apps::Apps;
use crate::clock::duration;
use crate::history::{Outcome, Record, Store};
use crate::reconcile;

pub(crate) struct Cancel;

/// Stop the deploy or rollback running for an application in one environment, and everything
/// its command started. What the command changed before it stopped stays changed: check
/// `status` afterwards. The attempt is recorded as `cancelled`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelArgs {
    /// The application, as listed by `list_apps`.
    app: String,
    /// The environment whose running deploy to stop.
    environment: String,
}

impl Tool for Cancel {
    const NAME: &'static str = "cancel";
    const TITLE: Option<&'static str> = Some("Cancel a running deploy");
    const ANNOTATIONS: Annotations =
        Annotations::NONE.read_only(false).destructive(true).idempotent(false).open_world(true);
    type Args = CancelArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<Report>())
    }

    fn call(args: CancelArgs) -> Result<Output, ToolError> {
        let apps = Apps::load()?;
        apps.target(&args.app, &args.environment)?;
        let store = Store::new(&apps.state_dir, &args.app, &args.environment);
        let (record, job) = cancel(&store, &args.app, &args.environment)?;
        let headline = record.headline(&args.app, &args.environment);
        let text = if record.outcome == Outcome::Cancelled {
            format!(
                "{headline} cancelled after {} (job {}); what the command changed before it stopped depends on \
                 it: check devops__status",
                duration(job.elapsed_ms),
                job.id
            )
        } else {
            // It ended on its own between the last look and the cancel.
            format!("{headline} had already ended before it could be cancelled: {}", record.describe())
        };
        Output::new().text(text).structured(&Report {
            app: args.app,
            environment: args.environment,
            deployment: record,
        })
    }
}

/// Cancel the running deploy's job and return its record, reconciled, and the job as the host
/// left it.
fn cancel(store: &Store, app: &str, environment: &str) -> Result<(Record, Job), ToolError> {
    let history = reconcile::load(store)?;
    let Some(running) = history.running() else {
        let last = history
            .last()
            .map_or_else(String::new, |r| format!("; the last one, #{} ({}), {}", r.id, r.version, r.describe()));
        return Err(ToolError::new(format!("no deploy or rollback of {app} to {environment} is running{last}")));
    };
    let (id, job_id) = (running.id, running.job_id.clone().unwrap_or_default());
    // Reconciling already asked the host about this job, so an error here is the host's trouble.
    let job = jobs::cancel(&job_id)
        .map_err(|e| ToolError::new(format!("could not cancel job {job_id} of deployment #{id}: {e}")))?;
    let history = reconcile::load(store)?;
    let record = history.get(id).cloned().ok_or_else(|| ToolError::new("internal error: the record vanished"))?;
    Ok((record, job))
}

// The jobs stand-in exists only off wasm, where tests run.
#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::run::{self, Target};
    use crate::testing::StateDir;
    use sanctum_guest::jobs::{State, StopReason, stand_in};

    fn start_deploy(dir: &StateDir, version: &str) -> Record {
        let apps = dir.apps();
        let target =
            Target { app_name: "web", app: apps.target("web", "staging").expect("target"), environment: "staging" };
        let history = reconcile::load(&dir.store()).expect("history");
        run::start(&target, version, crate::history::Action::Deploy, history, &dir.store()).expect("started")
    }

    #[test]
    fn cancel_stops_the_running_deploy_and_records_it() {
        let dir = StateDir::new();
        stand_in::grant("deploy-web");
        let record = start_deploy(&dir, "v1");
        stand_in::write("job-1", "step 1\n");
        stand_in::advance(3_000);
        let (cancelled, job) = cancel(&dir.store(), "web", "staging").expect("cancelled");
        assert_eq!(job.state, State::Stopped(StopReason::Cancelled));
        assert_eq!((cancelled.id, cancelled.outcome), (record.id, Outcome::Cancelled));
        assert_eq!(cancelled.output_tail, "step 1\n[job job-1 stopped: cancelled]");
        assert_eq!(dir.store().load().expect("saved").last(), Some(&cancelled));
        // Nothing runs any more, so a second cancel has nothing to stop.
        let again = cancel(&dir.store(), "web", "staging").expect_err("nothing running");
        assert_eq!(
            again.message(),
            "no deploy or rollback of web to staging is running; the last one, #1 (v1), cancelled"
        );
    }

    #[test]
    fn a_deploy_that_ended_is_not_cancelled_but_recorded() {
        let dir = StateDir::new();
        stand_in::grant("deploy-web");
        start_deploy(&dir, "v1");
        stand_in::finish("job-1", State::Exited(0));
        let refused = cancel(&dir.store(), "web", "staging").expect_err("ended");
        assert!(refused.message().ends_with("#1 (v1), succeeded"), "{refused}");
        assert_eq!(jobs::status("job-1").map(|j| j.state), Ok(State::Exited(0)));
        let never = StateDir::new();
        let refused = cancel(&never.store(), "web", "staging").expect_err("no history");
        assert_eq!(refused.message(), "no deploy or rollback of web to staging is running");
    }
}
