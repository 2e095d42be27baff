//! Shuyuan (书院): an open learning platform for community education.
//!
//! The codemap in miniature; `ARCHITECTURE.md` has the full map and the invariants.

/// Registration, sign-in, sessions and bearer tokens.
pub mod accounts;
/// Courses, their files and the catalog log.
pub mod catalog;
/// Learning circles: rooms, members, messages and the live socket.
pub mod circles;
/// The command line.
pub mod cli;
/// The typed configuration tree; the only reader of `SHUYUAN_*` variables.
pub mod config;
/// The database handle (SQLite or PostgreSQL through sqlx Any) and migrations.
pub mod db;
/// The bundled demo catalog for `serve --demo`.
pub mod demo;
/// `ApiError`, `ErrorCode` and the problem+json body.
pub mod error;
/// Text extraction from documents and subtitles, for search.
pub mod extract;
/// Federation between regional servers: identity, signed feed, harvester, remote media.
pub mod federation;
/// The router: capability routers merged, cross-cutting layers, extractors.
pub mod http;
/// Bulk import of courses from a directory with a manifest.
pub mod import;
/// Institutions and their staff.
pub mod institutions;
/// The object store: typed keys, streaming upload, ranged delivery.
pub mod media;
/// OAI-PMH 2.0 at `/oai`: the catalog for library harvesters.
pub mod oai;
/// Health, readiness and Prometheus metrics.
pub mod ops;
/// The tantivy index that follows the catalog log, and search queries.
pub mod search;
/// `Application::build` and `run_until_stopped`.
pub mod startup;
/// `AppState`, shared by every handler.
pub mod state;
/// Logging set-up.
pub mod telemetry;
/// `string_enum!` for closed vocabularies.
mod vocabulary;
/// The embedded web front-end.
pub mod web;

pub use config::Config;
pub use startup::Application;
