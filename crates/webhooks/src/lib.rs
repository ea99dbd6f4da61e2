//! Outgoing webhooks: signing, encryption at rest of webhook credentials,
//! SSRF protection and the delivery client.
//!
//! Portus forwarded registry events to webhook URLs without any signature,
//! stored webhook passwords in plaintext and would connect to any address,
//! including the registry's own loopback and cloud metadata endpoints
//! (reference §8 and §17 item 7). This crate keeps the Portus request
//! semantics (method, content type, Basic auth, custom headers) and closes
//! those gaps. It knows nothing about storage or the domain model so the
//! service layer decides when to deliver and what to record.

pub mod deliver;
pub mod guard;
pub mod seal;
pub mod sign;

pub use deliver::{
    ContentType, Deliverer, DeliveryError, DeliveryOutcome, Method, WebhookRequest,
    check_custom_header, form_body, ip_literal, normalize_url, redirect_permitted,
};
pub use guard::AddressPolicy;
pub use seal::{SealError, Sealer};
// Re-exported because redirect_permitted takes one.
pub use url::Url;
