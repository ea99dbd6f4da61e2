//! Helpers shared by the end-to-end tests: an HTTP client that checks statuses and
//! names the failing step.

#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;

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
