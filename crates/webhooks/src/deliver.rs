//! The delivery client: one HTTP exchange per webhook attempt.
//!
//! Request semantics follow Portus (reference §8): the method and content
//! type come from the webhook, `Content-Type` is set from the content type
//! and custom headers may override it, Basic auth is sent only when both a
//! username and a password are configured, and the body is the raw registry
//! event. Deliberate differences:
//!
//! - GET sends no body (Portus sent the event as a GET body, which servers
//!   and proxies may drop or reject) and therefore no `Content-Type`.
//! - Every request carries `X-Portcullis-Delivery: <delivery id>`,
//!   `User-Agent: Portcullis-Webhook/<version>` and, when the webhook has a
//!   signing secret, `X-Portcullis-Signature` over exactly the bytes sent.
//! - Destinations are checked against an [`AddressPolicy`] (SSRF): every
//!   resolved address, IP-literal URLs and every redirect target.
//! - At most [`MAX_REDIRECTS`] redirects, http/https only.
//!
//! The outcome records what was sent and received for the delivery log,
//! with credentials redacted and the response body capped.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::dns::{Addrs, Name, Resolve};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::{Host, Url};

use crate::guard::AddressPolicy;
use crate::sign::{SIGNATURE_HEADER, signature_header};

/// Redirects followed before a delivery fails.
pub const MAX_REDIRECTS: usize = 3;
/// How much of a response body is kept in the outcome.
pub const RESPONSE_BODY_LIMIT: usize = 64 * 1024;
/// Header carrying the delivery id, so receivers can deduplicate retries.
pub const DELIVERY_HEADER: &str = "X-Portcullis-Delivery";
/// `User-Agent` sent with every delivery.
pub const USER_AGENT: &str = concat!("Portcullis-Webhook/", env!("CARGO_PKG_VERSION"));

/// Headers a webhook's custom headers may not set. Ours are excluded so a
/// receiver can trust them; the transport ones because the HTTP client owns
/// message framing and the connection, and a wrong `Host` or
/// `Content-Length` would turn a delivery into request smuggling.
const RESERVED_HEADERS: &[&str] = &[
    "x-portcullis-signature",
    "x-portcullis-delivery",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
];

/// HTTP method of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Body encoding of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json`: the event JSON, unchanged.
    Json,
    /// `application/x-www-form-urlencoded`: see [`form_body`].
    Form,
}

impl ContentType {
    /// The media type sent as `Content-Type`.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// One delivery attempt, with the webhook's current settings and secrets
/// already opened.
#[derive(Clone)]
pub struct WebhookRequest {
    pub url: String,
    pub method: Method,
    pub content_type: ContentType,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Custom headers in order; a later header replaces an earlier one of
    /// the same name (case-insensitive). See [`check_custom_header`].
    pub headers: Vec<(String, String)>,
    /// The registry event JSON.
    pub body: Vec<u8>,
    pub signing_secret: Option<Vec<u8>>,
    /// Timestamp placed in the signature.
    pub unix_seconds: i64,
    pub delivery_id: String,
}

impl fmt::Debug for WebhookRequest {
    // Secrets stay out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("unix_seconds", &self.unix_seconds)
            .field("delivery_id", &self.delivery_id)
            .finish()
    }
}

/// What happened during one delivery, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Final HTTP status; `None` when no response arrived (refused by the
    /// address policy, connection failure, timeout, refused redirect).
    pub status: Option<u16>,
    /// Headers Portcullis set, in order, with `Authorization` values
    /// redacted (`Basic [redacted]`). The transport adds `Host` and
    /// `Content-Length`, which are not listed.
    pub request_headers: Vec<(String, String)>,
    /// The body sent (lossy UTF-8); empty for GET.
    pub request_body: String,
    pub response_headers: Vec<(String, String)>,
    /// The first [`RESPONSE_BODY_LIMIT`] bytes of the response, lossy UTF-8.
    pub response_body: String,
    pub duration: Duration,
    /// One line describing why the delivery did not complete; `None` when a
    /// response (of any status) was received in full.
    pub error: Option<String>,
}

impl DeliveryOutcome {
    /// A 2xx response was received. (Portus counted only 200.)
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The delivery client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
}

/// Why the policy stopped a delivery. A distinct type so the message can be
/// found in reqwest's error chain and shown as is.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("refused: {0} resolves only to private/loopback addresses")]
    Resolves(String),
    #[error("refused: {0} is a private/loopback address")]
    Literal(IpAddr),
    #[error("refused: redirect to {0} (only http/https to permitted addresses are followed)")]
    Redirect(String),
    #[error("refused: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
struct ResolveFailed {
    host: String,
    reason: String,
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// Resolves with the system resolver and drops addresses the policy
/// refuses. The connection is made to the filtered addresses themselves, so
/// a name cannot pass the check and then resolve elsewhere (DNS rebinding).
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Pin<Box<dyn Future<Output = Result<Addrs, BoxError>> + Send>> {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveFailed {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            if resolved.is_empty() {
                return Err(ResolveFailed {
                    host,
                    reason: "no addresses".to_owned(),
                }
                .into());
            }
            let permitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| policy.permits(addr.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(Refused::Resolves(host).into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether a redirect to `url` may be followed: http or https, no userinfo,
/// and an IP-literal host must be permitted by `policy`. Host names are
/// left to the resolver, which applies the same policy to their addresses.
#[must_use]
pub fn redirect_permitted(policy: &AddressPolicy, url: &Url) -> bool {
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    // Credentials in a Location header are the server's, not the webhook
    // owner's; we refuse them as we refuse them in webhook URLs.
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.host() {
        Some(Host::Ipv4(ip)) => policy.permits(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => policy.permits(IpAddr::V6(ip)),
        Some(Host::Domain(domain)) => !domain.is_empty(),
        None => false,
    }
}

/// The address of a URL whose host is an IP literal.
#[must_use]
pub fn ip_literal(url: &Url) -> Option<IpAddr> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// Normalises a webhook URL as entered by a user.
///
/// A missing scheme gets `http://` (as Portus did); only http and https are
/// accepted; there must be a host; userinfo (`user:pass@`) is refused
/// because credentials belong in the webhook's username and password, where
/// they are stored sealed and redacted from delivery logs. Returns the URL
/// in canonical form (lower-case scheme and host, IP literals normalised).
pub fn normalize_url(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("the URL is empty".to_owned());
    }
    // Only "://" marks an explicit scheme: "example.com:8080/hook" would
    // otherwise parse as scheme "example.com".
    let candidate = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let url = Url::parse(&candidate).map_err(|e| format!("invalid URL {trimmed:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported URL scheme {:?}: only http and https are allowed",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not contain a user name or password; set the webhook's username and password instead"
                .to_owned(),
        );
    }
    match url.host() {
        Some(Host::Domain("")) | None => Err(format!("the URL {trimmed:?} has no host")),
        Some(_) => Ok(url.into()),
    }
}

/// Checks a custom header as configured on a webhook, so the service can
/// refuse it when the webhook is saved rather than on every delivery.
pub fn check_custom_header(name: &str, value: &str) -> Result<(), String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(format!(
            "header {name} is set by Portcullis and cannot be overridden"
        ));
    }
    // The value is not echoed: custom headers often carry tokens.
    HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
    Ok(())
}

/// The `application/x-www-form-urlencoded` body for an event.
///
/// Each top-level field of the event object becomes one `key=value` pair:
/// string values as they are, every other value (numbers, booleans, null,
/// nested objects such as `target` and arrays) as its compact JSON text.
/// Portus encoded the event hash with Typhoeus, which flattens nested hashes
/// into `target[repository]=…` keys; we keep the structure as JSON so no
/// information is lost and the receiver needs only a JSON parser for nested
/// values. Fields appear in key order.
pub fn form_body(event_json: &[u8]) -> Result<Vec<u8>, String> {
    let event: serde_json::Value = serde_json::from_slice(event_json)
        .map_err(|e| format!("the event is not valid JSON: {e}"))?;
    let serde_json::Value::Object(fields) = event else {
        return Err("a form-encoded webhook needs a JSON object event".to_owned());
    };
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &fields {
        match value {
            serde_json::Value::String(s) => form.append_pair(key, s),
            other => form.append_pair(key, &other.to_string()),
        };
    }
    Ok(form.finish().into_bytes())
}

/// Sends webhook deliveries. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    policy: AddressPolicy,
    timeout: Duration,
}

impl Deliverer {
    /// A client that applies `policy` to every destination and gives each
    /// delivery `timeout` for the whole exchange (connect, redirects, body).
    pub fn new(policy: AddressPolicy, timeout: Duration) -> Result<Self, DeliveryError> {
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            // previous() holds the original URL and every hop followed so
            // far, so this allows exactly MAX_REDIRECTS hops.
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused::TooManyRedirects);
            }
            if !redirect_permitted(&policy, attempt.url()) {
                let target = attempt.url().to_string();
                return attempt.error(Refused::Redirect(target));
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver { policy })
            // A proxy would resolve and connect on our behalf, bypassing the
            // resolver check, so environment proxies are ignored.
            .no_proxy()
            .redirect(redirects)
            // The Referer would leak the webhook URL (often with a token in
            // the query) to redirect targets.
            .referer(false)
            // Each attempt is recorded as one delivery; hidden transport
            // retries would send the event more often than the log says.
            .retry(reqwest::retry::never())
            .timeout(timeout)
            .build()
            .map_err(|e| DeliveryError::Client(one_line(&e)))?;
        Ok(Self {
            client,
            policy,
            timeout,
        })
    }

    /// Performs one delivery. Never fails: every problem is recorded in the
    /// outcome so the service can store it as a delivery row.
    pub async fn deliver(&self, req: &WebhookRequest) -> DeliveryOutcome {
        let started = Instant::now();
        let mut outcome = DeliveryOutcome {
            status: None,
            request_headers: Vec::new(),
            request_body: String::new(),
            response_headers: Vec::new(),
            response_body: String::new(),
            duration: Duration::ZERO,
            error: None,
        };
        if let Err(message) = self.exchange(req, &mut outcome).await {
            outcome.error = Some(message);
        }
        outcome.duration = started.elapsed();
        outcome
    }

    async fn exchange(
        &self,
        req: &WebhookRequest,
        outcome: &mut DeliveryOutcome,
    ) -> Result<(), String> {
        let url = normalize_url(&req.url)?;
        let url = Url::parse(&url).map_err(|e| format!("invalid URL: {e}"))?;

        let body = match (req.method, req.content_type) {
            (Method::Get, _) => Vec::new(),
            (Method::Post, ContentType::Json) => req.body.clone(),
            (Method::Post, ContentType::Form) => form_body(&req.body)?,
        };
        let headers = request_headers(req, &body)?;
        outcome.request_headers = headers
            .iter()
            .map(|(name, value)| (name.clone(), redact(name, value)))
            .collect();
        outcome.request_body = String::from_utf8_lossy(&body).into_owned();

        // reqwest does not call the resolver for IP literals, so they are
        // checked here, before anything is sent.
        if let Some(ip) = ip_literal(&url).filter(|ip| !self.policy.permits(*ip)) {
            return Err(Refused::Literal(ip).to_string());
        }

        let mut map = HeaderMap::with_capacity(headers.len());
        for (name, value) in &headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            if name == reqwest::header::AUTHORIZATION {
                // Keeps the value out of reqwest's and hyper's debug output.
                value.set_sensitive(true);
            }
            map.insert(name, value);
        }
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut request = self.client.request(method, url).headers(map);
        if req.method == Method::Post {
            request = request.body(body);
        }

        let mut response = request.send().await.map_err(|e| self.describe(&e))?;
        outcome.status = Some(response.status().as_u16());
        outcome.response_headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();

        // Read only what is kept, so a huge or endless response cannot
        // exhaust memory; the rest is dropped with the connection.
        let mut kept = Vec::new();
        let read = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = RESPONSE_BODY_LIMIT - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if kept.len() >= RESPONSE_BODY_LIMIT {
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(self.describe(&e)),
            }
        };
        outcome.response_body = String::from_utf8_lossy(&kept).into_owned();
        read
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        let mut source: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                return refused.to_string();
            }
            source = e.source();
        }
        if error.is_timeout() {
            return format!("timed out after {} ms", self.timeout.as_millis());
        }
        one_line(error)
    }
}

/// An error and its causes on one line, skipping causes whose text the
/// previous message already contains (reqwest and hyper often repeat).
fn one_line(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(error);
    while let Some(e) = source {
        let text = e.to_string().replace(['\r', '\n'], " ");
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Sets `name` to `value`, replacing an entry of the same name
/// (case-insensitive) in place so the order stays stable.
fn set(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    match headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some(entry) => *entry = (name.to_owned(), value),
        None => headers.push((name.to_owned(), value)),
    }
}

fn request_headers(req: &WebhookRequest, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    if req.method == Method::Post {
        set(
            &mut headers,
            "Content-Type",
            req.content_type.mime().to_owned(),
        );
    }
    set(&mut headers, "User-Agent", USER_AGENT.to_owned());
    for (name, value) in &req.headers {
        check_custom_header(name, value)?;
        set(&mut headers, name, value.clone());
    }
    // Configured credentials win over a custom Authorization header: the
    // username/password fields are the explicit setting for this.
    if let (Some(user), Some(password)) = (&req.username, &req.password) {
        let token = STANDARD.encode(format!("{user}:{password}"));
        set(&mut headers, "Authorization", format!("Basic {token}"));
    }
    HeaderValue::from_str(&req.delivery_id)
        .map_err(|_| "the delivery id is not a valid header value".to_owned())?;
    set(&mut headers, DELIVERY_HEADER, req.delivery_id.clone());
    if let Some(secret) = &req.signing_secret {
        set(
            &mut headers,
            SIGNATURE_HEADER,
            signature_header(secret, req.unix_seconds, body),
        );
    }
    Ok(headers)
}

fn redact(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        // Keep the scheme: it tells the reader which kind of credential was
        // sent without revealing it.
        match value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} [redacted]"),
            None => "[redacted]".to_owned(),
        }
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy {
        allow_private_networks: false,
    };
    const LAX: AddressPolicy = AddressPolicy {
        allow_private_networks: true,
    };

    #[test]
    fn normalize_url_table() {
        let ok = [
            ("example.com/hook", "http://example.com/hook"),
            ("example.com", "http://example.com/"),
            (
                "example.com:8080/hook?x=1",
                "http://example.com:8080/hook?x=1",
            ),
            ("  https://Example.COM/Hook  ", "https://example.com/Hook"),
            ("HTTP://example.com", "http://example.com/"),
            ("http://example.com:80/", "http://example.com/"),
            ("10.0.0.1:9000/x", "http://10.0.0.1:9000/x"),
            ("http://[::1]:8080/", "http://[::1]:8080/"),
            // Alternative IPv4 spellings are canonicalised, so the address
            // policy sees the real address.
            ("http://2130706433/", "http://127.0.0.1/"),
            ("http://0x7f.1/", "http://127.0.0.1/"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_url(input).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            ("", "empty"),
            ("   ", "empty"),
            ("ftp://example.com/", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("gopher://x/", "only http and https"),
            (
                "http://user:pw@example.com/",
                "username and password instead",
            ),
            ("http://user@example.com/", "username and password instead"),
            ("user:pw@example.com", "username and password instead"),
            ("http://", "invalid URL"),
            ("http://exa mple.com/", "invalid URL"),
            ("http://example.com:99999/", "invalid URL"),
        ];
        for (input, want) in bad {
            let err = normalize_url(input).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn redirect_permitted_table() {
        let rows: &[(&str, bool, bool)] = &[
            // (target, strict, private allowed)
            ("https://example.com/next", true, true),
            ("http://example.com:8080/next", true, true),
            ("http://93.184.215.14/", true, true),
            ("http://[2606:4700:4700::1111]/", true, true),
            // Names are left to the resolver, which applies the policy.
            ("http://localhost/", true, true),
            ("http://127.0.0.1/", false, true),
            ("http://127.1/", false, true),
            ("http://2130706433/", false, true),
            ("http://169.254.169.254/latest/meta-data/", false, true),
            ("http://10.0.0.1/", false, true),
            ("http://[::1]/", false, true),
            ("http://[::ffff:127.0.0.1]/", false, true),
            ("http://[fd00::1]/", false, true),
            ("http://[64:ff9b::a9fe:a9fe]/", false, true),
            ("http://0.0.0.0/", false, false),
            ("http://[::]/", false, false),
            ("http://224.0.0.1/", false, false),
            ("file:///etc/passwd", false, false),
            ("ftp://example.com/", false, false),
            ("gopher://example.com/", false, false),
            ("data:text/plain,hi", false, false),
            ("http://user:pw@example.com/", false, false),
        ];
        for &(target, strict, lax) in rows {
            let url = Url::parse(target).unwrap();
            assert_eq!(redirect_permitted(&STRICT, &url), strict, "strict {target}");
            assert_eq!(redirect_permitted(&LAX, &url), lax, "lax {target}");
        }
    }

    #[test]
    fn form_body_encodes_top_level_fields() {
        let event = br#"{"id":"e1","action":"push","target":{"repository":"a/b","tag":"1.0"},"n":3,"ok":true,"none":null,"list":[1,"x"],"amp":"a&b=c d"}"#;
        let body = String::from_utf8(form_body(event).unwrap()).unwrap();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("id"), Some("e1"));
        assert_eq!(get("action"), Some("push"));
        assert_eq!(get("target"), Some(r#"{"repository":"a/b","tag":"1.0"}"#));
        assert_eq!(get("n"), Some("3"));
        assert_eq!(get("ok"), Some("true"));
        assert_eq!(get("none"), Some("null"));
        assert_eq!(get("list"), Some(r#"[1,"x"]"#));
        assert_eq!(get("amp"), Some("a&b=c d"));
        assert_eq!(pairs.len(), 8);
        assert!(body.contains("amp=a%26b%3Dc+d"), "{body}");

        assert_eq!(form_body(b"{}").unwrap(), b"");
        assert!(form_body(b"[1]").unwrap_err().contains("JSON object"));
        assert!(
            form_body(b"not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn custom_header_check() {
        for ok in [
            "X-Token",
            "Content-Type",
            "Authorization",
            "User-Agent",
            "x-any",
        ] {
            assert_eq!(check_custom_header(ok, "v"), Ok(()), "{ok}");
        }
        for reserved in [
            "Host",
            "host",
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
            "X-Portcullis-Signature",
            "x-portcullis-delivery",
        ] {
            let err = check_custom_header(reserved, "v").unwrap_err();
            assert!(err.contains("cannot be overridden"), "{reserved}: {err}");
        }
        assert!(
            check_custom_header("bad name", "v")
                .unwrap_err()
                .contains("invalid header name")
        );
        assert!(check_custom_header("", "v").is_err());
        let err = check_custom_header("X-Token", "secret\r\nInjected: 1").unwrap_err();
        assert!(!err.contains("secret"), "value must not be echoed: {err}");
    }

    fn request() -> WebhookRequest {
        WebhookRequest {
            url: "http://example.com/hook".to_owned(),
            method: Method::Post,
            content_type: ContentType::Json,
            username: None,
            password: None,
            headers: Vec::new(),
            body: br#"{"action":"push"}"#.to_vec(),
            signing_secret: None,
            unix_seconds: 1_700_000_000,
            delivery_id: "d-1".to_owned(),
        }
    }

    #[test]
    fn header_assembly() {
        let mut req = request();
        req.headers = vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("X-A".to_owned(), "1".to_owned()),
            ("x-a".to_owned(), "2".to_owned()),
            ("Authorization".to_owned(), "Bearer custom".to_owned()),
        ];
        req.username = Some("u".to_owned());
        req.password = Some("p".to_owned());
        req.signing_secret = Some(b"s".to_vec());
        let headers = request_headers(&req, b"body").unwrap();
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "User-Agent",
                "x-a",
                "Authorization",
                "X-Portcullis-Delivery",
                "X-Portcullis-Signature"
            ]
        );
        assert_eq!(headers[0].1, "text/plain");
        assert_eq!(
            headers[1].1,
            format!("Portcullis-Webhook/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(headers[2].1, "2");
        assert_eq!(headers[3].1, "Basic dTpw");
        assert_eq!(headers[4].1, "d-1");
        assert_eq!(headers[5].1, signature_header(b"s", 1_700_000_000, b"body"));

        // Only a username: no Basic auth, the custom header stays.
        req.password = None;
        let headers = request_headers(&req, b"").unwrap();
        assert!(headers.contains(&("Authorization".to_owned(), "Bearer custom".to_owned())));

        // GET has no Content-Type unless a custom header sets one.
        let mut get = request();
        get.method = Method::Get;
        let headers = request_headers(&get, b"").unwrap();
        assert!(
            !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        );

        let mut bad = request();
        bad.headers = vec![("Host".to_owned(), "internal".to_owned())];
        assert!(request_headers(&bad, b"").unwrap_err().contains("Host"));
        let mut bad = request();
        bad.delivery_id = "a\nb".to_owned();
        assert!(request_headers(&bad, b"").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("Authorization", "Basic dTpw"), "Basic [redacted]");
        assert_eq!(redact("authorization", "Bearer abc"), "Bearer [redacted]");
        assert_eq!(redact("Authorization", "token"), "[redacted]");
        assert_eq!(redact("X-Token", "abc"), "abc");
    }

    #[test]
    fn debug_hides_secrets() {
        let mut req = request();
        req.password = Some("hunter2".to_owned());
        req.signing_secret = Some(b"whsec".to_vec());
        req.headers = vec![("X-Token".to_owned(), "tok123".to_owned())];
        let debug = format!("{req:?}");
        for secret in ["hunter2", "whsec", "tok123", "119, 104"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn succeeded_is_2xx() {
        let mut outcome = DeliveryOutcome {
            status: None,
            request_headers: Vec::new(),
            request_body: String::new(),
            response_headers: Vec::new(),
            response_body: String::new(),
            duration: Duration::ZERO,
            error: None,
        };
        for (status, want) in [
            (None, false),
            (Some(199), false),
            (Some(200), true),
            (Some(204), true),
            (Some(299), true),
            (Some(301), false),
            (Some(404), false),
            (Some(500), false),
        ] {
            outcome.status = status;
            assert_eq!(outcome.succeeded(), want, "{status:?}");
        }
    }
}
