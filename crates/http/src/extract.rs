//! Request extractors: who is calling, from where, and bodies/paths/queries whose
//! rejections render as API errors instead of axum's plain-text ones.

use crate::client_addr::client_key;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use portcullis_domain::Error;
use portcullis_service::{Authenticated, Services};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// The client's rate-limit key: its address (an IPv6 client's /64), taken from
/// `X-Forwarded-For` only when the peer is one of `server.trusted_proxies` (see
/// [`crate::client_addr`]). No peer address (in-process tests) → "local".
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl FromRequestParts<Services> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientAddr("local".to_owned()));
        };
        // Several header lines are one list, in the order received.
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
        Ok(ClientAddr(client_key(
            peer.ip(),
            forwarded.as_deref(),
            &services.config().server.trusted_proxies,
        )))
    }
}

/// Credentials found in the headers, not yet checked.
pub enum Credentials {
    Basic {
        username: String,
        secret: String,
    },
    /// `Portus-Auth: <username>:<application token>` (Portus API).
    PortusAuth {
        username: String,
        token: String,
    },
    /// `Authorization: Bearer <application token>`.
    Bearer(String),
}

/// Parses the credential headers; `Err` when a header is present but malformed.
pub fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, Error> {
    if let Some(v) = headers.get("portus-auth") {
        let v = v.to_str().map_err(|_| Error::Unauthenticated)?;
        let (username, token) = v.split_once(':').ok_or(Error::Unauthenticated)?;
        return Ok(Some(Credentials::PortusAuth {
            username: username.to_owned(),
            token: token.to_owned(),
        }));
    }
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| Error::Unauthenticated)?;
    let (scheme, rest) = v.split_once(' ').ok_or(Error::Unauthenticated)?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| Error::Unauthenticated)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Error::Unauthenticated)?;
        let (username, secret) = decoded.split_once(':').ok_or(Error::Unauthenticated)?;
        Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            secret: secret.to_owned(),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Some(Credentials::Bearer(rest.trim().to_owned())))
    } else {
        Err(Error::Unauthenticated)
    }
}

/// Checks credentials; `Ok(None)` for an anonymous request.
pub async fn authenticate(
    services: &Services,
    headers: &HeaderMap,
    client: &str,
) -> Result<Option<Authenticated>, Error> {
    let auth = &services.auth;
    let result = match credentials(headers)? {
        None => return Ok(None),
        Some(Credentials::Basic { username, secret }) => {
            auth.basic(&username, &secret, client).await
        }
        Some(Credentials::PortusAuth { username, token }) => {
            auth.application_token(&token).await.and_then(|a| {
                if a.user.username.eq_ignore_ascii_case(&username) {
                    Ok(a)
                } else {
                    Err(portcullis_service::auth::AuthFailure::Invalid)
                }
            })
        }
        Some(Credentials::Bearer(token)) => auth.application_token(&token).await,
    };
    result.map(Some).map_err(Error::from)
}

/// An authenticated API caller; anonymous or bad credentials → 401. A read-only
/// credential (a pull-only application token) reaches only the safe methods: every
/// write is refused here with 403 and a message, before any handler runs, so no
/// endpoint can forget the rule (the services check it again).
pub struct Caller(pub Authenticated);

impl FromRequestParts<Services> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, ApiError> {
        match OptionalCaller::from_request_parts(parts, services).await? {
            OptionalCaller(Some(a)) => Ok(Caller(a)),
            OptionalCaller(None) => Err(ApiError(Error::Unauthenticated)),
        }
    }
}

/// A caller who may be anonymous; bad credentials are still 401.
pub struct OptionalCaller(pub Option<Authenticated>);

impl FromRequestParts<Services> for OptionalCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, ApiError> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, services)
            .await
            .unwrap_or_else(|never| match never {});
        let caller = authenticate(services, &parts.headers, &client).await?;
        if let Some(a) = &caller
            && !parts.method.is_safe()
        {
            a.require_writable()?;
        }
        Ok(OptionalCaller(caller))
    }
}

/// A JSON body; malformed JSON → 400 with Portus's message.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError(Error::Malformed(format!(
                "When specifying application/json as content-type, you must pass valid JSON: {}",
                rejection.body_text()
            )))),
        }
    }
}

/// A path parameter; a value of the wrong type → 400 naming it.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError(Error::Malformed(r.body_text())))
    }
}

/// Query parameters; a value of the wrong type → 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError(Error::Malformed(r.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn parses_credential_headers() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        match credentials(&headers("authorization", &format!("Basic {b64}"))).unwrap() {
            Some(Credentials::Basic { username, secret }) => {
                assert_eq!((username.as_str(), secret.as_str()), ("alice", "pa:ss"));
            }
            _ => panic!("expected basic"),
        }
        assert!(matches!(
            credentials(&headers("authorization", "bearer pcat_x")).unwrap(),
            Some(Credentials::Bearer(t)) if t == "pcat_x"
        ));
        assert!(matches!(
            credentials(&headers("portus-auth", "bob:pcat_y")).unwrap(),
            Some(Credentials::PortusAuth { username, token }) if username == "bob" && token == "pcat_y"
        ));
        assert!(credentials(&HeaderMap::new()).unwrap().is_none());
        for bad in ["Basic !!!", "Digest x", "Basic", "Basic bm9jb2xvbg=="] {
            assert!(
                credentials(&headers("authorization", bad)).is_err(),
                "{bad}"
            );
        }
        assert!(credentials(&headers("portus-auth", "nocolon")).is_err());
    }
}
