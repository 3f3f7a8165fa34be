//! Running the operator's deploy command for one version and recording how it went; shared by
//! `deploy` and `rollback`.

use sanctum_guest::{ToolError, process};

use crate::apps::App;
use crate::clock::now_rfc3339;
use crate::health::{self, Health};
use crate::history::{Action, Outcome, Record, Store};

/// How much of the command's output is kept in the record.
const OUTPUT_TAIL_CHARS: usize = 2000;

/// The finished record, and the health check made after a successful deploy.
pub(crate) struct Deployed {
    pub(crate) record: Record,
    pub(crate) health: Option<Health>,
}

/// Run `<deploy_command> <environment> <version>` and record it in `store`.
///
/// The `running` record is saved before the command starts, so even a call killed mid-deploy
/// leaves a trace. An error is returned only when nothing ran (e.g. the history is unreadable);
/// a command that fails is a recorded outcome, reported by the caller.
pub(crate) fn deploy(
    app_name: &str,
    app: &App,
    environment: &str,
    version: &str,
    action: Action,
    store: &Store,
) -> Result<Deployed, ToolError> {
    let mut history = store.load()?;
    history.close_interrupted();
    let id = history.push(Record {
        id: 0,
        action,
        version: version.to_owned(),
        agent: sanctum_guest::agent_id(),
        started_at: now_rfc3339(),
        finished_at: None,
        outcome: Outcome::Running,
        exit_status: None,
        output_tail: String::new(),
    });
    store.save(&history)?;

    let steps = if app.health_url.is_some() { 3.0 } else { 2.0 };
    let what = format!("{app_name} {version} to {environment}");
    sanctum_guest::progress(0.0, Some(steps), Some(&format!("running {} for {what}", app.deploy_command)));
    let result = process::run(&app.deploy_command, &[environment, version], None);
    let (outcome, exit_status, output_tail) = match &result {
        Ok(out) => {
            let outcome = if out.timed_out {
                Outcome::TimedOut
            } else if out.success() {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            };
            (outcome, out.status, tail(&format!("{}\n{}", out.stdout_text(), out.stderr_text())))
        }
        Err(e) => (Outcome::Failed, None, e.to_string()),
    };
    sanctum_guest::progress(
        1.0,
        Some(steps),
        Some(&format!("deploy command finished: {}", describe(outcome, exit_status))),
    );

    let record = history.get_mut(id).ok_or_else(|| ToolError::new("internal error: the new record vanished"))?;
    record.outcome = outcome;
    record.exit_status = exit_status;
    record.output_tail = output_tail;
    record.finished_at = Some(now_rfc3339());
    let record = record.clone();
    store.save(&history)?;
    sanctum_guest::progress(2.0, Some(steps), Some("recorded in the deployment history"));

    let health = match (outcome, app.health_url(environment)) {
        (Outcome::Succeeded, Some(url)) => {
            let health = health::check(&url);
            sanctum_guest::progress(3.0, Some(steps), Some(if health.healthy { "healthy" } else { "not healthy" }));
            Some(health)
        }
        _ => None,
    };
    Ok(Deployed { record, health })
}

/// `succeeded`, `failed (exit 3)`, `timed out`…
pub(crate) fn describe(outcome: Outcome, exit_status: Option<i32>) -> String {
    match (outcome, exit_status) {
        (Outcome::Succeeded, _) => "succeeded".into(),
        (Outcome::Failed, Some(code)) => format!("failed (exit status {code})"),
        (Outcome::Failed, None) => "failed".into(),
        (Outcome::TimedOut, _) => "timed out and was stopped".into(),
        (Outcome::Running, _) => "running".into(),
        (Outcome::Interrupted, _) => "interrupted (outcome unknown)".into(),
    }
}

/// The last `OUTPUT_TAIL_CHARS` characters, trimmed.
fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.len().saturating_sub(OUTPUT_TAIL_CHARS);
    chars[start..].iter().collect::<String>().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        let long = format!("{}\nlast line", "x".repeat(5000));
        let t = tail(&long);
        assert_eq!(t.chars().count(), OUTPUT_TAIL_CHARS);
        assert!(t.ends_with("last line"));
    }
}
