#![cfg_attr(test, allow(clippy::unwrap_used))]
//! Everything Portcullis needs to talk to a Docker/OCI distribution registry:
//!
//! - [`keys`]: the token signing key and its certificate (load, generate, key IDs),
//! - [`jwt`]: registry bearer tokens (JOSE header with `x5c` + `kid`, claims),
//! - [`registry_config`]: a ready-to-use distribution 2.8 `config.yml`,
//! - [`client`]: the "is the registry reachable and speaking v2?" check,
//! - [`notifications`]: parsing the registry's notification envelopes,
//! - [`inventory_client`]: the v2 API client for catalog, tags, manifests and deletes,
//! - [`tls`]: extra certificate authorities for TLS to registries.
//!
//! This crate deliberately depends on no other workspace crate.

pub mod client;
pub mod inventory_client;
pub mod jwt;
pub mod keys;
pub mod notifications;
pub mod registry_config;
pub mod tls;
