//! Registry notification envelopes (`POST` bodies of distribution's `notifications`
//! endpoints): media-type check and parsing into [`Notification`]s.
//!
//! Distribution 2.8 sends one event per envelope, but the format allows many, so the
//! parser takes any number up to [`MAX_EVENTS`]. Required fields are checked strictly
//! (a registry that sends events without `id` or `timestamp` is misconfigured or not a
//! registry); optional fields of an unexpected type are treated as absent, because
//! the raw event is kept anyway and later registry versions add and widen fields.

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The most events one envelope may carry; more is refused outright rather than
/// truncated, so the sender sees the failure and nothing is silently lost.
pub const MAX_EVENTS: usize = 10_000;

/// Envelope media type of distribution 2.x.
pub const EVENTS_V1: &str = "application/vnd.docker.distribution.events.v1+json";
/// Envelope media type of distribution 3.x.
pub const EVENTS_V2: &str = "application/vnd.docker.distribution.events.v2+json";

/// Manifest media types: events carrying one of these are about a manifest (an
/// image, an index or a list), everything else with a media type is a blob.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// Whether a notification POST with this `Content-Type` is an envelope we parse.
/// Parameters (`; charset=utf-8`) and case are ignored; a missing header is taken as
/// v1, as is plain `application/json` (what hand-written senders and proxies use).
pub fn is_supported_media_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = essence(content_type);
    [EVENTS_V1, EVENTS_V2, "application/json"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
}

/// Whether `media_type` (parameters ignored) is one of [`MANIFEST_MEDIA_TYPES`].
pub fn is_manifest_media_type(media_type: &str) -> bool {
    let essence = essence(media_type);
    MANIFEST_MEDIA_TYPES
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
}

/// The `type/subtype` part of a media type, without parameters or surrounding blanks.
fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or_default().trim()
}

/// One registry event, flattened to what Portcullis acts on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// The event's UUID (used to drop duplicate deliveries).
    pub id: String,
    /// `push`, `pull`, `delete`, `mount`, …, kept as sent.
    pub action: String,
    /// `timestamp`, as unix milliseconds.
    pub timestamp_ms: i64,
    /// `target.repository`, e.g. `ns/repo`.
    pub repository: String,
    /// `target.tag`.
    pub tag: Option<String>,
    /// `target.digest`.
    pub digest: Option<String>,
    /// `target.mediaType`.
    pub media_type: Option<String>,
    /// `target.size`.
    pub size: Option<i64>,
    /// `actor.name` (the token's `sub`); `None` for anonymous requests.
    pub actor: Option<String>,
    /// `request.host`: the registry host the client talked to, used to tell which
    /// registry sent the event.
    pub request_host: Option<String>,
    /// `request.method` (`HEAD` requests also produce `pull` events).
    pub request_method: Option<String>,
    /// `source.addr`: the registry instance's own `hostname:port`.
    pub source_addr: Option<String>,
    /// The event object exactly as received, for webhooks and the audit log.
    pub raw: Value,
}

impl Notification {
    /// Whether the event is about a manifest rather than a blob.
    ///
    /// Blob events carry `application/octet-stream` (2.8) or a layer/config media
    /// type; manifest events carry a manifest media type. Deletes carry no media type
    /// at all, only a digest (the manifest) or a tag (one per tag that pointed at it),
    /// and count as manifest events. A blob `DELETE` would look the same, but
    /// Portcullis never deletes single blobs and the tag/digest lookup of a delete
    /// simply finds nothing for one.
    pub fn is_manifest_event(&self) -> bool {
        match &self.media_type {
            Some(media_type) => is_manifest_media_type(media_type),
            None => self.action == "delete" && (self.digest.is_some() || self.tag.is_some()),
        }
    }
}

/// Why an envelope was refused; the message is one line and quotes no field values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is not JSON: {0}")]
    NotJson(String),
    #[error("envelope is not a JSON object")]
    NotAnObject,
    #[error("envelope has no \"events\" list")]
    NoEvents,
    #[error("envelope has {0} events, at most {MAX_EVENTS} are accepted")]
    TooManyEvents(usize),
    /// `index` counts from 0, like the position in the `events` array.
    #[error("event {index}: {problem}")]
    Event { index: usize, problem: String },
}

/// Parses a `{"events":[…]}` body. All events must be valid, or none is returned: a
/// registry resends the whole envelope when the answer is not 2xx, so accepting part of
/// it would duplicate the rest later.
pub fn parse_envelope(body: &[u8]) -> Result<Vec<Notification>, EnvelopeError> {
    let value: Value = serde_json::from_slice(body)
        // serde_json's syntax errors give only a position, never the content.
        .map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(EnvelopeError::NotAnObject);
    };
    let Some(Value::Array(events)) = envelope.remove("events") else {
        return Err(EnvelopeError::NoEvents);
    };
    if events.len() > MAX_EVENTS {
        return Err(EnvelopeError::TooManyEvents(events.len()));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            parse_event(event).map_err(|problem| EnvelopeError::Event { index, problem })
        })
        .collect()
}

fn parse_event(raw: Value) -> Result<Notification, String> {
    let Value::Object(event) = &raw else {
        return Err("not a JSON object".to_owned());
    };
    let id = required_str(event, "id", "id")?;
    let action = required_str(event, "action", "action")?;
    let timestamp = required_str(event, "timestamp", "timestamp")?;
    let timestamp_ms = OffsetDateTime::parse(&timestamp, &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .ok_or_else(|| "\"timestamp\" is not an RFC 3339 date-time".to_owned())?;
    let target = match event.get("target") {
        None | Some(Value::Null) => return Err("missing \"target\"".to_owned()),
        Some(Value::Object(target)) => target,
        Some(_) => return Err("\"target\" is not an object".to_owned()),
    };
    let repository = required_str(target, "repository", "target.repository")?;
    let notification = Notification {
        id,
        action,
        timestamp_ms,
        repository,
        tag: optional_str(Some(target), "tag"),
        digest: optional_str(Some(target), "digest"),
        media_type: optional_str(Some(target), "mediaType"),
        size: target.get("size").and_then(Value::as_i64),
        actor: optional_str(object(event, "actor"), "name"),
        request_host: optional_str(object(event, "request"), "host"),
        request_method: optional_str(object(event, "request"), "method"),
        source_addr: optional_str(object(event, "source"), "addr"),
        raw: Value::Null,
    };
    Ok(Notification {
        raw,
        ..notification
    })
}

/// A non-empty string field; `path` is how the message names it.
fn required_str(map: &Map<String, Value>, key: &str, path: &str) -> Result<String, String> {
    match map.get(key) {
        None | Some(Value::Null) => Err(format!("missing \"{path}\"")),
        Some(Value::String(s)) if s.is_empty() => Err(format!("\"{path}\" is empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("\"{path}\" is not a string")),
    }
}

/// A string field, `None` when absent, empty or not a string (Go's encoder writes
/// empty strings for unset fields in some versions, e.g. `actor.name` when anonymous).
fn optional_str(map: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    match map?.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn object<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    map.get(key).and_then(Value::as_object)
}

#[cfg(test)]
mod tests;
