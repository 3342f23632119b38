//! Black-box tests of `chattrd`: the real server on 127.0.0.1:0 with real clients. One test
//! binary (so the server and its dependencies are linked once), one module per area.

// A test binary: its helpers, like its tests, fail the test by panicking, and it exports
// nothing, so `pub` in its modules only shares the harness between them.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod api;
mod assets;
mod auth;
mod backup;
mod channels;
mod cluster;
mod common;
mod config;
mod connections;
mod disk;
mod examples;
mod filter;
mod history;
mod http;
mod internals;
mod jwt;
mod limits;
mod memory;
mod metrics;
mod openapi;
mod opers;
mod process;
mod proxy;
mod restart;
mod resume;
mod services;
mod shutdown;
mod surreal_server;
mod tls;
mod webhooks;
mod websocket;
