//! Starting the operator's deploy command as a host job and recording it; shared by `deploy`
//! and `rollback`.
//!
//! The call returns as soon as the job runs: the deploy takes as long as it takes, outside any
//! call, and `reconcile` records its outcome when a later call asks. Only one deploy per app
//! and environment runs at a time: the plugin refuses while the history has a running one, and
//! the host refuses more jobs of one command than the grant's `max_jobs`.

use sanctum_guest::ToolError;
use sanctum_guest::jobs::{self, JobError};

use crate::apps::App;
use crate::clock::{now_rfc3339, rfc3339_ms};
use crate::history::{Action, History, Outcome, Record, Store};

/// What to deploy, where.
pub(crate) struct Target<'a> {
    pub(crate) app_name: &'a str,
    pub(crate) app: &'a App,
    pub(crate) environment: &'a str,
}

/// Start `<deploy_command> <environment> <version>` as a job and record it in `store` as
/// `running`. `history` is the store's reconciled history.
///
/// A command the host would not start (not granted, argument refused, program missing) is
/// recorded as a failed attempt and returned as the error. A deploy already running here, or
/// the grant's job limit, refuses before anything is recorded.
pub(crate) fn start(
    target: &Target<'_>,
    version: &str,
    action: Action,
    mut history: History,
    store: &Store,
) -> Result<Record, ToolError> {
    let Target { app_name, app, environment } = *target;
    if let Some(running) = history.running() {
        return Err(ToolError::new(format!(
            "{} is still running (job {}, started {}); call devops__status {{\"app\": \"{app_name}\", \
             \"environment\": \"{environment}\"}} to follow it, or devops__cancel to stop it",
            running.headline(app_name, environment),
            running.job_id.as_deref().unwrap_or("unknown"),
            running.started_at,
        )));
    }
    // Written before the job starts so an unwritable history refuses the deploy, rather than
    // leaving a deploy running that nothing records.
    store.save(&history)?;
    let mut record = Record {
        id: 0,
        action,
        version: version.to_owned(),
        agent: sanctum_guest::agent_id(),
        job_id: None,
        started_at: now_rfc3339(),
        finished_at: None,
        outcome: Outcome::Running,
        exit_status: None,
        output_tail: String::new(),
    };
    match jobs::start(&app.deploy_command, &[environment, version]) {
        Ok(job) => {
            record.job_id = Some(job.id.clone());
            record.started_at = rfc3339_ms(job.started_at_ms);
            record.id = history.push(record.clone());
            if let Err(e) = store.save(&history) {
                // Unrecorded deploys are what the history exists to prevent.
                let stopped = jobs::cancel(&job.id)
                    .map_or_else(|c| format!("could not be cancelled: {c}"), |_| "was cancelled".to_owned());
                return Err(ToolError::new(format!("{e}; the deploy job {} {stopped}", job.id)));
            }
            Ok(record)
        }
        Err(JobError::LimitReached(reason)) => Err(ToolError::new(format!(
            "the {} of {app_name} {version} to {environment} was not started: {reason}",
            verb(action)
        ))),
        Err(e) => {
            record.outcome = Outcome::Failed;
            record.finished_at = Some(now_rfc3339());
            record.output_tail = e.to_string();
            record.id = history.push(record.clone());
            store.save(&history)?;
            Err(ToolError::new(format!(
                "{} failed: the command did not start, and the attempt is recorded in the history\noutput:\n{e}",
                record.headline(app_name, environment)
            )))
        }
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Deploy => "deploy",
        Action::Rollback => "rollback",
    }
}

// The jobs stand-in exists only off wasm, where tests run.
#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::reconcile;
    use crate::testing::StateDir;
    use sanctum_guest::jobs::{State, stand_in};

    fn deploy(dir: &StateDir, environment: &str, version: &str) -> Result<Record, ToolError> {
        let apps = dir.apps();
        let app = apps.target("web", environment)?;
        let store = Store::new(&dir.path(), "web", environment);
        let history = reconcile::load(&store)?;
        start(&Target { app_name: "web", app, environment }, version, Action::Deploy, history, &store)
    }

    #[test]
    fn a_deploy_starts_a_job_and_records_it_running() {
        let dir = StateDir::new();
        stand_in::grant("deploy-web");
        let record = deploy(&dir, "staging", "v1.2").expect("started");
        assert_eq!((record.id, record.outcome, record.job_id.as_deref()), (1, Outcome::Running, Some("job-1")));
        assert_eq!(record.started_at, "2023-11-14T22:13:20Z", "the job's start");
        let job = jobs::status("job-1").expect("job");
        assert_eq!((job.command.as_str(), job.args.join(" ")), ("deploy-web", "staging v1.2".to_owned()));
        assert_eq!(dir.store().load().expect("saved").running(), Some(&record));
    }

    #[test]
    fn a_second_deploy_is_refused_while_one_runs_then_allowed() {
        let dir = StateDir::new();
        stand_in::set_max_jobs("deploy-web", 5);
        deploy(&dir, "staging", "v1").expect("started");
        let refused = deploy(&dir, "staging", "v2").expect_err("refused");
        let message = refused.message();
        assert!(message.contains("deploy #1 of web v1 to staging is still running (job job-1"), "{message}");
        assert!(message.contains("devops__status") && message.contains("devops__cancel"), "{message}");
        assert_eq!(jobs::list().len(), 1, "no second job started");
        stand_in::finish("job-1", State::Exited(0));
        assert_eq!(deploy(&dir, "staging", "v2").map(|r| r.id), Ok(2));
    }

    #[test]
    fn the_hosts_job_limit_refuses_without_recording() {
        let dir = StateDir::new();
        stand_in::grant("deploy-web");
        deploy(&dir, "production", "v1").expect("started");
        let refused = deploy(&dir, "staging", "v1").expect_err("limit");
        assert!(refused.message().starts_with("the deploy of web v1 to staging was not started: 1 of 1"), "{refused}");
        assert_eq!(dir.store().load().expect("loads").last(), None, "nothing recorded");
    }

    #[test]
    fn a_command_that_does_not_start_is_a_recorded_failure() {
        let dir = StateDir::new();
        let refused = deploy(&dir, "staging", "v1").expect_err("not granted");
        assert!(refused.message().contains("deploy #1 of web v1 to staging failed"), "{refused}");
        assert!(refused.message().contains("not granted"), "{refused}");
        let history = dir.store().load().expect("loads");
        let record = history.last().expect("recorded");
        assert_eq!((record.outcome, record.job_id.as_deref()), (Outcome::Failed, None));
        assert!(record.finished_at.is_some() && record.output_tail.contains("not granted"));
    }

    #[test]
    fn an_unwritable_history_starts_nothing() {
        let dir = StateDir::new();
        stand_in::grant("deploy-web");
        // A directory where the temporary file must go makes every save fail.
        std::fs::create_dir(dir.history_file().with_extension("json.tmp")).expect("mkdir");
        assert!(deploy(&dir, "staging", "v1").is_err());
        assert!(jobs::list().is_empty());
    }
}
