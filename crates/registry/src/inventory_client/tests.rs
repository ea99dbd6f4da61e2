use super::*;
use serde_json::json;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
const DC: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

fn headers(links: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for l in links {
        h.append(LINK, l.parse().unwrap());
    }
    h
}

#[test]
fn link_header_of_distribution_2_8() {
    let h = headers(&[r#"</v2/_catalog?last=b&n=2>; rel="next""#]);
    assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?last=b&n=2"));
}

#[test]
fn link_header_variants() {
    for (value, expected) in [
        (
            r#"<https://r.example/v2/x/tags/list?n=1&last=a>;rel=next"#,
            Some("https://r.example/v2/x/tags/list?n=1&last=a"),
        ),
        (r#"</a>; rel="prev", </b>; rel="next""#, Some("/b")),
        (r#"</a>; rel="prev""#, None),
        (r#"</a>; rel="next prefetch""#, Some("/a")),
        (r#"</a>; title="x"; REL="Next""#, Some("/a")),
        (r#"</a>"#, None),
        ("", None),
        ("garbage; rel=next", None),
    ] {
        assert_eq!(parse_next_link(value).as_deref(), expected, "{value:?}");
    }
    // The second of several Link headers.
    let h = headers(&[r#"</p>; rel="prev""#, r#"</n>; rel="next""#]);
    assert_eq!(next_link(&h).as_deref(), Some("/n"));
    assert_eq!(next_link(&HeaderMap::new()), None);
}

#[test]
fn pages() {
    assert_eq!(
        parse_page(br#"{"repositories":["a","b"]}"#, "repositories").unwrap(),
        ["a", "b"]
    );
    assert!(
        parse_page(br#"{"name":"x","tags":null}"#, "tags")
            .unwrap()
            .is_empty()
    );
    assert!(parse_page(br#"{"name":"x"}"#, "tags").unwrap().is_empty());
    assert!(parse_page(br#"{"tags":"a"}"#, "tags").is_err());
    assert!(parse_page(br#"{"tags":[1]}"#, "tags").is_err());
    assert!(parse_page(b"<html>", "tags").is_err());
}

fn bytes(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn docker_schema2_manifest() {
    let body = bytes(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1000, "digest": DC},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 20000, "digest": D1},
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 300, "digest": D2},
        ],
    }));
    let (media_type, parsed) = parse_manifest(&body, Some("application/json")).unwrap();
    assert_eq!(
        media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        parsed,
        Parsed::Image(Image {
            config_digest: DC.to_owned(),
            size: 21300
        })
    );
}

#[test]
fn oci_manifest_without_media_type() {
    let body = bytes(json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 5, "digest": DC},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 7, "digest": D1}],
    }));
    // From the Content-Type (parameters dropped) when the body has none...
    let (media_type, parsed) = parse_manifest(
        &body,
        Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    )
    .unwrap();
    assert_eq!(media_type, OCI_MANIFEST);
    assert_eq!(
        parsed,
        Parsed::Image(Image {
            config_digest: DC.to_owned(),
            size: 12
        })
    );
    // ...and from the structure when the Content-Type is generic.
    let (media_type, _) = parse_manifest(&body, Some("application/octet-stream")).unwrap();
    assert_eq!(media_type, OCI_MANIFEST);
    let (media_type, _) = parse_manifest(&body, None).unwrap();
    assert_eq!(media_type, OCI_MANIFEST);
}

#[test]
fn oci_index_with_an_attestation_entry() {
    let body = bytes(json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "size": 500, "digest": D1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "size": 501, "digest": D2, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "size": 566, "digest": D3,
             "annotations": {"vnd.docker.reference.digest": D1, "vnd.docker.reference.type": "attestation-manifest"},
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }));
    let (media_type, parsed) = parse_manifest(&body, None).unwrap();
    assert_eq!(media_type, OCI_INDEX);
    let Parsed::Index(children) = parsed else {
        panic!("not an index: {parsed:?}")
    };
    assert_eq!(children.len(), 3);
    assert_eq!(children[1].variant.as_deref(), Some("v8"));
    assert_eq!(children[0].variant, None);
    let kept: Vec<_> = children
        .iter()
        .filter(|c| !c.is_attestation())
        .map(|c| c.digest.as_str())
        .collect();
    assert_eq!(kept, [D1, D2]);
}

#[test]
fn docker_manifest_list() {
    let list = "application/vnd.docker.distribution.manifest.list.v2+json";
    let body = bytes(json!({
        "schemaVersion": 2,
        "mediaType": list,
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": D1,
             "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": D2,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }));
    let (media_type, parsed) = parse_manifest(&body, Some(OCI_INDEX)).unwrap();
    assert_eq!(
        media_type, list,
        "the body's mediaType wins over the header"
    );
    assert_eq!(
        parsed,
        Parsed::Index(vec![
            Child {
                digest: D1.to_owned(),
                os: Some("linux".to_owned()),
                architecture: Some("arm".to_owned()),
                variant: Some("v7".to_owned()),
            },
            Child {
                digest: D2.to_owned(),
                os: Some("linux".to_owned()),
                architecture: Some("amd64".to_owned()),
                variant: None,
            },
        ])
    );
}

#[test]
fn schema1_manifest() {
    let body = bytes(
        json!({"schemaVersion": 1, "name": "x", "tag": "t", "architecture": "amd64", "fsLayers": []}),
    );
    let (media_type, parsed) = parse_manifest(&body, None).unwrap();
    assert_eq!(media_type, SCHEMA1);
    assert_eq!(parsed, Parsed::Schema1);
}

#[test]
fn malformed_manifests() {
    for (body, problem) in [
        (b"not json".to_vec(), "manifest is not JSON"),
        (bytes(json!([])), "manifest is not a JSON object"),
        (
            bytes(json!({"schemaVersion": 2})),
            "neither an image manifest nor an index",
        ),
        (
            bytes(json!({"manifests": {}})),
            "\"manifests\" is not a list",
        ),
        (
            bytes(json!({"manifests": [{"digest": "sha256:zz"}]})),
            "manifests[0]: no valid digest",
        ),
        (
            bytes(json!({"config": {"digest": DC}})),
            "config has no valid size",
        ),
        (
            bytes(json!({"config": {"size": 1, "digest": "../../x"}})),
            "config has no valid digest",
        ),
        (
            bytes(
                json!({"config": {"size": 1, "digest": DC}, "layers": [{"digest": D1, "size": -5}]}),
            ),
            "layers[0] has no valid size",
        ),
        (
            bytes(
                json!({"config": {"size": i64::MAX, "digest": DC}, "layers": [{"digest": D1, "size": 1}]}),
            ),
            "layer sizes overflow",
        ),
    ] {
        let err = parse_manifest(&body, None).unwrap_err();
        assert!(
            err.starts_with(problem),
            "{err:?} should start with {problem:?}"
        );
    }
}

#[test]
fn config_platform() {
    let body =
        bytes(json!({"architecture": "arm64", "os": "linux", "variant": "v8", "rootfs": {}}));
    assert_eq!(
        platform_of_config(&body),
        Some((
            "linux".to_owned(),
            "arm64".to_owned(),
            Some("v8".to_owned())
        ))
    );
    assert_eq!(platform_of_config(br#"{"os":"linux"}"#), None);
    assert_eq!(platform_of_config(b"\x00"), None);
}

#[test]
fn names_and_references() {
    for ok in ["a", "ns/repo", "a.b_c-d/e__f", "x/y/z", "r00042"] {
        assert!(check_repository(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "A", "ns/", "/ns", "ns//r", "../x", "ns/.x", "a?b", "a%2fb", "a b", "-a",
    ] {
        assert!(check_repository(bad).is_err(), "{bad}");
    }
    for ok in ["latest", "v1.2.3", "_x", D1, "sha512:abcDEF_="] {
        assert!(check_reference(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        ".x",
        "-x",
        "a/b",
        "a?b",
        "sha256:abc",
        "sha256:../x",
        &"x".repeat(129),
    ] {
        assert!(check_reference(bad).is_err(), "{bad}");
    }
    assert!(!is_digest(&DC.to_uppercase().replace("SHA256", "sha256")));
}

#[test]
fn statuses_map_to_errors() {
    let at = "GET r:5000/v2/x/tags/list";
    let cases = [
        (Method::GET, 401, "Unauthorized"),
        (Method::GET, 403, "Unauthorized"),
        (Method::GET, 404, "NotFound"),
        (Method::DELETE, 405, "DeleteDisabled"),
        (Method::GET, 405, "Protocol"),
        (Method::GET, 400, "Protocol"),
        (Method::GET, 429, "Unavailable"),
        (Method::GET, 500, "Unavailable"),
        (Method::GET, 503, "Unavailable"),
    ];
    for (method, status, variant) in cases {
        let e = status_error(&method, StatusCode::from_u16(status).unwrap(), at, "");
        assert!(format!("{e:?}").starts_with(variant), "{status}: {e:?}");
        assert_eq!(e.is_transient(), variant == "Unavailable", "{status}");
        assert!(e.to_string().starts_with(at), "{e}");
    }
    let e = status_error(
        &Method::DELETE,
        StatusCode::METHOD_NOT_ALLOWED,
        at,
        "UNSUPPORTED",
    );
    assert!(e.to_string().contains("storage.delete.enabled"), "{e}");
}

#[test]
fn error_codes_are_only_codes() {
    let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known","detail":{"name":"x"}},{"code":"evil\nline"}]}"#;
    assert_eq!(error_codes(body), "NAME_UNKNOWN");
    assert_eq!(error_codes(b"<html>"), "");
}

#[test]
fn bad_hostnames_are_refused() {
    for bad in ["", "r/x", "user@r", "r?x", "r#x", "r x"] {
        let e = RegistryClient::new(
            bad,
            false,
            Duration::from_secs(1),
            Arc::new(Fixed("t")),
            &crate::tls::TrustedRoots::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ClientError::Config(_)), "{bad}: {e:?}");
    }
}

// ----- paging against a scripted HTTP/1.1 server (2.8 does not page tags) -----

struct Fixed(&'static str);

impl TokenSource for Fixed {
    fn token(&self, _scope: &str) -> Result<String, String> {
        Ok(self.0.to_owned())
    }
}

/// Records the scopes asked for.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl TokenSource for Recording {
    fn token(&self, scope: &str) -> Result<String, String> {
        self.0.lock().unwrap().push(scope.to_owned());
        Ok("secret-token-value".to_owned())
    }
}

struct Refusing;

impl TokenSource for Refusing {
    fn token(&self, _scope: &str) -> Result<String, String> {
        Err("signing key not loaded".to_owned())
    }
}

/// One scripted answer: the request line it is for, then status line, extra headers,
/// body.
type Script = Vec<(&'static str, &'static str, String, String)>;

/// Serves `script` (one answer per connection, matched by request line) and records
/// every request head.
async fn scripted(script: Script) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request).to_string();
            log.lock().unwrap().push(head.clone());
            let line = head.lines().next().unwrap_or_default().to_owned();
            let answer = script
                .iter()
                .find(|(request_line, ..)| line == format!("{request_line} HTTP/1.1"));
            let response = match answer {
                Some((_, status, headers, body)) => format!(
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
                None => "HTTP/1.1 599 Unscripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned(),
            };
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    });
    (addr, seen)
}

fn client(addr: &str, tokens: Arc<dyn TokenSource>) -> RegistryClient {
    RegistryClient::new(
        addr,
        false,
        Duration::from_secs(5),
        tokens,
        &crate::tls::TrustedRoots::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn tags_follow_links_with_a_bearer_token_per_page() {
    let (addr, seen) = scripted(vec![
        (
            "GET /v2/ns/repo/tags/list?n=2",
            "200 OK",
            "Link: </v2/ns/repo/tags/list?last=b&n=2>; rel=\"next\"\r\n".to_owned(),
            r#"{"name":"ns/repo","tags":["a","b"]}"#.to_owned(),
        ),
        (
            "GET /v2/ns/repo/tags/list?last=b&n=2",
            "200 OK",
            String::new(),
            r#"{"name":"ns/repo","tags":["c"]}"#.to_owned(),
        ),
    ])
    .await;
    let tokens = Arc::new(Recording::default());
    let tags = client(&addr, tokens.clone())
        .tags("ns/repo", 2)
        .await
        .unwrap();
    assert_eq!(tags, ["a", "b", "c"]);
    assert_eq!(
        *tokens.0.lock().unwrap(),
        ["repository:ns/repo:pull", "repository:ns/repo:pull"]
    );
    for head in seen.lock().unwrap().iter() {
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: bearer secret-token-value\r\n"),
            "{head}"
        );
    }
}

#[tokio::test]
async fn an_error_mid_way_fails_the_whole_catalog() {
    let (addr, _) = scripted(vec![
        (
            "GET /v2/_catalog?n=2",
            "200 OK",
            "Link: </v2/_catalog?last=b&n=2>; rel=\"next\"\r\n".to_owned(),
            r#"{"repositories":["a","b"]}"#.to_owned(),
        ),
        (
            "GET /v2/_catalog?last=b&n=2",
            "503 Service Unavailable",
            String::new(),
            r#"{"errors":[{"code":"UNAVAILABLE","message":"secret-token-value"}]}"#.to_owned(),
        ),
    ])
    .await;
    let tokens = Arc::new(Recording::default());
    let e = client(&addr, tokens.clone()).catalog(2).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let message = e.to_string();
    assert_eq!(
        message,
        format!("GET {addr}/v2/_catalog?last=b&n=2: HTTP 503 UNAVAILABLE")
    );
    assert_eq!(
        *tokens.0.lock().unwrap(),
        ["registry:catalog:*", "registry:catalog:*"]
    );
}

#[tokio::test]
async fn links_to_other_hosts_and_loops_are_not_followed() {
    let (addr, seen) = scripted(vec![
        (
            "GET /v2/_catalog?n=1",
            "200 OK",
            "Link: <http://elsewhere.example/v2/_catalog?last=a&n=1>; rel=\"next\"\r\n".to_owned(),
            r#"{"repositories":["a"]}"#.to_owned(),
        ),
        (
            "GET /v2/ns/r/tags/list?n=1",
            "200 OK",
            "Link: </v2/ns/r/tags/list?n=1>; rel=\"next\"\r\n".to_owned(),
            r#"{"tags":["a"]}"#.to_owned(),
        ),
    ])
    .await;
    let c = client(&addr, Arc::new(Fixed("t")));
    let e = c.catalog(1).await.unwrap_err();
    assert!(e.to_string().contains("another host"), "{e}");
    let e = c.tags("ns/r", 1).await.unwrap_err();
    assert!(e.to_string().contains("without progress"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn missing_repository_is_not_found_and_null_tags_are_empty() {
    let (addr, _) = scripted(vec![
        (
            "GET /v2/gone/tags/list?n=10",
            "404 Not Found",
            String::new(),
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#
                .to_owned(),
        ),
        (
            "GET /v2/empty/tags/list?n=10",
            "200 OK",
            String::new(),
            r#"{"name":"empty","tags":null}"#.to_owned(),
        ),
    ])
    .await;
    let c = client(&addr, Arc::new(Fixed("t")));
    let e = c.tags("gone", 10).await.unwrap_err();
    assert!(matches!(e, ClientError::NotFound(_)), "{e:?}");
    assert!(e.to_string().contains("NAME_UNKNOWN"), "{e}");
    assert!(c.tags("empty", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = format!(r#"{{"repositories":["{}"]}}"#, "a".repeat(MAX_BODY));
    let (addr, _) = scripted(vec![("GET /v2/_catalog?n=5", "200 OK", String::new(), big)]).await;
    let e = client(&addr, Arc::new(Fixed("t")))
        .catalog(5)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[tokio::test]
async fn token_failures_and_connection_errors_do_not_leak_the_token() {
    let e = client("127.0.0.1:9", Arc::new(Refusing))
        .catalog(5)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Token(_)), "{e:?}");
    assert!(e.to_string().contains("signing key not loaded"), "{e}");
    // Port 9 (discard) is closed on loopback.
    let e = client("127.0.0.1:9", Arc::new(Recording::default()))
        .manifest("ns/repo", "latest")
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with("GET 127.0.0.1:9/v2/ns/repo/manifests/latest: "),
        "{message}"
    );
    assert!(!message.contains("secret-token-value"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[tokio::test]
async fn a_child_that_is_not_the_requested_digest_is_refused() {
    let child =
        bytes(json!({"schemaVersion": 2, "config": {"size": 1, "digest": DC}, "layers": []}));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "size": child.len(), "digest": D1,
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    })
    .to_string();
    let child = String::from_utf8(child).unwrap();
    let (addr, _) = scripted(vec![
        ("GET /v2/ns/repo/manifests/multi", "200 OK", String::new(), index),
        (
            // D1 is not the sha256 of this body.
            "GET /v2/ns/repo/manifests/sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "200 OK",
            String::new(),
            child,
        ),
    ])
    .await;
    let e = client(&addr, Arc::new(Fixed("t")))
        .manifest("ns/repo", "multi")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not the requested one"), "{e}");
}

#[tokio::test]
async fn invalid_names_never_reach_the_network() {
    let c = client("127.0.0.1:9", Arc::new(Refusing));
    for e in [
        c.tags("../x", 1).await.unwrap_err(),
        c.manifest("ns/r", "a/b").await.unwrap_err(),
        c.manifest_digest("ns/r", "?x").await.unwrap_err(),
        c.delete_manifest("ns/r", "latest").await.unwrap_err(),
    ] {
        assert!(matches!(e, ClientError::InvalidReference(_)), "{e:?}");
    }
}
