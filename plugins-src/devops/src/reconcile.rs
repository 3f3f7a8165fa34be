//! Bringing `running` records up to date with the host jobs that run them.
//!
//! The plugin forgets everything between calls and a deploy outlives the call that started it,
//! so the history learns a deploy's outcome only when some later call asks the host. Every tool
//! that reads a history reconciles it first; the file is rewritten only when a record changed.

use sanctum_guest::ToolError;
use sanctum_guest::jobs::{self, JobError, State, StopReason};

use crate::clock::rfc3339_ms;
use crate::history::{History, Outcome, Record, Store};
use crate::output::record_tail;

/// The history in `store`, with every finished job's outcome recorded (and saved).
pub(crate) fn load(store: &Store) -> Result<History, ToolError> {
    let mut history = store.load()?;
    let mut changed = false;
    for record in history.running_mut() {
        changed |= settle(record)?;
    }
    if changed {
        store.save(&history)?;
    }
    Ok(history)
}

/// Fill in a `running` record's outcome if its job has ended; true when the record changed.
fn settle(record: &mut Record) -> Result<bool, ToolError> {
    let Some(job_id) = record.job_id.clone() else {
        // Written by the synchronous version, whose call was killed before it saved the outcome.
        record.outcome = Outcome::Interrupted;
        return Ok(true);
    };
    let job = match jobs::status(&job_id) {
        Ok(job) => job,
        Err(JobError::NotFound(message)) => {
            // Pruned by the host, or its records were lost: nobody can tell how it ended.
            record.outcome = Outcome::Interrupted;
            record.output_tail = format!("(the host no longer knows job {job_id}: {message})");
            return Ok(true);
        }
        Err(e) => {
            return Err(ToolError::new(format!(
                "cannot ask the host how job {job_id} (deployment #{}) stands: {e}",
                record.id
            )));
        }
    };
    let Some((outcome, exit_status)) = outcome_of(job.state) else {
        return Ok(false);
    };
    record.outcome = outcome;
    record.exit_status = exit_status;
    record.finished_at = Some(rfc3339_ms(job.started_at_ms.saturating_add(job.elapsed_ms)));
    let tail = record_tail(&job_id);
    record.output_tail = match job.state {
        // The exit status says it all; any other end is worth a line of its own after the output.
        State::Exited(_) => tail,
        state => format!("{tail}\n[job {job_id} {state}]").trim_start().to_owned(),
    };
    Ok(true)
}

/// The recorded outcome of a job in `state`, and its exit status; `None` while it runs.
pub(crate) fn outcome_of(state: State) -> Option<(Outcome, Option<i32>)> {
    Some(match state {
        State::Running => return None,
        State::Exited(0) => (Outcome::Succeeded, Some(0)),
        State::Exited(status) => (Outcome::Failed, Some(status)),
        State::Signaled(_) => (Outcome::Failed, None),
        State::Stopped(StopReason::Timeout) => (Outcome::TimedOut, None),
        State::Stopped(StopReason::Cancelled) => (Outcome::Cancelled, None),
        // The server went away mid-deploy: the command may have done anything up to then.
        State::Stopped(StopReason::Shutdown) | State::Lost => (Outcome::Interrupted, None),
    })
}

// The jobs stand-in exists only off wasm, where tests run.
#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::history::{Action, record};
    use crate::testing::StateDir;
    use sanctum_guest::jobs::stand_in;

    /// A history holding one `running` record per started job, as `deploy` leaves it.
    fn running_deploys(dir: &StateDir, count: usize) -> (Store, Vec<String>) {
        stand_in::set_max_jobs("deploy-web", 100);
        let store = dir.store();
        let mut history = History::default();
        let mut ids = Vec::new();
        for n in 0..count {
            let job = jobs::start("deploy-web", &["staging", &format!("v{n}")]).expect("started");
            let mut r = record(&format!("v{n}"), Outcome::Running);
            r.job_id = Some(job.id.clone());
            r.action = Action::Deploy;
            history.push(r);
            ids.push(job.id);
        }
        store.save(&history).expect("saved");
        (store, ids)
    }

    #[test]
    fn every_job_state_maps_to_an_outcome() {
        let dir = StateDir::new();
        let states = [
            (State::Exited(0), Outcome::Succeeded, Some(0)),
            (State::Exited(3), Outcome::Failed, Some(3)),
            (State::Signaled(9), Outcome::Failed, None),
            (State::Stopped(StopReason::Timeout), Outcome::TimedOut, None),
            (State::Stopped(StopReason::Cancelled), Outcome::Cancelled, None),
            (State::Stopped(StopReason::Shutdown), Outcome::Interrupted, None),
            (State::Lost, Outcome::Interrupted, None),
        ];
        let (store, ids) = running_deploys(&dir, states.len());
        stand_in::advance(4_000);
        for (id, (state, _, _)) in ids.iter().zip(states) {
            stand_in::write(id, format!("deploying\n{state}\n"));
            stand_in::finish(id, state);
        }
        let history = load(&store).expect("reconciled");
        for (n, (state, outcome, exit_status)) in states.into_iter().enumerate() {
            let r = history.get(n as u64 + 1).expect("record");
            assert_eq!((r.outcome, r.exit_status), (outcome, exit_status), "{state}");
            assert_eq!(r.finished_at.as_deref(), Some("2023-11-14T22:13:24Z"), "started + 4 s");
            assert!(r.output_tail.starts_with(&format!("deploying\n{state}")), "{state}: {}", r.output_tail);
            if !matches!(state, State::Exited(_)) {
                assert!(r.output_tail.ends_with(&format!("[job {} {state}]", ids[n])), "{}", r.output_tail);
            }
        }
        assert_eq!(store.load(), Ok(history), "the outcomes are saved");
    }

    #[test]
    fn a_running_job_stays_running_and_nothing_is_written() {
        let dir = StateDir::new();
        let (store, ids) = running_deploys(&dir, 1);
        stand_in::write(&ids[0], "step 1\n");
        // Compact, unlike what `save` writes: a rewrite would show.
        let compact = serde_json::to_vec(&store.load().expect("loads")).expect("json");
        std::fs::write(dir.history_file(), &compact).expect("write");
        let history = load(&store).expect("reconciled");
        assert_eq!(history.running().and_then(|r| r.job_id.as_deref()), Some(ids[0].as_str()));
        assert_eq!(history.running().map(|r| r.output_tail.as_str()), Some(""), "filled in only at the end");
        assert_eq!(std::fs::read(dir.history_file()).expect("read"), compact, "not rewritten");
    }

    #[test]
    fn records_without_a_job_or_whose_job_is_gone_are_interrupted() {
        let dir = StateDir::new();
        let (store, ids) = running_deploys(&dir, 1);
        stand_in::forget(&ids[0]);
        let mut history = store.load().expect("loads");
        history.push(record("legacy", Outcome::Running));
        store.save(&history).expect("saved");
        let history = load(&store).expect("reconciled");
        let outcomes: Vec<Outcome> = history.recent(2).iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Interrupted, Outcome::Interrupted]);
        assert!(history.get(1).expect("record").output_tail.contains("no longer knows job job-1"));
        assert_eq!(history.running(), None);
        assert_eq!(store.load(), Ok(history));
    }
}
