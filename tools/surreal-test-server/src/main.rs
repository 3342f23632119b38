//! The stock SurrealDB server, built from the `surrealdb-server` crate with only in-memory storage.
//!
//! The test suite runs `surreal-test-server start --bind 127.0.0.1:<port> … memory` to check that chattrd works
//! against a SurrealDB server over `ws://`, the way it is deployed at scale. Same CLI as `surreal`.

// The server's async state machines are deep; the `surreal` binary sets the same limit.
#![recursion_limit = "256"]

use std::process::ExitCode;

fn main() -> ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
