//! End-to-end tests: the real server in-process on 127.0.0.1:0, real wasm plugins built from
//! `plugins-src/`, and real MCP clients (rmcp's) over Streamable HTTP and legacy SSE.

// MCP logging is deprecated in 2026-07-28 but still served to handshake-era clients; the tests
// exercise it.
#![allow(deprecated)]
// A test binary exports nothing; `pub` here only shares helpers between its modules.
#![allow(unreachable_pub)]

mod access;
mod approvals;
mod approvals_admin;
mod architecture;
mod bare_names;
mod botfather;
mod capabilities;
mod clients;
mod compile_cache;
mod containment;
mod content;
mod demo;
mod devops;
mod escapes;
mod front_door;
mod identity;
mod jobs;
mod jwt;
mod legacy_http;
mod listing;
mod loading;
mod network;
mod operations;
mod pinning;
mod policy_reload;
mod protocol_faults;
mod reload;
mod scaffold;
mod stalled_readers;
mod support;
mod tutorial;
mod validation;
mod worker_queue;
