//! `deploy` and `rollback`: run the operator's deploy command and record the outcome.

use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::{Apps, check_version};
use crate::health::Health;
use crate::history::{Action, Outcome, Record, Store};
use crate::run::{self, Deployed, describe};

/// What `deploy` and `rollback` return as structured content.
#[derive(Serialize, JsonSchema)]
struct Report {
    app: String,
    environment: String,
    /// The recorded deployment.
    deployment: Record,
    /// The health check made after a successful deploy, if the app has a health URL.
    health: Option<Health>,
}

pub(crate) struct Deploy;

/// Deploy a version of a configured application to one of its environments, by running the
/// operator's deploy command. The deployment is recorded in the history whatever its outcome;
/// a failed or timed-out deploy is reported as an error and does not change the version the
/// history records as current (check `status` for what is actually running).
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
        let deployed = run::deploy(&args.app, app, &args.environment, &args.version, Action::Deploy, &store)?;
        report(&args.app, &args.environment, deployed)
    }
}

pub(crate) struct Rollback;

/// Roll an application back in one environment by redeploying an earlier version that deployed
/// successfully there: the given one, or else the newest successful version other than the
/// current one. Recorded in the history like a deploy.
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
        let history = store.load()?;
        let target = match &args.to_version {
            Some(version) => {
                check_version(version)?;
                if !history.succeeded_with(version) {
                    return Err(ToolError::new(format!(
                        "`{version}` never deployed successfully to {} {}; roll back only to a version from `history`",
                        args.app, args.environment
                    )));
                }
                version.clone()
            }
            None => match history.previous() {
                Some(previous) => previous.version.clone(),
                None => {
                    return Err(ToolError::new(format!(
                        "{} {} has no earlier successful version to roll back to",
                        args.app, args.environment
                    )));
                }
            },
        };
        let deployed = run::deploy(&args.app, app, &args.environment, &target, Action::Rollback, &store)?;
        report(&args.app, &args.environment, deployed)
    }
}

/// A success as text plus structured report; anything else as a tool error carrying the output.
fn report(app: &str, environment: &str, deployed: Deployed) -> Result<Output, ToolError> {
    let Deployed { record, health } = deployed;
    let verb = match record.action {
        Action::Deploy => "deploy",
        Action::Rollback => "rollback",
    };
    let headline = format!(
        "{verb} #{} of {app} {} to {environment} {}",
        record.id,
        record.version,
        describe(record.outcome, record.exit_status)
    );
    if record.outcome != Outcome::Succeeded {
        let output =
            if record.output_tail.is_empty() { String::new() } else { format!("\noutput:\n{}", record.output_tail) };
        return Err(ToolError::new(format!(
            "{headline}; the attempt is recorded in the history and the recorded current version is unchanged, \
             but the command may have changed the system part-way: check `status`{output}"
        )));
    }
    let mut text = headline;
    if let Some(h) = &health {
        text.push_str(&format!(
            "; health check {}: {}",
            if h.healthy { "passed" } else { "FAILED" },
            h.status.map_or_else(|| h.detail.clone(), |s| format!("HTTP {s} {}", h.detail))
        ));
    }
    let report = Report { app: app.to_owned(), environment: environment.to_owned(), deployment: record, health };
    Output::new().text(text).structured(&report)
}
