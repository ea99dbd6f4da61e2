//! The web UI over HTTP, in process: the real app (API + pages), real services on a
//! real database, a cookie jar that behaves like a browser's, and forms posted with the
//! CSRF token their page carried. One test binary, one module per area.

#![allow(clippy::unwrap_used)]

#[path = "../../../http/tests/common/mod.rs"]
mod common;

mod account;
mod admin;
mod browser;
mod inventory;
mod mail;
mod oauth_providers;
mod oidc;
mod teams;
