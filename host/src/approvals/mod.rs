//! The approvals book: tool calls an access rule holds for a human operator (`effect =
//! "approve"`). A leaf (it imports only `audit` and `metrics`): the registry submits a call and
//! awaits its [`Verdict`] before the call goes anywhere near the worker queue; the admin plane
//! (`admin/`) lists and decides entries. It owns the entries, their ids, deadlines and bounds,
//! and the audit records of every step; it must not touch the worker, the network or MCP.
//!
//! - An entry is held until an operator approves or denies it, its deadline passes, the caller
//!   goes away (its [`Pending`] is dropped: "abandoned") or the server shuts down ([`close`]:
//!   every entry expires, new ones are refused). Each is decided at most once.
//! - An approved call is handed back with the exact arguments the operator saw
//!   ([`ApprovedCall`]); the caller runs it once and reports the outcome ([`Approvals::ran`]).
//! - The book is in memory only: a restart forgets every entry, so nothing approved before a
//!   restart runs after it, and ids carry a per-start tag so an old id never names a new call.
//! - Bounded: at most `max_pending` entries (more are refused at once), arguments of at most
//!   [`MAX_ARGUMENT_BYTES`] (canonical JSON), a deadline on every entry, and a short history
//!   of finished entries (without their arguments) so a late decision gets a precise answer.
//! - Audit records carry the SHA-256 of the canonical JSON of the arguments, never the values;
//!   nothing here logs argument values.
//!
//! [`close`]: Approvals::close

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::audit::{Audit, AuditRecord};
use crate::metrics::Metrics;

/// How long a call waits for an operator by default, in seconds. Letta 0.16.x puts no limit on
/// a whole tool call and tolerates 300 s between bytes (sanctum sends keep-alives every 15 s),
/// so 120 s of waiting plus the call's own deadline stays well inside what it accepts. Clients
/// with a 60 s request timeout (the MCP TypeScript SDK's default) need 25 s or less.
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: u64 = 120;
/// The waits an operator may configure, in seconds: a held call ties up its client, so at most
/// an hour.
pub const APPROVAL_TIMEOUT_SECS_RANGE: RangeInclusive<u64> = 1..=3_600;
/// Entries that may wait at once by default; more are refused at once. Each holds its
/// arguments in memory, and an operator cannot review more than this anyway.
pub const DEFAULT_MAX_PENDING_APPROVALS: u64 = 100;
/// The caps an operator may configure.
pub const MAX_PENDING_APPROVALS_RANGE: RangeInclusive<u64> = 1..=10_000;
/// Largest arguments (canonical JSON) a held call may carry: enough for any argument an
/// operator can read, small enough that a full book stays a few MiB.
pub const MAX_ARGUMENT_BYTES: usize = 64 * 1024;
/// Largest denial reason: it goes back to the caller and into the audit log.
pub const MAX_REASON_BYTES: usize = 1_024;
/// Largest tool name, rule, principal or agent id accepted (the agent id is the client's word).
const MAX_FIELD_BYTES: usize = 256;
/// Largest decider identity or outcome kept (they come from sanctum itself; cut, not refused).
const MAX_LABEL_BYTES: usize = 128;
/// Finished entries remembered (without arguments), so deciding one again says what became of
/// it instead of "unknown".
const HISTORY: usize = 256;

/// The book's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// How long an entry waits for a decision before it expires.
    pub timeout: Duration,
    /// Entries that may wait at once.
    pub max_pending: usize,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_APPROVAL_TIMEOUT_SECS),
            max_pending: DEFAULT_MAX_PENDING_APPROVALS as usize,
        }
    }
}

/// A call to hold: who asked, what, with which (already validated) arguments, and the rule
/// that asked for approval.
#[derive(Clone)]
pub struct ApprovalRequest {
    pub principal: Option<String>,
    /// The client's `X-Agent-Id`: asserted, not verified.
    pub agent_id: Option<String>,
    pub tool: String,
    pub arguments: Value,
    pub rule: String,
}

impl std::fmt::Debug for ApprovalRequest {
    // Argument values stay out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRequest")
            .field("principal", &self.principal)
            .field("agent_id", &self.agent_id)
            .field("tool", &self.tool)
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for an operator.
    Pending,
    /// Approved; the caller is running it.
    Approved,
    Denied,
    /// Its deadline passed, or the server shut down.
    Expired,
    /// The caller went away first; nothing ran.
    Abandoned,
    /// Approved and run; `outcome` says how it ended.
    Ran,
}

impl std::fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
            Self::Ran => "ran",
        })
    }
}

/// An entry as operators see it (the admin plane's JSON). Pending entries carry their
/// arguments: the admin plane is for operators, who must see what they approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub id: String,
    pub state: ApprovalState,
    pub principal: Option<String>,
    pub agent_id: Option<String>,
    pub tool: String,
    /// The access rule that asked for approval.
    pub rule: String,
    /// The exact arguments; only while pending (finished entries keep only their hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// SHA-256 of the canonical JSON of the arguments (sorted keys, no spaces): what audit
    /// records carry.
    pub arguments_sha256: String,
    /// Seconds since the Unix epoch.
    pub created_at: f64,
    /// Seconds since the Unix epoch.
    pub deadline_at: f64,
    /// Who approved or denied it (`unix:uid=1000`, `token:ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Why it was denied, expired or abandoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How the approved call ended (`state = "ran"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// What an operator decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny { reason: String },
}

/// How a held call ended for its caller.
#[derive(Debug)]
pub enum Verdict {
    /// Run `call` once, with its arguments, then report through [`Approvals::ran`].
    Approved {
        by: String,
        call: ApprovedCall,
    },
    Denied {
        by: String,
        reason: String,
    },
    Expired {
        reason: String,
    },
}

/// An approved call: the arguments exactly as the operator saw them, and what the "ran" audit
/// record needs.
pub struct ApprovedCall {
    id: String,
    principal: Option<String>,
    agent_id: Option<String>,
    tool: String,
    rule: String,
    by: String,
    arguments: Value,
    arguments_sha256: String,
}

impl std::fmt::Debug for ApprovedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovedCall")
            .field("id", &self.id)
            .field("tool", &self.tool)
            .field("by", &self.by)
            .field("arguments_sha256", &self.arguments_sha256)
            .finish_non_exhaustive()
    }
}

impl ApprovedCall {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The approved arguments.
    pub fn arguments(&self) -> &Value {
        &self.arguments
    }

    /// Move the approved arguments out (leaving `null`), to run them without a copy.
    pub fn take_arguments(&mut self) -> Value {
        self.arguments.take()
    }
}

/// Why a call could not be held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("too many calls are already waiting for approval (at most {max}); try again later")]
    Full { max: usize },
    #[error("the server is shutting down; no call can wait for approval")]
    Closed,
    #[error("too large to hold for approval: {what} is {size} bytes, at most {max}")]
    TooLarge { what: &'static str, size: usize, max: usize },
}

/// Why a decision was refused. Nothing ran in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no approval {id}: unknown or already gone; nothing ran")]
    Unknown { id: String },
    #[error("approval {id} was already decided ({state}{}); it cannot be decided again", by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default())]
    AlreadyDecided { id: String, state: ApprovalState, by: Option<String> },
    #[error("approval {id}: the caller is gone; nothing ran")]
    Gone { id: String },
    #[error("approval {id} expired; nothing ran")]
    Expired { id: String },
    #[error("a denial needs a reason of 1 to {MAX_REASON_BYTES} bytes")]
    BadReason,
}

/// The shared book. Cloning is cheap and shares it.
#[derive(Clone, Debug)]
pub struct Approvals {
    shared: Arc<Shared>,
}

struct Shared {
    settings: ApprovalSettings,
    audit: Audit,
    metrics: Metrics,
    /// This book's per-start tag: the first part of every id.
    tag: String,
    book: Mutex<Book>,
    /// Told of every new entry (the operator's webhook); must not block.
    notifier: OnceLock<Notifier>,
}

/// Told of every new entry, outside the book's lock.
type Notifier = Box<dyn Fn(ApprovalNotice) + Send + Sync>;

/// What a notifier is told of a new entry: who, what, which rule, until when. Never the
/// arguments: a notification goes to another system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalNotice {
    /// Always `approval_requested`.
    pub event: String,
    pub id: String,
    pub principal: Option<String>,
    pub agent_id: Option<String>,
    pub tool: String,
    pub rule: String,
    pub arguments_sha256: String,
    /// Seconds since the Unix epoch.
    pub created_at: f64,
    /// Seconds since the Unix epoch.
    pub deadline_at: f64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals").field("tag", &self.tag).field("settings", &self.settings).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Book {
    next: u64,
    closed: bool,
    /// By sequence number, so listing is in arrival order.
    pending: BTreeMap<u64, Entry>,
    /// Finished entries, newest last, at most [`HISTORY`].
    history: VecDeque<ApprovalView>,
}

struct Entry {
    /// The view without arguments (they are kept once, below).
    view: ApprovalView,
    arguments: Value,
    deadline: Instant,
    reply: oneshot::Sender<Verdict>,
}

impl Approvals {
    pub fn new(settings: ApprovalSettings, audit: Audit, metrics: Metrics) -> Self {
        metrics.set_approvals_pending(0);
        let shared =
            Shared { settings, audit, metrics, tag: boot_tag(), book: Mutex::default(), notifier: OnceLock::new() };
        Self { shared: Arc::new(shared) }
    }

    /// Tell `notifier` of every new entry (once per book; a second notifier is ignored). It is
    /// called on the submitting task, so it must hand the work off rather than wait.
    pub fn notify_with(&self, notifier: impl Fn(ApprovalNotice) + Send + Sync + 'static) {
        if self.shared.notifier.set(Box::new(notifier)).is_err() {
            tracing::warn!("the approvals book already has a notifier");
        }
    }

    pub fn settings(&self) -> ApprovalSettings {
        self.shared.settings
    }

    /// Hold `request` until it is decided. Refused at once when the book is full, closed, or
    /// the request too large.
    pub fn submit(&self, request: ApprovalRequest) -> Result<Pending, ApprovalError> {
        let canonical = canonical_json(&request.arguments);
        if canonical.len() > MAX_ARGUMENT_BYTES {
            return Err(ApprovalError::TooLarge { what: "arguments", size: canonical.len(), max: MAX_ARGUMENT_BYTES });
        }
        let fields = [
            ("tool", Some(&request.tool)),
            ("rule", Some(&request.rule)),
            ("principal", request.principal.as_ref()),
            ("agent id", request.agent_id.as_ref()),
        ];
        for (what, value) in fields {
            if let Some(size) = value.map(String::len).filter(|len| *len > MAX_FIELD_BYTES) {
                return Err(ApprovalError::TooLarge { what, size, max: MAX_FIELD_BYTES });
            }
        }
        let arguments_sha256 = hex(&Sha256::digest(canonical.as_bytes()));
        let shared = &self.shared;
        let mut book = shared.book();
        shared.sweep(&mut book);
        if book.closed {
            return Err(ApprovalError::Closed);
        }
        if book.pending.len() >= shared.settings.max_pending {
            tracing::warn!(tool = %request.tool, max = shared.settings.max_pending, "approvals book full; call refused");
            return Err(ApprovalError::Full { max: shared.settings.max_pending });
        }
        book.next += 1;
        let seq = book.next;
        let id = format!("{}-{seq}", shared.tag);
        let created = SystemTime::now();
        let deadline = Instant::now() + shared.settings.timeout;
        let view = ApprovalView {
            id: id.clone(),
            state: ApprovalState::Pending,
            principal: request.principal,
            agent_id: request.agent_id,
            tool: request.tool,
            rule: request.rule,
            arguments: None,
            arguments_sha256,
            created_at: unix_seconds(created),
            deadline_at: unix_seconds(created + shared.settings.timeout),
            decided_by: None,
            reason: None,
            outcome: None,
        };
        shared.record(&view, "requested");
        tracing::info!(id = %id, tool = %view.tool, principal = ?view.principal, rule = %view.rule, "call held for approval");
        let notice = shared.notifier.get().is_some().then(|| ApprovalNotice {
            event: "approval_requested".into(),
            id: id.clone(),
            principal: view.principal.clone(),
            agent_id: view.agent_id.clone(),
            tool: view.tool.clone(),
            rule: view.rule.clone(),
            arguments_sha256: view.arguments_sha256.clone(),
            created_at: view.created_at,
            deadline_at: view.deadline_at,
        });
        let (reply, receiver) = oneshot::channel();
        book.pending.insert(seq, Entry { view, arguments: request.arguments, deadline, reply });
        shared.metrics.set_approvals_pending(book.pending.len());
        drop(book);
        if let (Some(notify), Some(notice)) = (shared.notifier.get(), notice) {
            notify(notice);
        }
        Ok(Pending { id, seq, deadline, receiver, shared: Arc::clone(shared), settled: false })
    }

    /// The pending entries, oldest first, with their arguments.
    pub fn list(&self) -> Vec<ApprovalView> {
        let mut book = self.shared.book();
        self.shared.sweep(&mut book);
        book.pending.values().map(Entry::full_view).collect()
    }

    /// One entry: pending (with its arguments) or recently finished (without them).
    pub fn get(&self, id: &str) -> Option<ApprovalView> {
        let mut book = self.shared.book();
        self.shared.sweep(&mut book);
        if let Some(entry) = self.shared.seq_of(id).and_then(|seq| book.pending.get(&seq)) {
            return Some(entry.full_view());
        }
        book.history.iter().rev().find(|view| view.id.eq_ignore_ascii_case(id.trim())).cloned()
    }

    /// Approve or deny a pending entry; `by` names the operator (`unix:uid=1000`).
    pub fn decide(&self, id: &str, decision: Decision, by: &str) -> Result<ApprovalView, DecideError> {
        let (state, reason) = match decision {
            Decision::Approve => (ApprovalState::Approved, None),
            Decision::Deny { reason } if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES => {
                return Err(DecideError::BadReason);
            }
            Decision::Deny { reason } => (ApprovalState::Denied, Some(reason)),
        };
        let shared = &self.shared;
        let mut book = shared.book();
        shared.sweep(&mut book);
        let by = cut(by, MAX_LABEL_BYTES);
        if let Some(seq) = shared.seq_of(id).filter(|seq| book.pending.contains_key(seq)) {
            return shared
                .finish(&mut book, seq, state, Some(by), reason.as_deref().map(str::trim))
                .ok_or_else(|| DecideError::Unknown { id: id.trim().to_owned() });
        }
        let id = id.trim().to_owned();
        match book.history.iter().rev().find(|view| view.id.eq_ignore_ascii_case(&id)) {
            None => Err(DecideError::Unknown { id }),
            Some(view) => Err(match view.state {
                ApprovalState::Abandoned => DecideError::Gone { id: view.id.clone() },
                ApprovalState::Expired => DecideError::Expired { id: view.id.clone() },
                state => DecideError::AlreadyDecided { id: view.id.clone(), state, by: view.decided_by.clone() },
            }),
        }
    }

    /// Shutdown: every pending entry expires ("the server is shutting down") and new ones are
    /// refused. Nothing approved afterwards can run: the book is gone with the process.
    pub fn close(&self) {
        let shared = &self.shared;
        let mut book = shared.book();
        book.closed = true;
        let waiting: Vec<u64> = book.pending.keys().copied().collect();
        for seq in waiting {
            shared.finish(&mut book, seq, ApprovalState::Expired, None, Some("the server is shutting down"));
        }
    }

    /// The approved `call` ran; `outcome` is how it ended (`ok` or a short failure kind).
    pub fn ran(&self, call: &ApprovedCall, outcome: &str) {
        let outcome = cut(outcome, MAX_LABEL_BYTES);
        let shared = &self.shared;
        shared.audit.record(&AuditRecord::Approval {
            id: &call.id,
            step: "ran",
            principal: call.principal.as_deref(),
            agent_id: call.agent_id.as_deref(),
            tool: &call.tool,
            rule: &call.rule,
            by: Some(&call.by),
            reason: None,
            arguments_sha256: &call.arguments_sha256,
            outcome: Some(outcome),
        });
        shared.metrics.approval_step("ran");
        let mut book = shared.book();
        if let Some(view) = book.history.iter_mut().rev().find(|view| view.id == call.id) {
            view.state = ApprovalState::Ran;
            view.outcome = Some(outcome.to_owned());
        }
    }
}

impl Shared {
    /// The book, even if a panic elsewhere poisoned its lock: its data stays consistent
    /// (every change is made whole under the lock), and the server must keep answering.
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sequence number `id` names in this book (ids of another start never match).
    fn seq_of(&self, id: &str) -> Option<u64> {
        let (tag, seq) = id.trim().rsplit_once('-')?;
        if !tag.eq_ignore_ascii_case(&self.tag) {
            return None;
        }
        seq.parse().ok()
    }

    /// Expire every entry whose deadline passed, whether or not its caller is looking.
    fn sweep(&self, book: &mut Book) {
        let now = Instant::now();
        let due: Vec<u64> =
            book.pending.iter().filter(|(_, entry)| entry.deadline <= now).map(|(seq, _)| *seq).collect();
        let reason = self.timeout_reason();
        for seq in due {
            self.finish(book, seq, ApprovalState::Expired, None, Some(&reason));
        }
    }

    fn timeout_reason(&self) -> String {
        format!("no operator decided within {} s", self.settings.timeout.as_secs())
    }

    /// Take entry `seq` out of the book as `state`: answer its caller, audit, remember it.
    fn finish(
        &self,
        book: &mut Book,
        seq: u64,
        state: ApprovalState,
        by: Option<&str>,
        reason: Option<&str>,
    ) -> Option<ApprovalView> {
        let Entry { mut view, arguments, reply, .. } = book.pending.remove(&seq)?;
        view.state = state;
        view.decided_by = by.map(str::to_owned);
        view.reason = reason.map(str::to_owned);
        let verdict = match state {
            ApprovalState::Approved => Some(Verdict::Approved {
                by: by.unwrap_or_default().to_owned(),
                call: ApprovedCall {
                    id: view.id.clone(),
                    principal: view.principal.clone(),
                    agent_id: view.agent_id.clone(),
                    tool: view.tool.clone(),
                    rule: view.rule.clone(),
                    by: by.unwrap_or_default().to_owned(),
                    arguments,
                    arguments_sha256: view.arguments_sha256.clone(),
                },
            }),
            ApprovalState::Denied => Some(Verdict::Denied {
                by: by.unwrap_or_default().to_owned(),
                reason: reason.unwrap_or_default().to_owned(),
            }),
            ApprovalState::Expired => Some(Verdict::Expired { reason: reason.unwrap_or_default().to_owned() }),
            ApprovalState::Abandoned | ApprovalState::Pending | ApprovalState::Ran => None,
        };
        // The caller may be gone already; its `Pending` then audits nothing more.
        if let Some(verdict) = verdict {
            let _ = reply.send(verdict);
        }
        let step = state.to_string();
        self.record(&view, &step);
        tracing::info!(id = %view.id, tool = %view.tool, step = %step, by = ?view.decided_by, "approval finished");
        self.metrics.set_approvals_pending(book.pending.len());
        if book.history.len() >= HISTORY {
            book.history.pop_front();
        }
        book.history.push_back(view.clone());
        Some(view)
    }

    fn record(&self, view: &ApprovalView, step: &str) {
        self.audit.record(&AuditRecord::Approval {
            id: &view.id,
            step,
            principal: view.principal.as_deref(),
            agent_id: view.agent_id.as_deref(),
            tool: &view.tool,
            rule: &view.rule,
            by: view.decided_by.as_deref(),
            reason: view.reason.as_deref(),
            arguments_sha256: &view.arguments_sha256,
            outcome: None,
        });
        self.metrics.approval_step(step);
    }
}

impl Entry {
    fn full_view(&self) -> ApprovalView {
        ApprovalView { arguments: Some(self.arguments.clone()), ..self.view.clone() }
    }
}

/// A held call, owned by its caller. Dropping it before the verdict (the client went away)
/// takes the entry out of the book, audited "abandoned": an operator deciding it afterwards
/// is told the caller is gone, and nothing runs.
pub struct Pending {
    id: String,
    seq: u64,
    deadline: Instant,
    receiver: oneshot::Receiver<Verdict>,
    shared: Arc<Shared>,
    /// The verdict was collected: nothing to clean up on drop.
    settled: bool,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Pending {
    /// The entry's id (`K7QD-3`), to tell the caller what it waits for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the entry expires.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Wait for the decision, or the deadline. Dropping this future is dropping the
    /// [`Pending`]: the caller is gone.
    pub async fn verdict(mut self) -> Verdict {
        let received = tokio::select! {
            received = &mut self.receiver => received.ok(),
            () = tokio::time::sleep_until(self.deadline) => None,
        };
        let verdict = match received {
            Some(verdict) => verdict,
            None => {
                let mut book = self.shared.book();
                if book.pending.contains_key(&self.seq) {
                    let reason = self.shared.timeout_reason();
                    self.shared.finish(&mut book, self.seq, ApprovalState::Expired, None, Some(&reason));
                }
                drop(book);
                // Either the expiry just sent, or a decision won the race and sent first.
                self.receiver
                    .try_recv()
                    .unwrap_or_else(|_| Verdict::Expired { reason: "the approvals book is gone".into() })
            }
        };
        self.settled = true;
        verdict
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let mut book = shared.book();
        if book.pending.contains_key(&self.seq) {
            shared.finish(&mut book, self.seq, ApprovalState::Abandoned, None, Some("the caller is gone"));
            return;
        }
        // Approved, but the caller left before collecting it: it will never run; say so.
        if let Ok(Verdict::Approved { call, .. }) = self.receiver.try_recv() {
            let reason = "the caller left after the approval; nothing ran";
            shared.audit.record(&AuditRecord::Approval {
                id: &call.id,
                step: "abandoned",
                principal: call.principal.as_deref(),
                agent_id: call.agent_id.as_deref(),
                tool: &call.tool,
                rule: &call.rule,
                by: Some(&call.by),
                reason: Some(reason),
                arguments_sha256: &call.arguments_sha256,
                outcome: None,
            });
            shared.metrics.approval_step("abandoned");
            if let Some(view) = book.history.iter_mut().rev().find(|view| view.id == call.id) {
                view.state = ApprovalState::Abandoned;
                view.reason = Some(reason.to_owned());
            }
        }
    }
}

/// The per-start tag of a book's ids: four Crockford base32 characters (20 bits) from a
/// random base chosen once per process, plus one per book created in it. Two books of one
/// process never share a tag; two starts share one with a chance of one in a million, and
/// even then an old id names a new call only if its number is also reached again.
fn boot_tag() -> String {
    static BASE: OnceLock<u32> = OnceLock::new();
    static BOOKS: AtomicU32 = AtomicU32::new(0);
    let base = *BASE.get_or_init(|| {
        let mut bytes = [0u8; 4];
        match getrandom::fill(&mut bytes) {
            Ok(()) => u32::from_le_bytes(bytes),
            // No randomness: the start time still differs between starts.
            Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32),
        }
    });
    let value = base.wrapping_add(BOOKS.fetch_add(1, Ordering::Relaxed)) & 0xF_FFFF;
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..4).rev().map(|i| char::from(ALPHABET[((value >> (5 * i)) & 31) as usize])).collect()
}

pub use crate::digest::canonical_json;
use crate::digest::hex;

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    &text[..end]
}

#[cfg(test)]
mod tests;
