//! `status`, `history` and `list_apps`: read the configuration, the history and the health
//! endpoint; change nothing.

use sanctum_guest::{Annotations, NoArgs, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::Apps;
use crate::health::{self, Health};
use crate::history::{Record, Store};
use crate::run::describe;

pub(crate) struct Status;

/// Report an application's state in one environment: the version running as far as the
/// deployment history knows, the last deployment attempt, and a live health check.
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
    /// The last deployment attempt, whatever its outcome.
    last_deployment: Option<Record>,
    /// The live health check, if the app has a health URL.
    health: Option<Health>,
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
        let mut history = Store::new(&apps.state_dir, &args.app, &args.environment).load()?;
        history.close_interrupted();
        let health = app.health_url(&args.environment).map(|url| health::check(&url));
        let report = StatusReport {
            current_version: history.current().map(|r| r.version.clone()),
            last_deployment: history.last().cloned(),
            health,
            app: args.app,
            environment: args.environment,
        };
        let mut text = format!(
            "{} {}: {}",
            report.app,
            report.environment,
            report
                .current_version
                .as_deref()
                .map_or("never deployed successfully".to_owned(), |v| format!("running {v}"))
        );
        if let Some(last) = &report.last_deployment {
            text.push_str(&format!(
                "; last deployment #{} ({}) {} at {}",
                last.id,
                last.version,
                describe(last.outcome, last.exit_status),
                last.finished_at.as_deref().unwrap_or(&last.started_at)
            ));
        }
        if let Some(h) = &report.health {
            text.push_str(&format!("; health: {}", if h.healthy { "healthy" } else { "NOT healthy" }));
            match h.status {
                Some(status) => text.push_str(&format!(" (HTTP {status}) {}", h.detail)),
                None => text.push_str(&format!(" ({})", h.detail)),
            }
        }
        Output::new().text(text).structured(&report)
    }
}

pub(crate) struct History;

/// List recent deployments of an application in one environment, newest first, with who asked,
/// when, the outcome and the end of the command's output.
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
        let mut history = Store::new(&apps.state_dir, &args.app, &args.environment).load()?;
        history.close_interrupted();
        let deployments = history.recent(args.limit.unwrap_or(10) as usize);
        let mut text = if deployments.is_empty() {
            format!("no deployments of {} to {} yet", args.app, args.environment)
        } else {
            format!("{} {} deployments, newest first:", args.app, args.environment)
        };
        for r in &deployments {
            text.push_str(&format!(
                "\n#{} {} {} {} at {} by {}",
                r.id,
                match r.action {
                    crate::history::Action::Deploy => "deploy",
                    crate::history::Action::Rollback => "rollback",
                },
                r.version,
                describe(r.outcome, r.exit_status),
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
                let current_version = match Store::new(&apps.state_dir, name, environment).load() {
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
