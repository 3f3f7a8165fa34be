//! A legacy HTTP+SSE client transport for rmcp's client (rmcp ships none): `GET /sse`, wait
//! for the `endpoint` event, then POST each message there and read responses off the stream.
//! Written as the clients in the wild behave, so the tests exercise the same wire shape.

use futures::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::PollSender;

pub type Transport = (PollSender<ClientJsonRpcMessage>, ReceiverStream<ServerJsonRpcMessage>);

pub use super::sse_events::{SseEvent, SseParser};

pub async fn connect(sse_url: &str) -> Transport {
    connect_with(sse_url, reqwest::Client::new()).await
}

/// Like [`connect`], with a client of the caller's (e.g. one sending an `Authorization` header).
pub async fn connect_with(sse_url: &str, http: reqwest::Client) -> Transport {
    let response = http.get(sse_url).header("accept", "text/event-stream").send().await.expect("GET /sse");
    assert_eq!(response.status(), 200, "GET /sse");
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut pending = Vec::new();
    let endpoint = loop {
        let chunk = body.next().await.expect("stream open").expect("chunk");
        pending.extend(parser.push(&chunk));
        if let Some(pos) = pending.iter().position(|e| e.event == "endpoint") {
            break pending.remove(pos).data;
        }
    };
    assert!(endpoint.starts_with('/'), "endpoint must be relative: {endpoint}");
    let post_url = reqwest::Url::parse(sse_url).expect("url").join(&endpoint).expect("join");

    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(64);
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = body.next().await {
            for event in parser.push(&chunk) {
                if event.event != "message" {
                    continue;
                }
                let message = serde_json::from_str(&event.data).expect("server sends JSON-RPC");
                if to_client.send(message).await.is_err() {
                    return;
                }
            }
        }
    });

    let (to_server, mut outgoing) = mpsc::channel::<ClientJsonRpcMessage>(64);
    tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let status = http.post(post_url.clone()).json(&message).send().await.map(|r| r.status());
            assert!(matches!(status, Ok(s) if s == 202), "POST /messages must be 202 at once, got {status:?}");
        }
    });
    (PollSender::new(to_server), ReceiverStream::new(from_server))
}
