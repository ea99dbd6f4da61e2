use crate::tls::TrustedRoots;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A one-shot HTTP/1.1 server on 127.0.0.1 answering every request with `status` and
/// `headers`; returns its `host:port`.
async fn serve(status: &'static str, headers: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            // Read the request head (GET has no body).
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            assert!(request.starts_with(b"GET /v2/ HTTP/1.1\r\n"));
            let response = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    });
    addr
}

const V2: &str = "Docker-Distribution-Api-Version: registry/2.0\r\n";

#[tokio::test]
async fn unauthorized_v2_registry_is_reachable() {
    let host = serve("401 Unauthorized", V2).await;
    check_reachable(&host, false, TIMEOUT, &TrustedRoots::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn ok_v2_registry_is_reachable() {
    let host = serve("200 OK", V2).await;
    check_reachable(&host, false, TIMEOUT, &TrustedRoots::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn ok_without_header_is_not_v2() {
    let host = serve("200 OK", "").await;
    let err = check_reachable(&host, false, TIMEOUT, &TrustedRoots::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ReachabilityError::NotV2), "{err}");
    assert_eq!(err.to_string(), "registry does not implement v2 of the API");
}

#[tokio::test]
async fn not_found_with_header_is_not_v2() {
    let host = serve("404 Not Found", V2).await;
    let err = check_reachable(&host, false, TIMEOUT, &TrustedRoots::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ReachabilityError::NotV2), "{err}");
}

#[tokio::test]
async fn closed_port_is_a_connection_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = check_reachable(&host, false, TIMEOUT, &TrustedRoots::default())
        .await
        .unwrap_err();
    let ReachabilityError::Connection(msg) = &err else {
        panic!("expected a connection error, got {err}");
    };
    assert!(
        msg.starts_with(&format!("connection refused by {host}: ")),
        "{msg}"
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let err = check_reachable(
        &host,
        false,
        Duration::from_millis(300),
        &TrustedRoots::default(),
    )
    .await
    .unwrap_err();
    let ReachabilityError::Connection(msg) = &err else {
        panic!("expected a connection error, got {err}");
    };
    assert!(
        msg.starts_with(&format!("no answer from {host} within")),
        "{msg}"
    );
}
