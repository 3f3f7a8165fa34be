//! `deploy` and `rollback`: start the operator's deploy command as a job and return at once.

use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::{Apps, check_version};
use crate::history::{Action, History, Record, Store};
use crate::reconcile;
use crate::run::{self, Target};

/// What `deploy`, `rollback` and `cancel` return as structured content.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Report {
    pub(crate) app: String,
    pub(crate) environment: String,
    /// The deployment as recorded: `running` with its `job_id` right after a start.
    pub(crate) deployment: Record,
}

pub(crate) struct Deploy;

/// Start deploying a version of a configured application to one of its environments, by running
/// the operator's deploy command as a background job. Returns at once with the job id: follow
/// the deploy with `status` (elapsed time and last output lines while it runs, then the outcome)
/// and stop it with `cancel`. One deploy or rollback per app and environment runs at a time.
/// Every attempt is recorded in the history; one that fails or times out does not change the
/// version the history records as current.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeployArgs {
    /// The application, as listed by `list_apps`.
    app: String,
    /// The environment, one of the app's environments (e.g. `staging`).
    environment: String,
    /// The version to deploy, e.g. `v1.4.2` (letters, digits, `.`, `_`, `-`, `+`).
    version: String,
}

impl Tool for Deploy {
    const NAME: &'static str = "deploy";
    const TITLE: Option<&'static str> = Some("Deploy an application");
    const ANNOTATIONS: Annotations =
        Annotations::NONE.read_only(false).destructive(true).idempotent(false).open_world(true);
    type Args = DeployArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<Report>())
    }

    fn call(args: DeployArgs) -> Result<Output, ToolError> {
        let apps = Apps::load()?;
        let app = apps.target(&args.app, &args.environment)?;
        check_version(&args.version)?;
        let store = Store::new(&apps.state_dir, &args.app, &args.environment);
        let history = reconcile::load(&store)?;
        let target = Target { app_name: &args.app, app, environment: &args.environment };
        let record = run::start(&target, &args.version, Action::Deploy, history, &store)?;
        started(args.app, args.environment, record)
    }
}

pub(crate) struct Rollback;

/// Roll an application back in one environment by redeploying an earlier version that deployed
/// successfully there: the given one, or else the newest successful version other than the
/// current one. Runs as a background job and is recorded exactly like a deploy: returns at once
/// with the job id; follow it with `status`, stop it with `cancel`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackArgs {
    /// The application, as listed by `list_apps`.
    app: String,
    /// The environment to roll back.
    environment: String,
    /// A version that once deployed successfully here; the previous one if absent.
    to_version: Option<String>,
}

impl Tool for Rollback {
    const NAME: &'static str = "rollback";
    const TITLE: Option<&'static str> = Some("Roll back an application");
    const ANNOTATIONS: Annotations =
        Annotations::NONE.read_only(false).destructive(true).idempotent(false).open_world(true);
    type Args = RollbackArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<Report>())
    }

    fn call(args: RollbackArgs) -> Result<Output, ToolError> {
        let apps = Apps::load()?;
        let app = apps.target(&args.app, &args.environment)?;
        let store = Store::new(&apps.state_dir, &args.app, &args.environment);
        let history = reconcile::load(&store)?;
        let version = rollback_target(&history, &args)?;
        let target = Target { app_name: &args.app, app, environment: &args.environment };
        let record = run::start(&target, &version, Action::Rollback, history, &store)?;
        started(args.app, args.environment, record)
    }
}

/// The version a rollback goes to: `to_version` if it once succeeded here, else the previous one.
fn rollback_target(history: &History, args: &RollbackArgs) -> Result<String, ToolError> {
    match &args.to_version {
        Some(version) => {
            check_version(version)?;
            if history.succeeded_with(version) {
                Ok(version.clone())
            } else {
                Err(ToolError::new(format!(
                    "`{version}` never deployed successfully to {} {}; roll back only to a version from `history`",
                    args.app, args.environment
                )))
            }
        }
        None => history.previous().map(|r| r.version.clone()).ok_or_else(|| {
            ToolError::new(format!(
                "{} {} has no earlier successful version to roll back to",
                args.app, args.environment
            ))
        }),
    }
}

/// The job runs: say so, and what to call next.
fn started(app: String, environment: String, record: Record) -> Result<Output, ToolError> {
    let text = format!(
        "{} started as job {}; call devops__status {{\"app\": \"{app}\", \"environment\": \"{environment}\"}} \
         to follow it (devops__cancel to stop it)",
        record.headline(&app, &environment),
        record.job_id.as_deref().unwrap_or("unknown"),
    );
    Output::new().text(text).structured(&Report { app, environment, deployment: record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Outcome, record};

    fn args(to_version: Option<&str>) -> RollbackArgs {
        RollbackArgs { app: "web".into(), environment: "staging".into(), to_version: to_version.map(Into::into) }
    }

    #[test]
    fn rollbacks_go_to_versions_that_succeeded_here() {
        let mut history = History::default();
        assert!(rollback_target(&history, &args(None)).is_err_and(|e| e.message().contains("no earlier")));
        for (version, outcome) in [("v1", Outcome::Succeeded), ("v2", Outcome::Cancelled), ("v3", Outcome::Succeeded)] {
            history.push(record(version, outcome));
        }
        assert_eq!(rollback_target(&history, &args(None)), Ok("v1".to_owned()));
        assert_eq!(rollback_target(&history, &args(Some("v3"))), Ok("v3".to_owned()));
        let refused = rollback_target(&history, &args(Some("v2"))).expect_err("cancelled is no success");
        assert!(refused.message().contains("never deployed successfully"), "{refused}");
        assert!(rollback_target(&history, &args(Some("--force"))).is_err());
    }
}
