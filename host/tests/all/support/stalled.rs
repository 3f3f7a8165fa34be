//! A legacy SSE reader that stops reading: a raw socket with a tiny receive buffer, read only
//! up to the `endpoint` event.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Open `GET /sse` on `addr` (with `authorization`, if any) and read until the endpoint event;
/// returns the socket, never to be read again, and the session's POST path.
pub async fn stalled_sse_session(addr: SocketAddr, authorization: Option<&str>) -> (tokio::net::TcpStream, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut stream = socket.connect(addr).await.expect("connect");
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!("GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.expect("GET /sse");
    let mut head = Vec::new();
    let path = loop {
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "stream closed early");
        head.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&head);
        if let Some(at) = text.find("data: /messages")
            && let Some(end) = text[at + 6..].find('\n')
        {
            break text[at + 6..at + 6 + end].trim().to_owned();
        }
    };
    (stream, path)
}
