//! The in-process test app shared by the HTTP test files: the real router and services
//! on a real database (SQLite by default, PostgreSQL where a test asks), real keys, and
//! a `FixedClock` the tests move.

#![allow(clippy::unwrap_used, dead_code)] // test helpers; not every file uses each one

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use portcullis_config::Config;
use portcullis_domain::time::{FixedClock, Timestamp};
use portcullis_registry::jwt::TokenSigner;
use portcullis_registry::keys::{Algorithm, KidFormat, SigningKey};
use portcullis_service::Services;
use portcullis_service::passwords::PasswordHasher;
use portcullis_service::secrets::SeededRandom;
use portcullis_storage::Store;
use portcullis_testkit::postgres::{TestDatabase, sqlite_url, test_database};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub const T0: i64 = 1_800_000_000;

pub struct TestApp {
    pub router: Router,
    pub services: Services,
    pub clock: Arc<FixedClock>,
    /// The database URL, for a second `Store` playing another node.
    pub db_url: String,
    _keep: Keep,
}

/// Keeps a test's database alive.
#[allow(dead_code)]
enum Keep {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
    /// Another node's app owns the database.
    Shared,
}

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Portus(&'a str, &'a str),
    Bearer(&'a str),
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::on(Backend::Sqlite, configure).await
    }

    /// A fresh app on a fresh database of `backend`; missing PostgreSQL fails the test.
    pub async fn on(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let (db_url, keep) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                (sqlite_url(dir.path()), Keep::Sqlite(dir))
            }
            Backend::Postgres => {
                let db = test_database()
                    .await
                    .unwrap_or_else(|e| panic!("no PostgreSQL test database: {e:#}"));
                (db.url.clone(), Keep::Postgres(db))
            }
        };
        Self::at(db_url, keep, configure).await
    }

    /// A second node on this app's database (its own services and caches).
    pub async fn second_node(&self, configure: impl FnOnce(&mut Config)) -> Self {
        Self::at(self.db_url.clone(), Keep::Shared, configure).await
    }

    async fn at(db_url: String, keep: Keep, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::default();
        config.machine_fqdn.value = "portcullis.test".into();
        config.notifications.secret = "notify-secret".into();
        config.security_policy.password_checks_per_minute = 0;
        configure(&mut config);
        let store = Store::connect(&db_url).await.unwrap();
        store.migrate().await.unwrap();
        let (key_pem, cert_pem) =
            SigningKey::generate_pem(Algorithm::Es256, "portcullis.test", T0).unwrap();
        let key = SigningKey::from_pem(&key_pem, &cert_pem, None).unwrap();
        let signer = TokenSigner::new(&key, KidFormat::Libtrust).unwrap();
        let clock = Arc::new(FixedClock::at(Timestamp::from_secs(T0)));
        let config_email = config.email.clone();
        let directory = portcullis_service::ldap::Directory::for_config(&config.ldap)
            .unwrap_or_else(|e| panic!("ldap settings: {e}"));
        let services = Services::new(
            store,
            config,
            clock.clone(),
            Arc::new(SeededRandom::default()),
            signer,
            PasswordHasher::fast_for_tests(),
            portcullis_service::Sealer::from_bytes([7; 32]),
            portcullis_service::Outbound {
                registry_roots: Default::default(),
                directory,
                mailer: Some(Arc::new(
                    portcullis_service::mail::Mailer::new(&config_email)
                        .unwrap_or_else(|e| panic!("email settings: {e}")),
                )),
                token_exchange_http: Some(portcullis_service::exchange::http_client().unwrap()),
            },
        );
        Self {
            router: portcullis_http::router(services.clone()),
            services,
            clock,
            db_url,
            _keep: keep,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Resp {
        self.send(request(method, uri, auth, body)).await
    }

    /// Sends all requests at once (each on its own task) and returns the responses in
    /// the order of the requests.
    pub async fn concurrently(&self, requests: Vec<Request<Body>>) -> Vec<Resp> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, req) in requests.into_iter().enumerate() {
            let router = self.router.clone();
            tasks.spawn(async move { (i, read(router.oneshot(req).await.unwrap()).await) });
        }
        let mut out: Vec<(usize, Resp)> = tasks.join_all().await;
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        read(self.router.clone().oneshot(req).await.unwrap()).await
    }

    pub async fn get(&self, uri: &str, auth: Auth<'_>) -> Resp {
        self.call(Method::GET, uri, auth, None).await
    }
    pub async fn post(&self, uri: &str, auth: Auth<'_>, body: Value) -> Resp {
        self.call(Method::POST, uri, auth, Some(body)).await
    }
    pub async fn put(&self, uri: &str, auth: Auth<'_>, body: Value) -> Resp {
        self.call(Method::PUT, uri, auth, Some(body)).await
    }
    pub async fn delete(&self, uri: &str, auth: Auth<'_>) -> Resp {
        self.call(Method::DELETE, uri, auth, None).await
    }

    /// Bootstraps `admin` and returns its application token.
    pub async fn bootstrap(&self) -> String {
        let r = self.post("/api/v1/users/bootstrap", Auth::None, json!({"user": {"username": "admin", "email": "admin@example.com", "password": "adminpass1"}})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["plain_token"].as_str().unwrap().to_owned()
    }

    pub async fn create_user(&self, admin_token: &str, name: &str) -> i64 {
        let r = self
            .post("/api/v1/users", Auth::Portus("admin", admin_token), json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": format!("{name}-password")}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    /// A registry that is not contacted (`force`).
    pub async fn create_registry(&self, admin_token: &str, hostname: &str) -> i64 {
        let r = self
            .post("/api/v1/registries", Auth::Portus("admin", admin_token), json!({"registry": {"name": hostname, "hostname": hostname, "use_ssl": false}, "force": true}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    pub async fn token(&self, query: &str, auth: Auth<'_>) -> Resp {
        self.get(&format!("/v2/token?{query}"), auth).await
    }
}

/// The id of the namespace called `name`, as `auth` lists it.
pub async fn namespace_id(app: &TestApp, auth: Auth<'_>, name: &str) -> i64 {
    let r = app.get("/api/v1/namespaces?all=true", auth).await;
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no namespace {name}: {:?}", r.body))["id"]
        .as_i64()
        .unwrap()
}

pub fn pw(name: &str) -> String {
    format!("{name}-password")
}

pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

pub fn access(resp: &Resp) -> Value {
    jwt_part(resp.body["token"].as_str().unwrap(), 1)["access"].clone()
}

impl TestApp {
    /// Another connection to the same database: another node's writes, or a look at
    /// what this node wrote, bypassing its services.
    pub async fn other_node(&self) -> Store {
        Store::connect(&self.db_url).await.unwrap()
    }
}

/// Sets up: registry, users alice (owner), bob (contributor), carol (viewer), dave,
/// team `devs`, namespace `devs` (private). Returns the admin token and the team id.
pub async fn team_fixture(app: &TestApp) -> (String, i64) {
    let t = app.bootstrap().await;
    app.create_registry(&t, "registry.test:5000").await;
    for u in ["alice", "bob", "carol", "dave"] {
        app.create_user(&t, u).await;
    }
    let alice_pw = pw("alice");
    let alice = Auth::Basic("alice", &alice_pw);
    let r = app
        .post(
            "/api/v1/teams",
            alice,
            json!({"name": "devs", "description": "developers"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let team = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["role"], "owner");
    for (u, role) in [("bob", "contributor"), ("carol", "viewer")] {
        let r = app
            .post(
                &format!("/api/v1/teams/{team}/members"),
                alice,
                json!({"user": u, "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["role"], role);
    }
    let r = app
        .post(
            "/api/v1/namespaces",
            alice,
            json!({"name": "devs", "team": "devs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["visibility"], "private");
    (t, team)
}

pub async fn post_form(app: &TestApp, body: &str) -> Resp {
    app.send(
        Request::post("/v2/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

/// A request as a client sends it.
pub fn request(method: Method, uri: &str, auth: Auth<'_>, body: Option<Value>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    req = match auth {
        Auth::None => req,
        Auth::Basic(u, p) => req.header(
            "authorization",
            format!("Basic {}", b64(format!("{u}:{p}"))),
        ),
        Auth::Portus(u, t) => req.header("portus-auth", format!("{u}:{t}")),
        Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
    };
    match body {
        Some(v) => req
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

async fn read(res: axum::response::Response) -> Resp {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        headers,
        body,
    }
}
