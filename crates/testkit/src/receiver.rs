//! A webhook receiver for tests: a real HTTP server on `127.0.0.1:0` that records
//! every request and answers with scripted statuses (then 200).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<u16>>,
    arrived: Notify,
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering `statuses` in turn, then 200.
    pub async fn start(statuses: &[u16]) -> anyhow::Result<Self> {
        let state = Arc::new(State {
            script: Mutex::new(statuses.iter().copied().collect()),
            ..State::default()
        });
        let shared = state.clone();
        let app = axum::Router::new().fallback(any(
            move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move {
                    let status = lock(&state.script).pop_front().unwrap_or(200);
                    lock(&state.received).push(Received {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        body,
                    });
                    state.arrived.notify_waiters();
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/hook"),
            state,
            task,
        })
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// Waits until at least `n` requests arrived, or fails after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                anyhow::bail!(
                    "the webhook receiver got {} of {n} requests within {within:?}",
                    self.received().len()
                );
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
