//! Fault injection between two processes of an end-to-end test.
//!
//! - [`TcpProxy`] forwards bytes to an upstream address and can be **paused** (every
//!   chunk read from either side is held until [`TcpProxy::resume`]; the test sees
//!   with [`TcpProxy::wait_held`] that a request is being held) or **cut** (every open
//!   connection is reset at once, and new ones are accepted and reset immediately, so
//!   clients fail fast instead of waiting for a connect timeout) and restored.
//! - [`HttpProxy`] forwards HTTP/1.1 requests one by one to an upstream server and
//!   answers those a rule picks with an injected status instead (a registry whose
//!   catalog fails on its second page, say), keeping a log of what it saw.
//!
//! Both listen on `127.0.0.1:0`; the upstream may be set after the proxy is bound, for
//! a server that must be told the proxy's address before it starts. Nothing here
//! sleeps to synchronise: state changes are `watch` channels the connections follow.

use anyhow::{Context, Result, bail};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a [`TcpProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards everything.
    Open,
    /// Holds every chunk (in both directions) until the mode changes.
    Paused,
    /// Resets every connection, open or new.
    Cut,
}

#[derive(Debug, Clone, Copy)]
struct State {
    mode: Mode,
    /// Cuts so far: a connection opened before the latest cut is reset even when the
    /// proxy was restored before the connection noticed.
    cuts: u64,
}

struct Shared {
    upstream: Mutex<Option<String>>,
    state: watch::Sender<State>,
    /// Chunks waiting at the pause gate right now.
    held: watch::Sender<usize>,
    accepted: watch::Sender<usize>,
}

/// A TCP forwarder that can be paused and cut. Stops when dropped.
pub struct TcpProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Binds `127.0.0.1:0` and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let proxy = Self::bind().await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// Binds `127.0.0.1:0` without an upstream yet: connections are reset until
    /// [`TcpProxy::set_upstream`].
    pub async fn bind() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy to 127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(None),
            state: watch::Sender::new(State {
                mode: Mode::Open,
                cuts: 0,
            }),
            held: watch::Sender::new(0),
            accepted: watch::Sender::new(0),
        });
        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                accepting.accepted.send_modify(|n| *n += 1);
                let state = *accepting.state.borrow();
                if state.mode == Mode::Cut {
                    reset(client);
                    continue;
                }
                tokio::spawn(connection(accepting.clone(), client, state.cuts));
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// Where new connections go.
    pub fn set_upstream(&self, upstream: &str) {
        *lock(&self.shared.upstream) = Some(upstream.to_owned());
    }

    /// Holds traffic from now on (data already forwarded stays forwarded).
    pub fn pause(&self) {
        self.set_mode(Mode::Paused);
    }

    /// Forwards again, the held chunks first.
    pub fn resume(&self) {
        self.set_mode(Mode::Open);
    }

    /// Resets every open connection and every new one until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.shared.state.send_modify(|s| {
            s.mode = Mode::Cut;
            s.cuts += 1;
        });
    }

    /// Accepts and forwards again after a [`TcpProxy::cut`].
    pub fn restore(&self) {
        self.set_mode(Mode::Open);
    }

    fn set_mode(&self, mode: Mode) {
        self.shared.state.send_modify(|s| s.mode = mode);
    }

    pub fn mode(&self) -> Mode {
        self.shared.state.borrow().mode
    }

    /// Chunks held at the pause gate right now.
    pub fn held(&self) -> usize {
        *self.shared.held.borrow()
    }

    /// Connections accepted so far (reset ones included).
    pub fn accepted(&self) -> usize {
        *self.shared.accepted.borrow()
    }

    /// Waits until at least `n` chunks are held, or fails after `within`.
    pub async fn wait_held(&self, n: usize, within: Duration) -> Result<()> {
        let mut held = self.shared.held.subscribe();
        match tokio::time::timeout(within, held.wait_for(|h| *h >= n)).await {
            Ok(Ok(_)) => Ok(()),
            _ => bail!(
                "the proxy held {} of {n} chunks within {within:?}",
                self.held()
            ),
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Open connections end with their tasks' sockets: cut them.
        self.cut();
    }
}

/// Closes with a reset (`SO_LINGER` 0), like a server that went away.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn connection(shared: Arc<Shared>, client: TcpStream, cuts: u64) {
    let upstream = lock(&shared.upstream).clone();
    let Some(upstream) = upstream else {
        reset(client);
        return;
    };
    let Ok(server) = TcpStream::connect(&upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let ((client_read, server_write, cut_up), (server_read, client_write, cut_down)) = tokio::join!(
        pump(&shared, client_read, server_write, cuts),
        pump(&shared, server_read, client_write, cuts),
    );
    if cut_up || cut_down {
        if let Ok(client) = client_read.reunite(client_write) {
            reset(client);
        }
        if let Ok(server) = server_read.reunite(server_write) {
            reset(server);
        }
    }
}

/// Copies `from` to `to` chunk by chunk, holding each chunk while the proxy is paused.
/// On end of input it shuts `to` down (half-close); on a cut after `cuts` it stops at
/// once. Returns both halves and whether it was cut.
async fn pump(
    shared: &Shared,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    cuts: u64,
) -> (OwnedReadHalf, OwnedWriteHalf, bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut state = shared.state.subscribe();
    let is_cut = move |s: &State| s.cuts != cuts;
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = state.wait_for(is_cut) => return (from, to, true),
        };
        if state.borrow_and_update().mode == Mode::Paused {
            shared.held.send_modify(|h| *h += 1);
            let cut = state
                .wait_for(|s| s.mode != Mode::Paused || is_cut(s))
                .await
                .map_or(true, |s| is_cut(&s));
            shared.held.send_modify(|h| *h -= 1);
            if cut {
                return (from, to, true);
            }
        }
        tokio::select! {
            written = to.write_all(&buf[..n]) => if written.is_err() {
                break;
            },
            _ = state.wait_for(is_cut) => return (from, to, true),
        }
    }
    let _ = to.shutdown().await;
    (from, to, false)
}

/// Which requests an [`HttpProxy`] fails, and with what status.
type Rule = Arc<dyn Fn(&Method, &str) -> Option<u16> + Send + Sync>;

/// One request an [`HttpProxy`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: Method,
    /// Path and query, e.g. `/v2/_catalog?last=a&n=2`.
    pub target: String,
    /// The status sent back.
    pub status: u16,
    /// Whether the status was injected rather than the upstream's.
    pub injected: bool,
}

struct HttpShared {
    upstream: Mutex<Option<String>>,
    rule: Mutex<Option<Rule>>,
    seen: Mutex<Vec<Seen>>,
    client: reqwest::Client,
}

/// An HTTP reverse proxy that fails the requests a rule picks. Stops when dropped.
pub struct HttpProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    shared: Arc<HttpShared>,
    task: tokio::task::JoinHandle<()>,
}

/// Headers that belong to one connection, not to the message.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Request bodies read at most (manifests and the test's blobs are small).
const MAX_BODY: usize = 64 * 1024 * 1024;

impl HttpProxy {
    /// Binds `127.0.0.1:0` and forwards to `http://UPSTREAM`.
    pub async fn start(upstream: &str) -> Result<Self> {
        let proxy = Self::bind().await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// Binds `127.0.0.1:0` without an upstream yet: requests get 502 until
    /// [`HttpProxy::set_upstream`].
    pub async fn bind() -> Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the proxy's HTTP client")?;
        let shared = Arc::new(HttpShared {
            upstream: Mutex::new(None),
            rule: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
            client,
        });
        let state = shared.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let state = state.clone();
            async move { forward(&state, request).await }
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy to 127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    pub fn set_upstream(&self, upstream: &str) {
        *lock(&self.shared.upstream) = Some(upstream.to_owned());
    }

    /// From now on, a request for which `rule(method, path_and_query)` is `Some(status)`
    /// gets that status (with an empty body) and never reaches the upstream.
    pub fn fail_when(&self, rule: impl Fn(&Method, &str) -> Option<u16> + Send + Sync + 'static) {
        *lock(&self.shared.rule) = Some(Arc::new(rule));
    }

    /// Forwards everything again.
    pub fn heal(&self) {
        *lock(&self.shared.rule) = None;
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// The requests answered with an injected status.
    pub fn injected(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.injected).collect()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        lock(&self.shared.seen).clear();
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(state: &HttpShared, request: Request<Body>) -> Response<Body> {
    let method = request.method().clone();
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let record = |status: u16, injected: bool| {
        lock(&state.seen).push(Seen {
            method: method.clone(),
            target: target.clone(),
            status,
            injected,
        });
    };
    let rule = lock(&state.rule).clone();
    if let Some(status) = rule.and_then(|r| r(&method, &target)) {
        record(status, true);
        return plain(status, "injected by the test proxy");
    }
    let upstream = lock(&state.upstream).clone();
    let Some(upstream) = upstream else {
        record(502, true);
        return plain(502, "the test proxy has no upstream yet");
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            record(400, true);
            return plain(400, &format!("reading the request body: {e}"));
        }
    };
    let mut outgoing = state
        .client
        .request(method.clone(), format!("http://{upstream}{target}"))
        .headers(without_hop_by_hop(&parts.headers));
    if !body.is_empty() {
        outgoing = outgoing.body(body);
    }
    let answer = match outgoing.send().await {
        Ok(a) => a,
        Err(e) => {
            record(502, true);
            return plain(502, &format!("upstream: {e}"));
        }
    };
    let status = answer.status();
    let headers = without_hop_by_hop(answer.headers());
    let bytes: Bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            record(502, true);
            return plain(502, &format!("upstream body: {e}"));
        }
    };
    record(status.as_u16(), false);
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in HOP_BY_HOP {
        out.remove(HeaderName::from_static(name));
    }
    out
}

fn plain(status: u16, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An echo server: writes back whatever it reads, per connection.
    async fn echo_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await.unwrap();
        got
    }

    const SHORT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn forwards_pauses_and_cuts() {
        let upstream = echo_server().await;
        let proxy = TcpProxy::start(&upstream).await.unwrap();
        let mut a = TcpStream::connect(&proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut a, b"hello").await, b"hello");

        // Paused: the chunk is held, nothing comes back until resumed.
        proxy.pause();
        a.write_all(b"held").await.unwrap();
        proxy.wait_held(1, SHORT).await.unwrap();
        let mut buf = [0u8; 4];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), a.read_exact(&mut buf))
                .await
                .is_err(),
            "data passed a paused proxy"
        );
        proxy.resume();
        tokio::time::timeout(SHORT, a.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"held");
        assert_eq!(proxy.held(), 0);

        // Cut: the open connection ends, a new one is accepted and ended at once.
        proxy.cut();
        let ended = tokio::time::timeout(SHORT, a.read(&mut buf)).await.unwrap();
        assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
        let mut b = TcpStream::connect(&proxy.addr).await.unwrap();
        let _ = b.write_all(b"x").await;
        let ended = tokio::time::timeout(SHORT, b.read(&mut buf)).await.unwrap();
        assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");

        // Restored: new connections work again.
        proxy.restore();
        let mut c = TcpStream::connect(&proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut c, b"again").await, b"again");
        assert!(proxy.accepted() >= 3);
    }

    #[tokio::test]
    async fn a_cut_also_ends_a_paused_connection() {
        let upstream = echo_server().await;
        let proxy = TcpProxy::start(&upstream).await.unwrap();
        let mut a = TcpStream::connect(&proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut a, b"1").await, b"1");
        proxy.pause();
        a.write_all(b"2").await.unwrap();
        proxy.wait_held(1, SHORT).await.unwrap();
        proxy.cut();
        proxy.restore();
        let mut buf = [0u8; 1];
        let ended = tokio::time::timeout(SHORT, a.read(&mut buf)).await.unwrap();
        assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
        assert_eq!(proxy.held(), 0);
    }

    #[tokio::test]
    async fn no_upstream_yet_resets() {
        let proxy = TcpProxy::bind().await.unwrap();
        let mut a = TcpStream::connect(&proxy.addr).await.unwrap();
        let mut buf = [0u8; 1];
        let ended = tokio::time::timeout(SHORT, a.read(&mut buf)).await.unwrap();
        assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
        let upstream = echo_server().await;
        proxy.set_upstream(&upstream);
        let mut b = TcpStream::connect(&proxy.addr).await.unwrap();
        assert_eq!(roundtrip(&mut b, b"ok").await, b"ok");
    }

    #[tokio::test]
    async fn http_forwards_and_injects() {
        let app = axum::Router::new().fallback(|request: Request<Body>| async move {
            let target = request.uri().to_string();
            let method = request.method().to_string();
            let body = axum::body::to_bytes(request.into_body(), 1024)
                .await
                .unwrap();
            let mut r = Response::new(Body::from(format!(
                "{method} {target} {}",
                String::from_utf8_lossy(&body)
            )));
            r.headers_mut()
                .insert("link", "</next?n=2>; rel=\"next\"".parse().unwrap());
            *r.status_mut() = StatusCode::CREATED;
            r
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let proxy = HttpProxy::start(&upstream).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = |p: &str| format!("http://{}{p}", proxy.addr);
        let r = client
            .post(url("/a?x=1"))
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["link"], "</next?n=2>; rel=\"next\"");
        assert_eq!(r.text().await.unwrap(), "POST /a?x=1 payload");

        proxy.fail_when(|m, t| (m == Method::GET && t.contains("last=")).then_some(500));
        let r = client.get(url("/list?last=b")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        let r = client.get(url("/list?n=2")).send().await.unwrap();
        assert_eq!(r.status(), 201);
        proxy.heal();
        let r = client.get(url("/list?last=b")).send().await.unwrap();
        assert_eq!(r.status(), 201);

        let seen = proxy.seen();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(
            proxy.injected(),
            vec![Seen {
                method: Method::GET,
                target: "/list?last=b".into(),
                status: 500,
                injected: true
            }]
        );
    }
}

/// `(host:port, the URL with host:port replaced by proxy)` of a `postgres://` URL.
pub fn through_proxy(url: &str, proxy: &str) -> (String, String) {
    let scheme_end = url.find("://").map(|i| i + 3).expect("a URL");
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let upstream = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (
        upstream,
        format!(
            "{}{userinfo}{proxy}{}",
            &url[..scheme_end],
            &rest[authority_end..]
        ),
    )
}

#[cfg(test)]
#[test]
fn urls_through_the_proxy() {
    assert_eq!(
        through_proxy("postgres://u@127.0.0.1:5432/db?x=1", "127.0.0.1:9"),
        (
            "127.0.0.1:5432".to_owned(),
            "postgres://u@127.0.0.1:9/db?x=1".to_owned()
        )
    );
    assert_eq!(
        through_proxy("postgres://h/db", "p:1"),
        ("h:5432".to_owned(), "postgres://p:1/db".to_owned())
    );
}
