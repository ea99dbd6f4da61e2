//! Helpers shared by the end-to-end tests: an HTTP client that checks statuses and
//! names the failing step.

#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Polls `probe` (an expression giving `(Option<found>, state)`) every 50 ms until it
/// finds something, or fails naming `step` and the last state.
#[allow(unused_macros)]
macro_rules! poll {
    ($step:expr, $within:expr, $probe:expr) => {{
        let deadline = std::time::Instant::now() + $within;
        loop {
            let (found, state) = $probe;
            if let Some(found) = found {
                break found;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "step `{}`: not reached within {:?}; last state: {}",
                    $step, $within, state
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use poll;

/// The environment of a process, from `(name, value)` pairs.
pub fn env_vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What a pushed manifest looks like to the registry.
#[derive(Clone)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
}

/// A manifest push event as distribution 2.8 writes it, pushed by `actor` through
/// `host`; `agent` names the sending test (user agent and source).
pub fn push_event(
    id: &str,
    repository: &str,
    tag: &str,
    m: &Manifest,
    host: &str,
    actor: &str,
    agent: &str,
) -> Value {
    json!({
        "id": id,
        "timestamp": "2025-01-01T00:00:00.000000000Z",
        "action": "push",
        "target": {
            "mediaType": m.media_type,
            "size": m.size,
            "digest": m.digest,
            "length": m.size,
            "repository": repository,
            "url": format!("http://{host}/v2/{repository}/manifests/{}", m.digest),
            "tag": tag,
        },
        "request": {"id": format!("req-{id}"), "addr": "127.0.0.1:40000", "host": host,
            "method": "PUT", "useragent": agent},
        "actor": {"name": actor},
        "source": {"addr": format!("{agent}:5000"), "instanceID": agent},
    })
}

/// How an API call authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    /// `Authorization: Bearer <application token>`.
    Bearer(&'a str),
    /// `Portus-Auth: <user>:<application token>`.
    Portus(&'a str, &'a str),
}

pub struct Http {
    pub client: reqwest::Client,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("building the HTTP client"),
        }
    }

    pub fn with_auth(rb: reqwest::RequestBuilder, auth: Auth<'_>) -> reqwest::RequestBuilder {
        match auth {
            Auth::None => rb,
            Auth::Basic(u, p) => rb.basic_auth(u, Some(p)),
            Auth::Bearer(t) => rb.bearer_auth(t),
            Auth::Portus(u, t) => rb.header("Portus-Auth", format!("{u}:{t}")),
        }
    }

    /// Sends a request and checks its status; returns the body as JSON (`Null` when
    /// empty).
    pub async fn call(
        &self,
        step: &str,
        rb: reqwest::RequestBuilder,
        auth: Auth<'_>,
        expect: StatusCode,
    ) -> Value {
        let resp = Self::with_auth(rb, auth)
            .send()
            .await
            .unwrap_or_else(|e| panic!("step `{step}`: request failed: {e}"));
        let status = resp.status();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("step `{step}`: reading the body: {e}"));
        assert_eq!(
            status, expect,
            "step `{step}`: unexpected status; body: {text}"
        );
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("step `{step}`: body is not JSON ({e}): {text}"))
        }
    }

    pub async fn post_json(
        &self,
        step: &str,
        url: &str,
        auth: Auth<'_>,
        body: Value,
        expect: StatusCode,
    ) -> Value {
        self.call(step, self.client.post(url).json(&body), auth, expect)
            .await
    }

    pub async fn put_json(
        &self,
        step: &str,
        url: &str,
        auth: Auth<'_>,
        body: Value,
        expect: StatusCode,
    ) -> Value {
        self.call(step, self.client.put(url).json(&body), auth, expect)
            .await
    }

    pub async fn delete(&self, step: &str, url: &str, auth: Auth<'_>, expect: StatusCode) -> Value {
        self.call(step, self.client.delete(url), auth, expect).await
    }

    pub async fn get(&self, step: &str, url: &str, auth: Auth<'_>, expect: StatusCode) -> Value {
        self.call(step, self.client.get(url), auth, expect).await
    }

    /// `POST /api/v1/registries` on `base`: a plain-HTTP registry at `hostname`.
    pub async fn create_registry(&self, base: &str, auth: Auth<'_>, name: &str, hostname: &str) {
        self.post_json(
            "create the registry",
            &format!("{base}/api/v1/registries"),
            auth,
            json!({"registry": {"name": name, "hostname": hostname, "use_ssl": false}}),
            StatusCode::CREATED,
        )
        .await;
    }

    /// `POST /api/v1/users/bootstrap` on `base` for `admin` (name, password): the first
    /// admin's application token.
    pub async fn bootstrap(&self, base: &str, admin: (&str, &str)) -> String {
        let step = "bootstrap the first admin";
        let boot = self
            .post_json(
                step,
                &format!("{base}/api/v1/users/bootstrap"),
                Auth::None,
                json!({"user": {"username": admin.0, "email": "admin@example.test", "password": admin.1}}),
                StatusCode::CREATED,
            )
            .await;
        str_of(step, &boot, "plain_token").to_owned()
    }
}

pub fn id_of(step: &str, v: &Value) -> i64 {
    v["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("step `{step}`: no numeric id in {v}"))
}

pub fn str_of<'a>(step: &str, v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("step `{step}`: no string `{key}` in {v}"))
}

/// The `name=value` of a cookie a response sets.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The CSRF token of a page's forms.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field on the page: {page}"))
        + marker.len();
    let end = page[at..].find('"').expect("the csrf value ends");
    page[at..at + end].to_owned()
}

/// A client that does not follow redirects (to see them), as a browser test needs.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Signs in on `base` through the sign-in form; returns the session cookie pair.
pub async fn sign_in(base: &str, user: (&str, &str)) -> String {
    let b = browser();
    let page = b
        .get(format!("{base}/users/sign_in"))
        .send()
        .await
        .expect("GET /users/sign_in");
    assert_eq!(page.status(), StatusCode::OK);
    let visitor = set_cookie(&page, "portcullis_visitor").expect("a visitor cookie");
    let csrf = csrf_of(&page.text().await.expect("the sign-in page"));
    let signed = b
        .post(format!("{base}/users/sign_in"))
        .header(reqwest::header::COOKIE, &visitor)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(portcullis_testkit::registry::form_encode(&[
            ("csrf", &csrf),
            ("username", user.0),
            ("password", user.1),
        ]))
        .send()
        .await
        .expect("POST /users/sign_in");
    assert_eq!(signed.status(), StatusCode::SEE_OTHER, "signed in");
    set_cookie(&signed, "portcullis_session").expect("a session cookie")
}

/// `portcullis serve` (the binary under test) with `env`, working in `dir`, once it
/// listens.
pub async fn serve(
    env: BTreeMap<String, String>,
    dir: &std::path::Path,
) -> portcullis_testkit::server::Server {
    portcullis_testkit::server::Server::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        env,
        dir,
    )
    .await
    .unwrap_or_else(|e| panic!("step `start portcullis` in {}: {e:#}", dir.display()))
}
