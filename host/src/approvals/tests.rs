use std::io::Write;

use serde_json::json;

use super::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn records(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8");
        text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
    }

    fn steps(&self, id: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r["id"] == id)
            .map(|r| r["step"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn book(timeout: Duration, max_pending: usize) -> (Approvals, Buffer, Metrics) {
    let buffer = Buffer::default();
    let metrics = Metrics::new();
    let audit = Audit::to_writer(buffer.clone(), metrics.clone());
    (Approvals::new(ApprovalSettings { timeout, max_pending }, audit, metrics.clone()), buffer, metrics)
}

fn request(secret: &str) -> ApprovalRequest {
    ApprovalRequest {
        principal: Some("letta".into()),
        agent_id: Some("agent-1".into()),
        tool: "devops__deploy".into(),
        arguments: json!({"app": "shop", "token": secret}),
        rule: "deploys need a human".into(),
    }
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn approved_calls_get_their_exact_arguments_and_every_step_is_audited() {
    let (approvals, audit, metrics) = book(LONG, 10);
    let pending = approvals.submit(request("s3cret-value")).expect("held");
    let id = pending.id().to_owned();
    let listed = approvals.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].arguments, Some(json!({"app": "shop", "token": "s3cret-value"})));
    assert!(metrics.encode().contains("sanctum_approvals_pending 1"));
    let waiter = tokio::spawn(pending.verdict());
    let view = approvals.decide(&id.to_lowercase(), Decision::Approve, "unix:uid=0").expect("decided");
    assert_eq!((view.state, view.decided_by.as_deref()), (ApprovalState::Approved, Some("unix:uid=0")));
    let Verdict::Approved { by, call } = waiter.await.expect("joins") else { panic!("approved") };
    assert_eq!(by, "unix:uid=0");
    assert_eq!(call.arguments(), &json!({"token": "s3cret-value", "app": "shop"}));
    approvals.ran(&call, "ok");
    assert_eq!(audit.steps(&id), ["requested", "approved", "ran"]);
    let records = audit.records();
    assert!(!String::from_utf8_lossy(&audit.0.lock().expect("lock")).contains("s3cret"), "values never audited");
    let expected = hex(&Sha256::digest(br#"{"app":"shop","token":"s3cret-value"}"#));
    assert!(records.iter().all(|r| r["arguments_sha256"] == expected.as_str()), "{records:?}");
    assert_eq!(records[2]["outcome"], "ok");
    let after = approvals.get(&id).expect("remembered");
    assert_eq!((after.state, after.arguments), (ApprovalState::Ran, None));
    assert!(metrics.encode().contains("sanctum_approvals_pending 0"));
    assert!(approvals.list().is_empty());
}

#[tokio::test]
async fn denied_calls_get_the_reason_and_a_decision_is_made_once() {
    let (approvals, audit, _) = book(LONG, 10);
    let pending = approvals.submit(request("x")).expect("held");
    let id = pending.id().to_owned();
    assert_eq!(
        approvals.decide(&id, Decision::Deny { reason: " ".into() }, "op"),
        Err(DecideError::BadReason),
        "a denial says why"
    );
    let denied = approvals.decide(&id, Decision::Deny { reason: "not today".into() }, "unix:uid=1000");
    assert_eq!(denied.expect("denied").reason.as_deref(), Some("not today"));
    match pending.verdict().await {
        Verdict::Denied { by, reason } => {
            assert_eq!((by.as_str(), reason.as_str()), ("unix:uid=1000", "not today"));
        }
        other => panic!("{other:?}"),
    }
    for decision in [Decision::Approve, Decision::Deny { reason: "again".into() }] {
        assert!(matches!(
            approvals.decide(&id, decision, "op"),
            Err(DecideError::AlreadyDecided { state: ApprovalState::Denied, .. })
        ));
    }
    assert_eq!(audit.steps(&id), ["requested", "denied"]);
    let denied = audit.records().into_iter().find(|r| r["step"] == "denied").expect("denied record");
    assert_eq!((denied["by"].as_str(), denied["reason"].as_str()), (Some("unix:uid=1000"), Some("not today")));
}

#[tokio::test]
async fn an_undecided_call_expires_at_its_deadline() {
    let (approvals, audit, _) = book(Duration::from_millis(80), 10);
    let pending = approvals.submit(request("x")).expect("held");
    let id = pending.id().to_owned();
    let started = std::time::Instant::now();
    let Verdict::Expired { reason } = pending.verdict().await else { panic!("expired") };
    assert!(started.elapsed() >= Duration::from_millis(80));
    assert!(reason.contains("no operator decided"), "{reason}");
    assert_eq!(approvals.decide(&id, Decision::Approve, "op"), Err(DecideError::Expired { id: id.clone() }));
    assert_eq!(audit.steps(&id), ["requested", "expired"]);
    // An entry nobody waits on expires too, and leaves room in the book.
    let (approvals, _, _) = book(Duration::from_millis(30), 1);
    let held = approvals.submit(request("x")).expect("held");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(approvals.list().is_empty());
    let _second = approvals.submit(request("y")).expect("room again");
    assert!(matches!(held.verdict().await, Verdict::Expired { .. }));
}

#[tokio::test]
async fn a_caller_that_left_abandons_its_entry_and_nothing_runs() {
    let (approvals, audit, metrics) = book(LONG, 10);
    let pending = approvals.submit(request("x")).expect("held");
    let id = pending.id().to_owned();
    // The caller waits, then its client disconnects (the request future is dropped).
    let waiting = tokio::spawn(pending.verdict());
    tokio::task::yield_now().await;
    waiting.abort();
    assert!(waiting.await.is_err_and(|e| e.is_cancelled()));
    assert_eq!(approvals.decide(&id, Decision::Approve, "op"), Err(DecideError::Gone { id: id.clone() }));
    assert_eq!(audit.steps(&id), ["requested", "abandoned"]);
    assert!(metrics.encode().contains("sanctum_approvals_pending 0"));
    // Approved but never collected: audited as abandoned after the approval.
    let pending = approvals.submit(request("x")).expect("held");
    let id = pending.id().to_owned();
    approvals.decide(&id, Decision::Approve, "op").expect("approved");
    drop(pending);
    assert_eq!(audit.steps(&id), ["requested", "approved", "abandoned"]);
    assert_eq!(approvals.get(&id).map(|v| v.state), Some(ApprovalState::Abandoned));
    assert!(matches!(approvals.decide("nope-1", Decision::Approve, "op"), Err(DecideError::Unknown { .. })));
}

#[tokio::test]
async fn a_full_book_refuses_at_once() {
    let (approvals, _, _) = book(LONG, 3);
    let held: Vec<Pending> = (0..3).map(|i| approvals.submit(request(&i.to_string())).expect("room")).collect();
    assert_eq!(approvals.submit(request("4")).map(|_| ()), Err(ApprovalError::Full { max: 3 }));
    drop(held);
    assert!(approvals.submit(request("4")).is_ok(), "abandoned entries make room");
    let huge = ApprovalRequest { arguments: json!({"blob": "x".repeat(MAX_ARGUMENT_BYTES)}), ..request("x") };
    assert!(matches!(approvals.submit(huge), Err(ApprovalError::TooLarge { what: "arguments", .. })));
    let agent = ApprovalRequest { agent_id: Some("a".repeat(1000)), ..request("x") };
    assert!(matches!(approvals.submit(agent), Err(ApprovalError::TooLarge { what: "agent id", .. })));
}

#[tokio::test]
async fn closing_expires_every_entry_and_refuses_new_ones() {
    let (approvals, audit, _) = book(LONG, 10);
    let held: Vec<Pending> = (0..3).map(|i| approvals.submit(request(&i.to_string())).expect("room")).collect();
    let ids: Vec<String> = held.iter().map(|p| p.id().to_owned()).collect();
    approvals.close();
    for pending in held {
        let Verdict::Expired { reason } = pending.verdict().await else { panic!("expired") };
        assert_eq!(reason, "the server is shutting down");
    }
    assert_eq!(approvals.submit(request("x")).map(|_| ()), Err(ApprovalError::Closed));
    assert!(matches!(approvals.decide(&ids[0], Decision::Approve, "op"), Err(DecideError::Expired { .. })));
    assert!(ids.iter().all(|id| audit.steps(id) == ["requested", "expired"]));
}

#[tokio::test]
async fn ids_of_one_start_never_name_an_entry_of_the_next() {
    let (before, _, _) = book(LONG, 10);
    let old = before.submit(request("x")).expect("held");
    let old_id = old.id().to_owned();
    drop(before);
    // A restart: a new book in its place, with an entry at the same position.
    let (after, _, _) = book(LONG, 10);
    let new = after.submit(request("x")).expect("held");
    assert_ne!(old_id, new.id());
    assert_eq!(old_id.rsplit_once('-').map(|p| p.1), new.id().rsplit_once('-').map(|p| p.1));
    assert!(matches!(after.decide(&old_id, Decision::Approve, "op"), Err(DecideError::Unknown { .. })));
    assert_eq!(after.list().len(), 1, "the new entry is untouched");
    drop(old);
}

#[test]
fn canonical_json_sorts_keys_at_every_depth() {
    let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": "é"}], "a": null}"#).expect("json");
    assert_eq!(canonical_json(&a), r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#);
    assert_eq!(cut("héllo", 2), "h");
}
