//! The admin JSON API, the same over the socket and the HTTP listener:
//!
//! - `GET /approvals` → `{"approvals": [view, …]}` (pending, oldest first, with arguments);
//! - `GET /approvals/{id}` → a view (pending, or recently finished without its arguments);
//! - `POST /approvals/{id}/approve` → the decided view;
//! - `POST /approvals/{id}/deny` with `{"reason": "…"}` → the decided view.
//!
//! Errors are `{"error": "…"}` with 400 (bad request), 403, 404 (unknown id), 409 (decided
//! already, expired, caller gone). Who decides is the [`Operator`] the listener attached to the
//! request (the socket's peer uid, or the admin token's principal); this module never decides
//! who may connect. Requests carrying `Origin` are refused: no browser page may drive it.

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::approvals::{ApprovalView, Approvals, DecideError, Decision};

/// Largest request body: a denial reason and its JSON wrapping.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// Who is making the request, as audit records name the decider: `unix:uid=1000` (socket) or
/// `token:ops` (HTTP). Attached by the listener before the request reaches a handler.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

/// `GET /approvals`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalList {
    pub approvals: Vec<ApprovalView>,
}

/// `POST /approvals/{id}/deny`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DenyBody {
    pub reason: String,
}

/// Every error body.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// An error answer: a status and a sentence for the operator.
pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: message.into() })).into_response()
}

/// The API over `approvals`; the caller layers on how an [`Operator`] is established.
pub(super) fn router(approvals: Approvals) -> Router {
    Router::new()
        .route("/approvals", get(list))
        .route("/approvals/{id}", get(show))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/deny", post(deny))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(no_browsers))
        .with_state(approvals)
}

/// A browser always sends `Origin` on a cross-site POST; the CLI and scripts never do.
async fn no_browsers(request: Request, next: Next) -> Response {
    if request.headers().contains_key(header::ORIGIN) {
        return error(StatusCode::FORBIDDEN, "the admin API is not for browsers (a request with Origin)");
    }
    next.run(request).await
}

async fn list(State(approvals): State<Approvals>) -> Json<ApprovalList> {
    Json(ApprovalList { approvals: approvals.list() })
}

async fn show(State(approvals): State<Approvals>, Path(id): Path<String>) -> Response {
    match approvals.get(&id) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, DecideError::Unknown { id }.to_string()),
    }
}

async fn approve(
    State(approvals): State<Approvals>,
    operator: Option<axum::Extension<Operator>>,
    Path(id): Path<String>,
) -> Response {
    decide(&approvals, operator, &id, Decision::Approve)
}

async fn deny(
    State(approvals): State<Approvals>,
    operator: Option<axum::Extension<Operator>>,
    Path(id): Path<String>,
    body: Result<Json<DenyBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(DenyBody { reason })) => decide(&approvals, operator, &id, Decision::Deny { reason }),
        Err(rejection) => {
            error(StatusCode::BAD_REQUEST, format!("send {{\"reason\": \"…\"}} as JSON: {}", rejection.body_text()))
        }
    }
}

fn decide(
    approvals: &Approvals,
    operator: Option<axum::Extension<Operator>>,
    id: &str,
    decision: Decision,
) -> Response {
    // Every listener attaches an operator; a request without one was not authenticated.
    let Some(axum::Extension(Operator(by))) = operator else {
        return error(StatusCode::FORBIDDEN, "no operator identity");
    };
    match approvals.decide(id, decision, &by) {
        Ok(view) => Json(view).into_response(),
        Err(e) => {
            let status = match e {
                DecideError::Unknown { .. } => StatusCode::NOT_FOUND,
                DecideError::BadReason => StatusCode::BAD_REQUEST,
                DecideError::AlreadyDecided { .. } | DecideError::Gone { .. } | DecideError::Expired { .. } => {
                    StatusCode::CONFLICT
                }
            };
            error(status, e.to_string())
        }
    }
}
