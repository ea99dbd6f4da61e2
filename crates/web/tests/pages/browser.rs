//! A browser for in-process tests: a cookie jar and forms posted with the CSRF token
//! of the page last loaded.

use crate::common::{Backend, TestApp};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use std::collections::BTreeMap;
use tower::ServiceExt;

/// The app with the web UI's router in place of the API-only one.
pub async fn web_app(
    backend: Backend,
    configure: impl FnOnce(&mut portcullis_config::Config),
) -> TestApp {
    let mut app = TestApp::on(backend, configure).await;
    app.router = portcullis_web::app(app.services.clone());
    app
}

/// [`web_app`] with its clock set to the real time: test identity providers sign ID
/// tokens with the real time, and the app checks them against its clock.
pub async fn web_app_in_real_time(
    configure: impl FnOnce(&mut portcullis_config::Config),
) -> TestApp {
    use portcullis_domain::time::Clock;
    let app = web_app(Backend::Sqlite, configure).await;
    let now = portcullis_service::clock::SystemClock.now().as_secs();
    app.clock.advance_secs(now - crate::common::T0);
    app
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The secret a page shows once (`<code class="secret">`).
    pub fn secret(&self) -> String {
        let start = self
            .body
            .find("class=\"secret\">")
            .expect("a secret on the page")
            + 15;
        self.body[start..start + self.body[start..].find('<').unwrap()].to_owned()
    }

    /// The first link or form target on the page that starts with `prefix`.
    pub fn target(&self, prefix: &str) -> String {
        let start = self
            .body
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix}… on the page: {}", self.body));
        self.body[start..start + self.body[start..].find('"').unwrap()].to_owned()
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        self.field("csrf")
    }

    /// The value of the first input named `name`.
    pub fn field(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.body));
        let rest = &self.body[at + needle.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// A browser: keeps cookies, sends forms with the token of the page it last loaded.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: BTreeMap<String, String>,
    pub last_csrf: String,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: BTreeMap::new(),
            last_csrf: String::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let response = self.app.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for v in headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if page.body.contains("name=\"csrf\" value=\"") {
            self.last_csrf = page.csrf();
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = Request::builder()
            .uri(path)
            .header(header::HOST, "portcullis.test")
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// Posts a form with the CSRF token of the last page loaded.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.last_csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[]).await
    }

    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        extra_headers: &[(&'static str, &'static str)],
    ) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, "portcullis.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, self.cookie_header());
        for (k, v) in extra_headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        self.get("/users/sign_in").await;
        self.post(
            "/users/sign_in",
            &[("username", username), ("password", password)],
        )
        .await
    }
}

/// A browser signed in as `user`.
pub async fn signed_in<'a>(app: &'a TestApp, user: &str, password: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    let p = b.sign_in(user, password).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{user}: {}", p.body);
    b
}

/// The admin (bootstrapped through the API) and a signed-in browser of theirs.
pub async fn admin_browser(app: &TestApp) -> (String, Browser<'_>) {
    let token = app.bootstrap().await;
    let mut b = Browser::new(app);
    let p = b.sign_in("admin", "adminpass1").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    (token, b)
}
