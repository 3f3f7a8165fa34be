//! The approvals webhook (`[approvals] notify_url`): a JSON summary of every call held for
//! approval (id, principal, agent, tool, rule, deadline; never argument values), POSTed through
//! the host's vetted egress client, so the destination gets the same checks as a plugin's HTTP
//! (one resolution, every address public unless the operator allowed its range, no redirects
//! followed, one deadline, a capped answer). Owns the delivery only: best effort, bounded, and
//! never in the caller's way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::approvals::ApprovalNotice;
use crate::egress::{Client, Limits};

/// One delivery, resolution to answer: a receiver slower than this is not waited for.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries in flight at once; notices beyond are dropped (and logged), so a dead receiver
/// cannot pile up tasks and sockets.
pub const MAX_IN_FLIGHT: usize = 8;
/// The receiver's answer is read only to finish the exchange.
const MAX_ANSWER_BYTES: usize = 4 * 1024;

/// A notifier for [`crate::approvals::Approvals::notify_with`] that POSTs each notice to `url`.
/// `allowed_ranges`: non-public ranges the operator allowed (a receiver on the host or the LAN).
pub fn webhook(url: String, allowed_ranges: Vec<ipnet::IpNet>) -> impl Fn(ApprovalNotice) + Send + Sync + 'static {
    let client = Client::new(Limits { timeout: NOTIFY_TIMEOUT, max_response_bytes: MAX_ANSWER_BYTES, allowed_ranges });
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let url: Arc<str> = Arc::from(url);
    move |notice: ApprovalNotice| {
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(id = %notice.id, "approvals webhook busy; notice dropped");
            return;
        };
        // Submitting happens on a runtime thread; without one there is nothing to deliver on.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (client, url) = (client.clone(), Arc::clone(&url));
        runtime.spawn(async move {
            match client.post_json(&url, &notice).await {
                Ok(answer) if answer.status.is_success() => {
                    tracing::debug!(id = %notice.id, "approvals webhook delivered");
                }
                Ok(answer) => {
                    tracing::warn!(id = %notice.id, status = %answer.status, "approvals webhook refused the notice");
                }
                // Egress errors name the host, never the path (a webhook URL may carry a secret).
                Err(e) => tracing::warn!(id = %notice.id, error = %e, "approvals webhook not delivered"),
            }
            drop(slot);
        });
    }
}
