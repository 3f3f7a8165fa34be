//! The example plugin bundled with sanctum.
//!
//! `echo`, `stats` and `image` show the SDK's output kinds; `fail`, `progress` and `wait` give
//! the host's tests a predictable way to exercise errors, progress notifications, logging,
//! cancellation and timeouts.

mod echo;
mod fail;
mod image;
mod progress;
mod stats;
mod wait;

sanctum_guest::plugin! {
    name: "echo",
    version: env!("CARGO_PKG_VERSION"),
    description: "Example plugin: echoes text, summarizes numbers, and offers tools for trying out \
                  errors, progress, cancellation and images.",
    tools: [echo::Echo, stats::Stats, fail::Fail, progress::Progress, wait::Wait, image::Image],
}
