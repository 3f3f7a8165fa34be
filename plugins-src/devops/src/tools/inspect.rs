//! `history` and `list_apps`: read the configuration and the histories. They change nothing
//! but the records of deploys whose jobs have ended, which they bring up to date first.

use sanctum_guest::{Annotations, NoArgs, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::Apps;
use crate::history::{Outcome, Record, Store};
use crate::reconcile;

pub(crate) struct History;

/// List recent deployments of an application in one environment, newest first, with who asked,
/// when, the outcome (or the job still running it) and the end of the command's output.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryArgs {
    /// The application, as listed by `list_apps`.
    app: String,
    /// The environment.
    environment: String,
    /// How many deployments to list; 10 if absent.
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
struct HistoryReport {
    app: String,
    environment: String,
    /// Newest first.
    deployments: Vec<Record>,
}

impl Tool for History {
    const NAME: &'static str = "history";
    const TITLE: Option<&'static str> = Some("Deployment history");
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = HistoryArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<HistoryReport>())
    }

    fn call(args: HistoryArgs) -> Result<Output, ToolError> {
        let apps = Apps::load()?;
        apps.target(&args.app, &args.environment)?;
        let history = reconcile::load(&Store::new(&apps.state_dir, &args.app, &args.environment))?;
        let deployments = history.recent(args.limit.unwrap_or(10) as usize);
        let mut text = if deployments.is_empty() {
            format!("no deployments of {} to {} yet", args.app, args.environment)
        } else {
            format!("{} {} deployments, newest first:", args.app, args.environment)
        };
        for r in &deployments {
            let job = match (r.outcome, &r.job_id) {
                (Outcome::Running, Some(job)) => format!(" (job {job})"),
                _ => String::new(),
            };
            text.push_str(&format!(
                "\n#{} {} {} {}{job} at {} by {}",
                r.id,
                match r.action {
                    crate::history::Action::Deploy => "deploy",
                    crate::history::Action::Rollback => "rollback",
                },
                r.version,
                r.describe(),
                r.started_at,
                r.agent.as_deref().unwrap_or("unknown agent")
            ));
        }
        let report = HistoryReport { app: args.app, environment: args.environment, deployments };
        Output::new().text(text).structured(&report)
    }
}

pub(crate) struct ListApps;

#[derive(Serialize, JsonSchema)]
struct AppsReport {
    apps: Vec<AppSummary>,
}

#[derive(Serialize, JsonSchema)]
struct AppSummary {
    name: String,
    description: String,
    environments: Vec<EnvironmentSummary>,
}

#[derive(Serialize, JsonSchema)]
struct EnvironmentSummary {
    name: String,
    /// The version of the last successful deployment, if any.
    current_version: Option<String>,
}

impl Tool for ListApps {
    const NAME: &'static str = "list_apps";
    const TITLE: Option<&'static str> = Some("List applications");
    const DESCRIPTION: &'static str = "List the applications this server may deploy, their environments, and the \
         version each environment runs according to the deployment history.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = NoArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<AppsReport>())
    }

    fn call(_: NoArgs) -> Result<Output, ToolError> {
        let apps = Apps::load()?;
        let mut summaries = Vec::new();
        let mut text = String::new();
        for (name, app) in apps.iter() {
            let mut environments = Vec::new();
            for environment in &app.environments {
                // One damaged history must not hide every other application.
                let current_version = match reconcile::load(&Store::new(&apps.state_dir, name, environment)) {
                    Ok(history) => history.current().map(|r| r.version.clone()),
                    Err(e) if e.message().contains("is damaged") => Some("unknown (history damaged)".to_owned()),
                    Err(e) => return Err(e),
                };
                environments.push(EnvironmentSummary { name: environment.clone(), current_version });
            }
            let envs: Vec<String> = environments
                .iter()
                .map(|e| format!("{} ({})", e.name, e.current_version.as_deref().unwrap_or("not deployed")))
                .collect();
            text.push_str(&format!("{name}: {} — {}\n", app.description, envs.join(", ")));
            summaries.push(AppSummary { name: name.clone(), description: app.description.clone(), environments });
        }
        if summaries.is_empty() {
            text.push_str("no applications are configured");
        }
        Output::new().text(text.trim_end()).structured(&AppsReport { apps: summaries })
    }
}
