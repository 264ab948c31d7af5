//! retainwise, the application: configuration, database, object storage, the worker, the HTTP API
//! and the `retainwise` CLI. The data science lives in `retainwise-model`, the queue semantics in
//! `retainwise-queue`; this crate wires them to the outside world. `docs/ARCHITECTURE.md` is the map.
//!
//! Error layering: typed errors (`thiserror`) where a caller branches on the kind — [`http::ApiError`]
//! (the one conversion to HTTP status codes, which logs internals and never leaks them) and
//! [`worker::JobError`] (permanent vs transient, which decides ack vs retry); `anyhow` in `main`,
//! start-up wiring and the CLI, where an error is only reported.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod customer_index;
pub mod db;
pub mod deletion;
pub mod domain;
pub mod download_link;
pub mod erasure;
pub mod error_chain;
pub mod history;
pub mod http;
pub mod import_original;
pub mod log_safe;
pub mod message;
pub mod ops;
pub mod org_cli;
pub mod original_message;
pub mod outcomes;
pub mod output;
pub mod privacy;
pub mod registry;
pub mod retention;
pub mod schedules;
pub mod server;
pub mod storage;
pub mod stored_index;
pub mod telemetry;
pub mod time;
pub mod upload_client;
pub mod web;
pub mod webhooks;
pub mod worker;
