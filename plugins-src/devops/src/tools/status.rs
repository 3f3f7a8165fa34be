//! `status`: the version running as far as the history knows, the deploy in progress or the
//! last one's outcome, and a live health check.

use sanctum_guest::jobs;
use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::Apps;
use crate::clock::duration;
use crate::health::{self, Health};
use crate::history::{History, Outcome, Record, Store};
use crate::output::{last_lines, lines_of};
use crate::reconcile;

/// Output lines shown for a deploy in progress, or for one that did not succeed.
const SHOWN_LINES: usize = 5;

pub(crate) struct Status;

/// Report an application's state in one environment: the version running as far as the
/// deployment history knows; a deploy in progress with its elapsed time and last output lines,
/// or else the last deployment's outcome; and a live health check. Call it again to follow a
/// running deploy until it ends.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusArgs {
    /// The application, as listed by `list_apps`.
    app: String,
    /// The environment.
    environment: String,
}

#[derive(Serialize, JsonSchema)]
struct StatusReport {
    app: String,
    environment: String,
    /// The version of the last successful deployment, if any.
    current_version: Option<String>,
    /// The last deployment attempt, whatever its outcome (`running` while its job runs).
    last_deployment: Option<Record>,
    /// The deploy or rollback in progress, if one is.
    in_progress: Option<InProgress>,
    /// The live health check, if the app has a health URL.
    health: Option<Health>,
}

/// A deploy's job while it runs.
#[derive(Serialize, JsonSchema)]
struct InProgress {
    job_id: String,
    /// How long it has run, in milliseconds.
    elapsed_ms: u64,
    /// The last lines it printed (stdout and stderr as they came).
    last_output: Vec<String>,
}

impl Tool for Status {
    const NAME: &'static str = "status";
    const TITLE: Option<&'static str> = Some("Application status");
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(true);
    type Args = StatusArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<StatusReport>())
    }

    fn call(args: StatusArgs) -> Result<Output, ToolError> {
        let apps = Apps::load()?;
        let app = apps.target(&args.app, &args.environment)?;
        let history = reconcile::load(&Store::new(&apps.state_dir, &args.app, &args.environment))?;
        let in_progress = in_progress(&history)?;
        let health = app.health_url(&args.environment).map(|url| health::check(&url));
        let report = StatusReport {
            current_version: history.current().map(|r| r.version.clone()),
            last_deployment: history.last().cloned(),
            in_progress,
            health,
            app: args.app,
            environment: args.environment,
        };
        Output::new().text(text(&report)).structured(&report)
    }
}

/// The running deploy's job as it stands now.
fn in_progress(history: &History) -> Result<Option<InProgress>, ToolError> {
    let Some(job_id) = history.running().and_then(|r| r.job_id.clone()) else {
        return Ok(None);
    };
    let job = jobs::status(&job_id)?;
    Ok(Some(InProgress { last_output: last_lines(&job_id, SHOWN_LINES), elapsed_ms: job.elapsed_ms, job_id }))
}

fn text(report: &StatusReport) -> String {
    let (app, environment) = (&report.app, &report.environment);
    let mut text = format!(
        "{app} {environment}: {}",
        report.current_version.as_deref().map_or("never deployed successfully".to_owned(), |v| format!("running {v}"))
    );
    let mut output = Vec::new();
    match (&report.last_deployment, &report.in_progress) {
        (Some(last), Some(job)) => {
            text.push_str(&format!(
                "; {} in progress for {} (job {})",
                last.headline(app, environment),
                duration(job.elapsed_ms),
                job.job_id
            ));
            output = job.last_output.clone();
        }
        (Some(last), None) => {
            text.push_str(&format!(
                "; last deployment #{} ({}) {} at {}",
                last.id,
                last.version,
                last.describe(),
                last.finished_at.as_deref().unwrap_or(&last.started_at)
            ));
            if last.outcome != Outcome::Succeeded {
                output = lines_of(&last.output_tail, SHOWN_LINES);
            }
        }
        (None, _) => {}
    }
    if let Some(h) = &report.health {
        text.push_str(&format!("; health: {}", if h.healthy { "healthy" } else { "NOT healthy" }));
        match h.status {
            Some(status) => text.push_str(&format!(" (HTTP {status}) {}", h.detail)),
            None => text.push_str(&format!(" ({})", h.detail)),
        }
    }
    if !output.is_empty() {
        text.push_str(if report.in_progress.is_some() { "\nlast output:" } else { "\noutput ends:" });
        for line in output {
            text.push_str("\n  ");
            text.push_str(&line);
        }
    }
    text
}

// The jobs stand-in exists only off wasm, where tests run.
#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::history::{Action, record};
    use crate::run::{self, Target};
    use crate::testing::StateDir;
    use sanctum_guest::jobs::{State, stand_in};

    fn report(dir: &StateDir) -> StatusReport {
        let history = reconcile::load(&dir.store()).expect("history");
        StatusReport {
            app: "web".into(),
            environment: "staging".into(),
            current_version: history.current().map(|r| r.version.clone()),
            last_deployment: history.last().cloned(),
            in_progress: in_progress(&history).expect("job"),
            health: None,
        }
    }

    #[test]
    fn a_running_deploy_shows_its_time_and_last_lines_then_its_outcome() {
        let dir = StateDir::new();
        stand_in::grant("deploy-web");
        let mut history = History::default();
        history.push(record("v1.0", Outcome::Succeeded));
        dir.store().save(&history).expect("saved");
        let apps = dir.apps();
        let target =
            Target { app_name: "web", app: apps.target("web", "staging").expect("target"), environment: "staging" };
        run::start(&target, "v1.1", Action::Deploy, history, &dir.store()).expect("started");
        stand_in::write("job-1", "build\nstep 1\nstep 2\nstep 3\nstep 4\nstep 5\n");
        stand_in::advance(12_400);
        assert_eq!(
            text(&report(&dir)),
            "web staging: running v1.0; deploy #2 of web v1.1 to staging in progress for 12 s (job job-1)\n\
             last output:\n  step 1\n  step 2\n  step 3\n  step 4\n  step 5"
        );
        stand_in::finish("job-1", State::Exited(0));
        let done = report(&dir);
        assert!(done.in_progress.is_none());
        assert_eq!(
            text(&done),
            "web staging: running v1.1; last deployment #2 (v1.1) succeeded at 2023-11-14T22:13:32Z"
        );
    }

    #[test]
    fn a_deploy_that_did_not_succeed_shows_how_its_output_ends() {
        let dir = StateDir::new();
        let mut history = History::default();
        let mut failed = record("v2", Outcome::Failed);
        failed.exit_status = Some(3);
        failed.finished_at = Some("2026-01-01T00:01:00Z".into());
        failed.output_tail = "deploying\nerror: 2 of 3 pods crash-looping".into();
        history.push(failed);
        dir.store().save(&history).expect("saved");
        assert_eq!(
            text(&report(&dir)),
            "web staging: never deployed successfully; last deployment #1 (v2) failed (exit status 3) at \
             2026-01-01T00:01:00Z\noutput ends:\n  deploying\n  error: 2 of 3 pods crash-looping"
        );
    }
}
