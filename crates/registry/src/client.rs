//! Registry reachability check with Portus semantics: `GET /v2/` must answer 200 or 401 and
//! carry the `Docker-Distribution-Api-Version` header (anything else is not a v2 registry).

use std::error::Error as _;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReachabilityError {
    #[error("registry does not implement v2 of the API")]
    NotV2,
    #[error("{0}")]
    Connection(String),
}

/// `GET {http|https}://{hostname}/v2/` with `timeout` for the whole exchange.
pub async fn check_reachable(
    hostname: &str,
    use_ssl: bool,
    timeout: Duration,
    roots: &crate::tls::TrustedRoots,
) -> Result<(), ReachabilityError> {
    let scheme = if use_ssl { "https" } else { "http" };
    let url = format!("{scheme}://{hostname}/v2/");
    let client = roots
        .apply(reqwest::Client::builder())
        .timeout(timeout)
        // Like Portus: a redirect is an answer, not something to follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ReachabilityError::Connection(format!("HTTP client setup failed: {e}")))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| ReachabilityError::Connection(describe(hostname, timeout, &e)))?;
    let status = response.status().as_u16();
    let v2 = response
        .headers()
        .contains_key("docker-distribution-api-version");
    if matches!(status, 200 | 401) && v2 {
        Ok(())
    } else {
        Err(ReachabilityError::NotV2)
    }
}

/// One line naming the host and the innermost causes (reqwest's own message only says
/// "error sending request").
pub(crate) fn describe(hostname: &str, timeout: Duration, err: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut refused = false;
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        let text = e.to_string();
        // Layers often repeat the message of the layer below.
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        source = e.source();
    }
    let detail = if causes.is_empty() {
        err.to_string()
    } else {
        causes.join(": ")
    };
    if err.is_timeout() {
        format!("no answer from {hostname} within {timeout:?}: {detail}")
    } else if refused {
        format!("connection refused by {hostname}: {detail}")
    } else {
        format!("cannot reach {hostname}: {detail}")
    }
}

#[cfg(test)]
mod tests;
