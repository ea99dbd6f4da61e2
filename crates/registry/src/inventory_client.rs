//! A client for the registry's v2 API, for the background worker and catalog sync:
//! catalog and tag lists (with `Link` paging), manifest details (digest, media type,
//! size, platforms), digest lookups and manifest deletion.
//!
//! Every request carries a bearer token from a [`TokenSource`] for exactly the scope it
//! needs; Portcullis signs its own tokens in-process, so nothing is cached but the
//! connection pool of one `reqwest::Client`. Tokens never appear in errors: messages
//! name the method, host and path only.

use crate::client::describe;
use crate::notifications::is_manifest_media_type;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LINK};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What manifest requests accept. Distribution 2.8 answers 404 for an OCI manifest
/// unless the OCI types are listed; schema1 comes last so that 2.8 never converts a
/// schema2 manifest down to it.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Largest manifest, config blob or list page read; more is refused as a protocol
/// error (real manifests are a few KiB; this only bounds memory).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Child manifests of an index fetched at the same time.
const CHILD_CONCURRENCY: usize = 4;

/// Bound on `Link` pages followed in one listing, against a registry that keeps
/// answering with a next page (10,000 repositories at n=100 are 100 pages).
const MAX_PAGES: usize = 100_000;

/// Media types given to manifests that omit `mediaType` and come with a generic
/// `Content-Type`.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Bearer tokens for the registry, one per request. Synchronous because Portcullis
/// signs its own tokens in-process. Scopes look like `repository:ns/repo:pull`,
/// `repository:ns/repo:delete` and `registry:catalog:*`. The `Err` text ends up in a
/// [`ClientError::Token`] message, so it must not contain secrets.
pub trait TokenSource: Send + Sync {
    fn token(&self, scope: &str) -> Result<String, String>;
}

/// Why a registry call failed. Messages are one line, name the method, host and path,
/// and never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// 404: the repository, tag or manifest does not exist (any more).
    #[error("{0}")]
    NotFound(String),
    /// 401/403: the registry refused our token (wrong key, issuer or service).
    #[error("{0}")]
    Unauthorized(String),
    /// 405 on a manifest delete: `storage.delete.enabled` is off in the registry.
    #[error("{0}")]
    DeleteDisabled(String),
    /// Connection errors, timeouts, 429 and 5xx: worth retrying later.
    #[error("{0}")]
    Unavailable(String),
    /// An answer that does not follow the v2 API (status, headers or body).
    #[error("{0}")]
    Protocol(String),
    /// The [`TokenSource`] could not produce a token.
    #[error("{0}")]
    Token(String),
    /// A repository name, tag or digest that cannot be put into a v2 URL.
    #[error("{0}")]
    InvalidReference(String),
    /// The client could not be set up (bad hostname, TLS initialisation).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// Whether retrying the same call later may succeed without anything changing on
    /// our side (connection problems, timeouts, overload, server errors).
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unavailable(_))
    }
}

/// A manifest as the inventory records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestInfo {
    /// `sha256:…` of the manifest bytes (`Docker-Content-Digest`).
    pub digest: String,
    pub media_type: String,
    /// The config blob of an image manifest (Portus's `image_id`); `None` for indexes,
    /// lists and schema1.
    pub config_digest: Option<String>,
    /// Image: config + layers. Index/list: the sum over [`ManifestInfo::platforms`].
    /// Schema1 manifests carry no sizes: 0.
    pub size: i64,
    /// Index/list: one per child image (attestations skipped). Image: one entry when
    /// the config blob could be read, else none.
    pub platforms: Vec<Platform>,
}

/// One platform image of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// The child image manifest's digest (for a plain image, the image's own).
    pub digest: String,
    /// That image's config + layers.
    pub size: i64,
}

/// The v2 API client of one registry. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// `{scheme}://{hostname}/`; paths are joined onto it and `Link`s must stay on it.
    base: Url,
    hostname: String,
    timeout: Duration,
    tokens: Arc<dyn TokenSource>,
    /// Platforms read from config blobs, by config digest. A blob's digest fixes its
    /// content, so the answer never changes; tags of one image (`latest`, `v1`, …) and
    /// a sync's many tags of few builds then cost one blob read, not one per tag.
    platforms: Arc<std::sync::Mutex<HashMap<String, Arc<OnceCell<ConfigPlatform>>>>>,
}

/// `os`, `architecture`, `variant` of an image config.
type ConfigPlatform = (String, String, Option<String>);

/// Entries [`RegistryClient::platforms`] holds before it starts over.
const PLATFORM_CACHE_ENTRIES: usize = 10_000;

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for `hostname` (`host[:port]`, as registered in Portcullis); `timeout`
    /// bounds each request, connection included.
    pub fn new(
        hostname: &str,
        use_ssl: bool,
        timeout: Duration,
        tokens: Arc<dyn TokenSource>,
        roots: &crate::tls::TrustedRoots,
    ) -> Result<Self, ClientError> {
        // A hostname with a path, query, fragment or credentials would silently change
        // where (and to whom) requests go.
        if hostname.is_empty() || hostname.contains(['/', '?', '#', '@', ' ']) {
            return Err(ClientError::Config(format!(
                "registry hostname {hostname:?} is not host[:port]"
            )));
        }
        let scheme = if use_ssl { "https" } else { "http" };
        let base = Url::parse(&format!("{scheme}://{hostname}/")).map_err(|e| {
            ClientError::Config(format!(
                "registry hostname {hostname:?} is not host[:port]: {e}"
            ))
        })?;
        let http = roots
            .apply(reqwest::Client::builder())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client setup failed: {e}")))?;
        Ok(Self {
            http,
            base,
            hostname: hostname.to_owned(),
            timeout,
            tokens,
            platforms: Arc::default(),
        })
    }

    /// Every repository name (`GET /v2/_catalog?n=…`, following `Link` pages). Fails
    /// as a whole when any page fails: a partial catalog is never returned.
    pub async fn catalog(&self, page_size: u32) -> Result<Vec<String>, ClientError> {
        let url = self.url(&format!("v2/_catalog?n={}", page_size.max(1)))?;
        self.paged(url, "registry:catalog:*", "repositories").await
    }

    /// Every tag of `repository` (`GET /v2/<name>/tags/list?n=…`, following `Link`
    /// pages; 2.8 ignores `n` and sends all at once). `Err(NotFound)` when the
    /// repository does not exist, `Ok(vec![])` when it exists without tags.
    pub async fn tags(&self, repository: &str, page_size: u32) -> Result<Vec<String>, ClientError> {
        check_repository(repository)?;
        let url = self.url(&format!("v2/{repository}/tags/list?n={}", page_size.max(1)))?;
        self.paged(url, &pull_scope(repository), "tags").await
    }

    /// Digest, media type, config, size and platforms of a manifest; for an index or
    /// list every child image is fetched too (at most 4 at a time).
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<ManifestInfo, ClientError> {
        check_repository(repository)?;
        check_reference(reference)?;
        let fetched = self.fetch_manifest(repository, reference).await?;
        match fetched.parsed {
            Parsed::Image(image) => {
                let platforms = match self.config_platform(repository, &image.config_digest).await {
                    Some((os, architecture, variant)) => vec![Platform {
                        os,
                        architecture,
                        variant,
                        digest: fetched.digest.clone(),
                        size: image.size,
                    }],
                    None => Vec::new(),
                };
                Ok(ManifestInfo {
                    digest: fetched.digest,
                    media_type: fetched.media_type,
                    config_digest: Some(image.config_digest),
                    size: image.size,
                    platforms,
                })
            }
            Parsed::Index(children) => {
                let platforms = self.children(repository, children).await?;
                let size = platforms
                    .iter()
                    .try_fold(0i64, |sum, p| sum.checked_add(p.size))
                    .ok_or_else(|| {
                        ClientError::Protocol(format!(
                            "{}: platform sizes overflow",
                            self.at(&Method::GET, &manifest_path(repository, reference))
                        ))
                    })?;
                Ok(ManifestInfo {
                    digest: fetched.digest,
                    media_type: fetched.media_type,
                    config_digest: None,
                    size,
                    platforms,
                })
            }
            Parsed::Schema1 => Ok(ManifestInfo {
                digest: fetched.digest,
                media_type: fetched.media_type,
                config_digest: None,
                size: 0,
                platforms: Vec::new(),
            }),
        }
    }

    /// The digest `reference` resolves to (`HEAD`, `Docker-Content-Digest`).
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<String, ClientError> {
        check_repository(repository)?;
        check_reference(reference)?;
        let path = manifest_path(repository, reference);
        let response = self
            .request(
                Method::HEAD,
                &path,
                &pull_scope(repository),
                Some(MANIFEST_ACCEPT),
            )
            .await?;
        header_digest(response.headers()).ok_or_else(|| {
            ClientError::Protocol(format!(
                "{}: no Docker-Content-Digest header",
                self.at(&Method::HEAD, &path)
            ))
        })
    }

    /// `DELETE /v2/<name>/manifests/<digest>`: removes the manifest and, with it, every
    /// tag pointing at it (the registry has no tag-only delete).
    pub async fn delete_manifest(&self, repository: &str, digest: &str) -> Result<(), ClientError> {
        check_repository(repository)?;
        if !is_digest(digest) {
            return Err(ClientError::InvalidReference(format!(
                "{digest:?} is not a digest (deletes are by digest only)"
            )));
        }
        let path = manifest_path(repository, digest);
        let scope = format!("repository:{repository}:delete");
        // The 405 of a registry with deletes disabled is mapped in `status_error`.
        self.request(Method::DELETE, &path, &scope, None)
            .await
            .map(drop)
    }

    // ----- internals -----

    fn url(&self, path_and_query: &str) -> Result<Url, ClientError> {
        self.base.join(path_and_query).map_err(|e| {
            ClientError::InvalidReference(format!("cannot build a URL for {path_and_query}: {e}"))
        })
    }

    /// `METHOD host/path`, how messages name a request.
    fn at(&self, method: &Method, path_and_query: &str) -> String {
        format!("{method} {}/{path_and_query}", self.hostname)
    }

    fn at_url(&self, method: &Method, url: &Url) -> String {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        format!("{method} {}{path}", self.hostname)
    }

    async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        scope: &str,
        accept: Option<&str>,
    ) -> Result<Response, ClientError> {
        let url = self.url(path_and_query)?;
        self.request_url(method, url, scope, accept).await
    }

    /// Sends one request with a fresh token and maps a non-2xx status to an error.
    /// Redirects are followed (blobs may live in object storage); reqwest drops the
    /// `Authorization` header when a redirect leaves the host.
    async fn request_url(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        accept: Option<&str>,
    ) -> Result<Response, ClientError> {
        let at = self.at_url(&method, &url);
        let token = self.tokens.token(scope).map_err(|reason| {
            ClientError::Token(format!("{at}: no token for {scope}: {reason}"))
        })?;
        let mut request = self.http.request(method.clone(), url).bearer_auth(token);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let response = request.send().await.map_err(|e| {
            ClientError::Unavailable(format!(
                "{at}: {}",
                describe(&self.hostname, self.timeout, &e)
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let codes = if method == Method::HEAD {
            String::new()
        } else {
            error_codes(&read_limited(response, &at).await.unwrap_or_default())
        };
        Err(status_error(&method, status, &at, &codes))
    }

    async fn paged(
        &self,
        first: Url,
        scope: &str,
        field: &str,
    ) -> Result<Vec<String>, ClientError> {
        let mut url = first;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let at = self.at_url(&Method::GET, &url);
            let response = self
                .request_url(Method::GET, url.clone(), scope, None)
                .await?;
            let next = next_link(response.headers());
            let body = read_limited(response, &at).await?;
            let page = parse_page(&body, field)
                .map_err(|problem| ClientError::Protocol(format!("{at}: {problem}")))?;
            let got = page.len();
            items.extend(page);
            let Some(next) = next else {
                return Ok(items);
            };
            let next_url = url
                .join(&next)
                .map_err(|e| ClientError::Protocol(format!("{at}: unusable Link {next:?}: {e}")))?;
            // The token is for this registry only; never send it elsewhere.
            if next_url.origin() != self.base.origin() {
                return Err(ClientError::Protocol(format!(
                    "{at}: Link points to another host, not following it"
                )));
            }
            if got == 0 || next_url == url {
                return Err(ClientError::Protocol(format!(
                    "{at}: Link to a next page without progress"
                )));
            }
            url = next_url;
        }
        Err(ClientError::Protocol(format!(
            "{}: more than {MAX_PAGES} pages",
            self.at_url(&Method::GET, &url)
        )))
    }

    async fn fetch_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Fetched, ClientError> {
        let path = manifest_path(repository, reference);
        let at = self.at(&Method::GET, &path);
        let response = self
            .request(
                Method::GET,
                &path,
                &pull_scope(repository),
                Some(MANIFEST_ACCEPT),
            )
            .await?;
        let header_digest = header_digest(response.headers());
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response, &at).await?;
        let (media_type, parsed) = parse_manifest(&body, content_type.as_deref())
            .map_err(|problem| ClientError::Protocol(format!("{at}: {problem}")))?;
        let computed = format!("sha256:{}", hex_lower(&Sha256::digest(&body)));
        // A manifest fetched by digest must be the one asked for (children of an index
        // are only trusted through this). Schema1 digests cover the payload without its
        // signatures, so they cannot be checked from the body.
        if let Some(expected) = reference.strip_prefix("sha256:")
            && !matches!(parsed, Parsed::Schema1)
            && computed != format!("sha256:{expected}")
        {
            return Err(ClientError::Protocol(format!(
                "{at}: body digest is {computed}, not the requested one"
            )));
        }
        Ok(Fetched {
            digest: header_digest.unwrap_or(computed),
            media_type,
            parsed,
        })
    }

    /// Platforms (with sizes) of an index's children, in index order.
    async fn children(
        &self,
        repository: &str,
        children: Vec<Child>,
    ) -> Result<Vec<Platform>, ClientError> {
        let semaphore = Arc::new(Semaphore::new(CHILD_CONCURRENCY));
        let mut tasks = JoinSet::new();
        let mut count = 0;
        for (index, child) in children.into_iter().enumerate() {
            if child.is_attestation() {
                continue;
            }
            count += 1;
            let client = self.clone();
            let repository = repository.to_owned();
            let semaphore = Arc::clone(&semaphore);
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = semaphore.acquire_owned().await.ok();
                (index, client.child_platform(&repository, child).await)
            });
        }
        let mut platforms = Vec::with_capacity(count);
        while let Some(joined) = tasks.join_next().await {
            let (index, result) = joined.map_err(|e| {
                ClientError::Protocol(format!("fetching child manifests of {repository}: {e}"))
            })?;
            // Dropping the JoinSet on this early return aborts the other fetches.
            platforms.push((index, result?));
        }
        platforms.sort_by_key(|(index, _)| *index);
        Ok(platforms.into_iter().map(|(_, p)| p).collect())
    }

    async fn child_platform(
        &self,
        repository: &str,
        child: Child,
    ) -> Result<Platform, ClientError> {
        let fetched = self.fetch_manifest(repository, &child.digest).await?;
        let Parsed::Image(image) = fetched.parsed else {
            return Err(ClientError::Protocol(format!(
                "{}: an index entry is not an image manifest",
                self.at(&Method::GET, &manifest_path(repository, &child.digest))
            )));
        };
        let (os, architecture, variant) = match (child.os, child.architecture) {
            (Some(os), Some(architecture)) => (os, architecture, child.variant),
            // Entries without a platform: the image config says what it is.
            _ => self
                .config_platform(repository, &image.config_digest)
                .await
                .unwrap_or_default(),
        };
        Ok(Platform {
            os,
            architecture,
            variant,
            digest: child.digest,
            size: image.size,
        })
    }

    /// `os`, `architecture`, `variant` from an image's config blob; `None` on any
    /// failure, because the platform is a nicety that must not fail the manifest.
    async fn config_platform(
        &self,
        repository: &str,
        config_digest: &str,
    ) -> Option<ConfigPlatform> {
        if !is_digest(config_digest) {
            return None;
        }
        // One read per digest even when many tags of one image are read at once: the
        // first caller fetches, the others wait for its answer (a failure is not kept,
        // the next caller tries again).
        let cell = {
            let mut cache = self.cached_platforms();
            if cache.len() >= PLATFORM_CACHE_ENTRIES && !cache.contains_key(config_digest) {
                cache.clear();
            }
            cache.entry(config_digest.to_owned()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let path = format!("v2/{repository}/blobs/{config_digest}");
            let at = self.at(&Method::GET, &path);
            let response = self
                .request(Method::GET, &path, &pull_scope(repository), None)
                .await
                .map_err(|_| ())?;
            let body = read_limited(response, &at).await.map_err(|_| ())?;
            // The body must be the blob asked for before its answer is kept for others.
            if format!("sha256:{}", hex_lower(&Sha256::digest(&body))) != config_digest {
                return Err(());
            }
            platform_of_config(&body).ok_or(())
        })
        .await
        .ok()
        .cloned()
    }

    fn cached_platforms(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<ConfigPlatform>>>> {
        self.platforms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Fetched {
    digest: String,
    media_type: String,
    parsed: Parsed,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Image(Image),
    Index(Vec<Child>),
    Schema1,
}

#[derive(Debug, PartialEq, Eq)]
struct Image {
    config_digest: String,
    /// config + layers
    size: i64,
}

/// One `manifests[]` entry of an index or list.
#[derive(Debug, PartialEq, Eq)]
struct Child {
    digest: String,
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl Child {
    /// buildkit's attestation manifests are listed as platform `unknown/unknown`.
    fn is_attestation(&self) -> bool {
        self.os.as_deref() == Some("unknown") && self.architecture.as_deref() == Some("unknown")
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn manifest_path(repository: &str, reference: &str) -> String {
    format!("v2/{repository}/manifests/{reference}")
}

fn header_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|d| is_digest(d))
        .map(str::to_owned)
}

/// Reads a body of at most [`MAX_BODY`] bytes.
async fn read_limited(mut response: Response, at: &str) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::Protocol(format!("{at}: body larger than {MAX_BODY} bytes"));
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::Unavailable(format!("{at}: reading the body failed: {e}")))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn status_error(method: &Method, status: StatusCode, at: &str, codes: &str) -> ClientError {
    let detail = if codes.is_empty() {
        format!("{at}: HTTP {}", status.as_u16())
    } else {
        format!("{at}: HTTP {} {codes}", status.as_u16())
    };
    match status.as_u16() {
        401 | 403 => {
            ClientError::Unauthorized(format!("{detail} (the registry refused the token)"))
        }
        404 => ClientError::NotFound(format!("{detail} (not found)")),
        405 if *method == Method::DELETE => ClientError::DeleteDisabled(format!(
            "{detail} (deleting is disabled in the registry: set storage.delete.enabled: true)"
        )),
        408 | 429 | 500..=599 => ClientError::Unavailable(detail),
        _ => ClientError::Protocol(detail),
    }
}

/// The `errors[].code`s of a v2 error body, e.g. `NAME_UNKNOWN`; only the code, which
/// is a fixed vocabulary, so that nothing the registry echoes back reaches a message.
fn error_codes(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let Some(errors) = value.get("errors").and_then(Value::as_array) else {
        return String::new();
    };
    errors
        .iter()
        .filter_map(|e| e.get("code").and_then(Value::as_str))
        .filter(|c| {
            !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .take(4)
        .collect::<Vec<_>>()
        .join(",")
}

/// The target of the `rel="next"` link among the `Link` headers, if any.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_next_link)
}

/// `<url>; rel="next"` (RFC 8288), possibly among other comma-separated links.
fn parse_next_link(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let params_and_more = &after[end + 1..];
        // This link's parameters run up to the next link's `<`.
        let params = match params_and_more.find('<') {
            Some(next) => &params_and_more[..next],
            None => params_and_more,
        };
        let is_next = params.split([';', ',']).any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_owned());
        }
        rest = params_and_more;
    }
}

/// The list under `field` (`repositories` or `tags`); `null` or absent is empty.
fn parse_page(body: &[u8], field: &str) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match value.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("\"{field}\" holds a non-string"))
            })
            .collect(),
        Some(_) => Err(format!("\"{field}\" is not a list")),
    }
}

/// Media type and structure of a manifest body. The media type comes from the body's
/// `mediaType`, else a manifest `Content-Type`, else the structure (OCI manifests may
/// omit `mediaType`): `manifests` makes an index, `config` an image manifest.
fn parse_manifest(body: &[u8], content_type: Option<&str>) -> Result<(String, Parsed), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let Value::Object(manifest) = &value else {
        return Err("manifest is not a JSON object".to_owned());
    };
    let parsed = if let Some(entries) = manifest.get("manifests") {
        let entries = entries.as_array().ok_or("\"manifests\" is not a list")?;
        Parsed::Index(
            entries
                .iter()
                .enumerate()
                .map(|(i, entry)| parse_child(entry).map_err(|p| format!("manifests[{i}]: {p}")))
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(config) = manifest.get("config") {
        let config_digest = config
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| is_digest(d))
            .ok_or("config has no valid digest")?
            .to_owned();
        let mut size = descriptor_size(config).ok_or("config has no valid size")?;
        if let Some(layers) = manifest.get("layers") {
            let layers = layers.as_array().ok_or("\"layers\" is not a list")?;
            for (i, layer) in layers.iter().enumerate() {
                let layer_size = descriptor_size(layer)
                    .ok_or_else(|| format!("layers[{i}] has no valid size"))?;
                size = size.checked_add(layer_size).ok_or("layer sizes overflow")?;
            }
        }
        Parsed::Image(Image {
            config_digest,
            size,
        })
    } else if manifest.get("schemaVersion").and_then(Value::as_i64) == Some(1) {
        Parsed::Schema1
    } else {
        return Err("neither an image manifest nor an index".to_owned());
    };
    let media_type = match manifest.get("mediaType").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => match content_type.filter(|c| is_manifest_media_type(c)) {
            Some(c) => c.split(';').next().unwrap_or(c).trim().to_owned(),
            None => match parsed {
                Parsed::Index(_) => OCI_INDEX,
                Parsed::Image(_) => OCI_MANIFEST,
                Parsed::Schema1 => SCHEMA1,
            }
            .to_owned(),
        },
    };
    Ok((media_type, parsed))
}

fn parse_child(entry: &Value) -> Result<Child, String> {
    let digest = entry
        .get("digest")
        .and_then(Value::as_str)
        .filter(|d| is_digest(d))
        .ok_or("no valid digest")?
        .to_owned();
    let platform = entry.get("platform");
    let field = |name: &str| {
        platform
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Child {
        digest,
        os: field("os"),
        architecture: field("architecture"),
        variant: field("variant"),
    })
}

fn descriptor_size(descriptor: &Value) -> Option<i64> {
    descriptor
        .get("size")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
}

/// `os`/`architecture`/`variant` of an image config (both OCI and Docker put them at
/// the top level).
fn platform_of_config(body: &[u8]) -> Option<ConfigPlatform> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some((field("os")?, field("architecture")?, field("variant")))
}

/// Repository names as distribution accepts them: `/`-separated lower-case components
/// of `[a-z0-9]` joined by `.`, `_`, `__` or `-`s. Checked so that a name can never
/// change the URL's meaning (`..`, `?`, `%`).
fn check_repository(name: &str) -> Result<(), ClientError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && c.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
    };
    if name.len() <= 255 && name.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ClientError::InvalidReference(format!(
            "{name:?} is not a valid repository name"
        )))
    }
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or a digest.
fn check_reference(reference: &str) -> Result<(), ClientError> {
    let is_tag = reference.len() <= 128
        && reference
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if is_tag || is_digest(reference) {
        Ok(())
    } else {
        Err(ClientError::InvalidReference(format!(
            "{reference:?} is neither a tag nor a digest"
        )))
    }
}

/// `algorithm:encoded`, e.g. `sha256:` + 64 hex digits (other algorithms are checked
/// only for URL-safe characters).
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    if algorithm == "sha256" {
        return encoded.len() == 64
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    }
    !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

fn hex_lower(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests;
