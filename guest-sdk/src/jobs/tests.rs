//! The job wrappers against the native stand-in: the host's rules as plugin tests rely on them.

use super::stand_in;
use super::*;

fn started(command: &str, args: &[&str]) -> Job {
    match start(command, args) {
        Ok(job) => job,
        Err(e) => panic!("start {command}: {e}"),
    }
}

#[test]
fn only_granted_commands_start_and_ids_count_up() {
    assert!(matches!(start("deploy", &["staging"]), Err(JobError::NotGranted(m)) if m.contains("deploy")));
    stand_in::set_max_jobs("deploy", 2);
    let first = started("deploy", &["staging", "v1"]);
    let second = started("deploy", &["prod", "v1"]);
    assert_eq!((first.id.as_str(), second.id.as_str()), ("job-1", "job-2"));
    assert_eq!(first.args, ["staging", "v1"]);
    assert_eq!(first.command, "deploy");
    assert!(first.is_running());
    assert_eq!(first.started_at_ms, stand_in::START_MS);
    assert!(matches!(start("deploy", &["a\0b"]), Err(JobError::ArgumentRefused(_))));
}

#[test]
fn max_jobs_limits_running_jobs_only() {
    stand_in::grant("deploy");
    let first = started("deploy", &[]);
    let Err(JobError::LimitReached(message)) = start("deploy", &[]) else { panic!("second deploy started") };
    assert!(message.contains(&first.id), "{message}");
    stand_in::finish(&first.id, State::Exited(0));
    assert!(started("deploy", &[]).is_running());
}

#[test]
fn a_scripted_start_failure_happens_once() {
    stand_in::grant("deploy");
    stand_in::fail_next_start(JobError::Failed("no such program".into()));
    assert_eq!(start("deploy", &[]), Err(JobError::Failed("no such program".into())));
    assert!(start("deploy", &[]).is_ok());
}

#[test]
fn elapsed_time_grows_while_running_and_stops_at_the_end() {
    stand_in::grant("deploy");
    let job = started("deploy", &[]);
    stand_in::advance(1_500);
    assert_eq!(status(&job.id).map(|j| j.elapsed_ms), Ok(1_500));
    stand_in::finish(&job.id, State::Exited(3));
    stand_in::advance(10_000);
    let ended = status(&job.id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ended.elapsed_ms, ended.state), (1_500, State::Exited(3)));
    assert!(!ended.is_running());
}

#[test]
fn reads_follow_the_offset_rules() {
    stand_in::grant("deploy");
    let id = started("deploy", &[]).id;
    stand_in::write(&id, "hello\nworld\n");
    let read = |offset, max| read_output(&id, offset, max).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read(0, 5), Chunk { data: b"hello".to_vec(), next_offset: 5, complete: false });
    assert_eq!(read(6, 100), Chunk { data: b"world\n".to_vec(), next_offset: 12, complete: false });
    assert_eq!(read(u64::MAX, 0), Chunk { data: vec![], next_offset: 12, complete: false });
    stand_in::finish(&id, State::Exited(0));
    assert!(read(6, 100).complete);
    assert!(!read(0, 5).complete, "more output follows offset 5");
    assert_eq!(status(&id).map(|j| j.output_bytes), Ok(12));
}

#[test]
fn one_read_returns_at_most_64_kib() {
    stand_in::grant("deploy");
    let id = started("deploy", &[]).id;
    stand_in::write(&id, vec![b'x'; 100_000]);
    let chunk = read_output(&id, 0, u32::MAX).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((chunk.data.len(), chunk.next_offset), (65_536, 65_536));
}

#[test]
fn tail_starts_at_a_line_boundary_inside_the_window() {
    stand_in::grant("deploy");
    let id = started("deploy", &[]).id;
    stand_in::write(&id, "step one\nstep two\nstep three\n");
    let tail = |max| super::tail(&id, max).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tail(1_000), "step one\nstep two\nstep three\n");
    assert_eq!(tail(16), "step three\n", "the cut line 'p two' is dropped");
    // The window starts exactly at a line: nothing is dropped.
    assert_eq!(tail(20), "step two\nstep three\n");
    // No line boundary inside: the cut line is all there is.
    assert_eq!(tail(6), "three\n");
    assert_eq!(tail(0), "");
}

#[test]
fn tail_reads_windows_longer_than_one_read() {
    stand_in::grant("deploy");
    let id = started("deploy", &[]).id;
    let line = format!("{}\n", "y".repeat(99));
    stand_in::write(&id, line.repeat(1_500));
    let tail = super::tail(&id, 100_000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tail.len(), 100_000);
    assert!(tail.starts_with('y') && tail.ends_with('\n'));
}

#[test]
fn tail_replaces_invalid_utf8() {
    stand_in::grant("deploy");
    let id = started("deploy", &[]).id;
    stand_in::write(&id, b"ok \xff\n");
    assert_eq!(tail(&id, 100).as_deref(), Ok("ok \u{fffd}\n"));
}

#[test]
fn cancel_stops_a_running_job_and_leaves_an_ended_one() {
    stand_in::grant("deploy");
    let id = started("deploy", &[]).id;
    stand_in::advance(700);
    let cancelled = cancel(&id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((cancelled.state, cancelled.elapsed_ms), (State::Stopped(StopReason::Cancelled), 700));
    stand_in::grant("migrate");
    let done = started("migrate", &[]).id;
    stand_in::finish(&done, State::Exited(1));
    assert_eq!(cancel(&done).map(|j| j.state), Ok(State::Exited(1)));
    assert!(matches!(cancel("job-99"), Err(JobError::NotFound(_))));
}

#[test]
fn list_is_newest_first_and_forgotten_jobs_are_not_found() {
    stand_in::set_max_jobs("deploy", 3);
    for _ in 0..3 {
        started("deploy", &[]);
    }
    let ids: Vec<String> = list().into_iter().map(|j| j.id).collect();
    assert_eq!(ids, ["job-3", "job-2", "job-1"]);
    stand_in::forget("job-2");
    assert!(matches!(status("job-2"), Err(JobError::NotFound(_))));
    assert!(matches!(tail("job-2", 10), Err(JobError::NotFound(_))));
    stand_in::reset();
    assert!(list().is_empty());
    assert!(matches!(start("deploy", &[]), Err(JobError::NotGranted(_))));
}

#[test]
fn states_read_as_sentences() {
    let cases = [
        (State::Running, "running"),
        (State::Exited(3), "exited with status 3"),
        (State::Signaled(9), "killed by signal 9"),
        (State::Stopped(StopReason::Timeout), "stopped: timed out"),
        (State::Stopped(StopReason::Cancelled), "stopped: cancelled"),
        (State::Stopped(StopReason::Shutdown), "stopped: server shut down"),
        (State::Lost, "lost (the server restarted while it ran)"),
    ];
    for (state, text) in cases {
        assert_eq!(state.to_string(), text);
    }
}

#[test]
fn errors_reach_the_model_as_their_message() {
    let error = JobError::LimitReached("1 of 1 allowed \"deploy\" jobs running (job-1)".into());
    let tool_error: crate::ToolError = error.clone().into();
    assert_eq!(tool_error.message(), error.to_string());
    assert_eq!(tool_error.message(), "1 of 1 allowed \"deploy\" jobs running (job-1)");
}
