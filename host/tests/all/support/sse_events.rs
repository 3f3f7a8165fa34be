//! Splitting a `text/event-stream` body into events. Shared, through `#[path]`, by the tests'
//! legacy SSE client and the load benchmark, so both read the wire the same way.

/// One parsed server-sent event.
#[derive(Debug, Default)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Splits a byte stream into events (blank-line separated; `:` comments ignored).
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes, not text: a chunk may end inside a multi-byte character.
    buffer: Vec<u8>,
}

impl SseParser {
    /// The events `chunk` completes, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        // Events end with a blank line; axum and rmcp write `\n` line ends.
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let mut event = SseEvent { event: "message".into(), data: String::new() };
            let mut has_data = false;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    value.trim().clone_into(&mut event.event);
                } else if let Some(value) = line.strip_prefix("data:") {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    has_data = true;
                }
            }
            if has_data {
                events.push(event);
            }
        }
        events
    }
}
