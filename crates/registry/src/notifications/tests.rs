use super::*;
use serde_json::json;

/// Envelopes captured from distribution 2.8.2 (see the contract doc, §7).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/notifications/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn only(name: &str) -> Notification {
    let mut events = parse_envelope(&fixture(name)).unwrap();
    assert_eq!(events.len(), 1, "{name}: one event per envelope in 2.8");
    events.remove(0)
}

const LAYER: &str = "sha256:ff42d0522835fe47e2ba826dd1530ad781639b4b97012f083f9045f3ea5bc32a";
const OCI_MANIFEST: &str =
    "sha256:27c9a3a1ab59a174db0349cff09b4f6479951a437a5381a34624ceefe6ae9529";

/// What each fixture must parse to, apart from `id`, `timestamp_ms` and `raw`.
struct Expected {
    fixture: &'static str,
    action: &'static str,
    repository: &'static str,
    tag: Option<&'static str>,
    digest: Option<&'static str>,
    media_type: Option<&'static str>,
    size: Option<i64>,
    method: &'static str,
    actor: &'static str,
    manifest: bool,
}

const EXPECTED: &[Expected] = &[
    Expected {
        fixture: "push-manifest",
        action: "push",
        repository: "ns/repo",
        tag: Some("dpkg"),
        digest: Some(OCI_MANIFEST),
        media_type: Some("application/vnd.oci.image.manifest.v1+json"),
        size: Some(348),
        method: "PUT",
        actor: "alice",
        manifest: true,
    },
    Expected {
        fixture: "push-blob",
        action: "push",
        repository: "ns/repo",
        tag: None,
        digest: Some(LAYER),
        media_type: Some("application/octet-stream"),
        size: Some(190022),
        method: "PUT",
        actor: "alice",
        manifest: false,
    },
    Expected {
        fixture: "mount-blob",
        action: "mount",
        repository: "ns/other",
        tag: None,
        digest: Some(LAYER),
        media_type: Some("application/octet-stream"),
        size: Some(190022),
        method: "POST",
        actor: "alice",
        manifest: false,
    },
    Expected {
        fixture: "pull-manifest",
        action: "pull",
        repository: "ns/repo",
        tag: Some("dpkg"),
        digest: Some(OCI_MANIFEST),
        media_type: Some("application/vnd.oci.image.manifest.v1+json"),
        size: Some(348),
        method: "GET",
        actor: "bob",
        manifest: true,
    },
    Expected {
        fixture: "pull-blob-via-HEAD",
        action: "pull",
        repository: "ns/repo",
        tag: None,
        digest: Some(LAYER),
        media_type: Some("application/octet-stream"),
        size: Some(190022),
        method: "HEAD",
        actor: "bob",
        manifest: false,
    },
    Expected {
        fixture: "delete-manifest",
        action: "delete",
        repository: "ns/repo",
        tag: None,
        digest: Some("sha256:a84d6d2480d1caca64913c3fcd46b0e60d4035081ffcfecd64fee836457765c2"),
        media_type: None,
        size: None,
        method: "DELETE",
        actor: "alice",
        manifest: true,
    },
    Expected {
        fixture: "delete-tag",
        action: "delete",
        repository: "ns/repo",
        tag: Some("busybox"),
        digest: None,
        media_type: None,
        size: None,
        method: "DELETE",
        actor: "alice",
        manifest: true,
    },
];

#[test]
fn every_fixture_parses_to_the_expected_notification() {
    for e in EXPECTED {
        let n = only(e.fixture);
        let f = e.fixture;
        assert_eq!(n.action, e.action, "{f}");
        assert_eq!(n.repository, e.repository, "{f}");
        assert_eq!(n.tag.as_deref(), e.tag, "{f}");
        assert_eq!(n.digest.as_deref(), e.digest, "{f}");
        assert_eq!(n.media_type.as_deref(), e.media_type, "{f}");
        assert_eq!(n.size, e.size, "{f}");
        assert_eq!(n.request_method.as_deref(), Some(e.method), "{f}");
        assert_eq!(n.is_manifest_event(), e.manifest, "{f}");
        assert_eq!(n.actor.as_deref(), Some(e.actor), "{f}");
        assert_eq!(n.request_host.as_deref(), Some("127.0.0.1:5100"), "{f}");
        assert_eq!(n.source_addr.as_deref(), Some("vm:5100"), "{f}");
        // The raw event is the envelope's event, untouched (references and all).
        let envelope: Value = serde_json::from_slice(&fixture(f)).unwrap();
        assert_eq!(n.raw, envelope["events"][0], "{f}");
        assert_eq!(n.id, envelope["events"][0]["id"], "{f}");
    }
}

#[test]
fn timestamp_is_unix_milliseconds() {
    // 2026-11-23T08:13:23.856585696Z
    let n = only("push-manifest");
    assert_eq!(n.timestamp_ms, 1_795_421_603_856);
    let with_offset = envelope(json!({"timestamp": "2026-11-23T09:13:23.5+01:00"}));
    assert_eq!(
        parse_envelope(&with_offset).unwrap()[0].timestamp_ms,
        1_795_421_603_500
    );
}

#[test]
fn raw_event_keeps_fields_the_struct_does_not_have() {
    let n = only("push-manifest");
    assert_eq!(n.raw["target"]["references"].as_array().unwrap().len(), 2);
    assert_eq!(n.raw["request"]["useragent"], "skopeo/1.9.3");
    let serialized = serde_json::to_value(&n).unwrap();
    assert_eq!(serialized["raw"], n.raw);
    assert_eq!(serialized["timestamp_ms"], 1_795_421_603_856_i64);
}

/// One envelope holding a valid event with `overrides` merged in (a `null` override
/// removes the field).
fn envelope(overrides: Value) -> Vec<u8> {
    let mut event = json!({
        "id": "e1",
        "timestamp": "2026-11-23T08:13:23Z",
        "action": "push",
        "target": {"repository": "ns/repo", "mediaType": "application/vnd.docker.distribution.manifest.v2+json"},
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            event.as_object_mut().unwrap().remove(k);
        } else {
            event[k] = v.clone();
        }
    }
    serde_json::to_vec(&json!({"events": [event]})).unwrap()
}

fn error(body: &[u8]) -> String {
    parse_envelope(body).unwrap_err().to_string()
}

#[test]
fn malformed_envelopes_are_refused_with_one_line_naming_the_problem() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not JSON",
            b"{\"events\": [".to_vec(),
            "envelope is not JSON: ",
        ),
        (
            "not an object",
            b"[]".to_vec(),
            "envelope is not a JSON object",
        ),
        (
            "no events",
            b"{}".to_vec(),
            "envelope has no \"events\" list",
        ),
        (
            "events not a list",
            b"{\"events\": {}}".to_vec(),
            "envelope has no \"events\" list",
        ),
        (
            "event not an object",
            b"{\"events\": [\"push\"]}".to_vec(),
            "event 0: not a JSON object",
        ),
        (
            "missing id",
            envelope(json!({"id": null})),
            "event 0: missing \"id\"",
        ),
        (
            "empty id",
            envelope(json!({"id": ""})),
            "event 0: \"id\" is empty",
        ),
        (
            "id not a string",
            envelope(json!({"id": 7})),
            "event 0: \"id\" is not a string",
        ),
        (
            "missing action",
            envelope(json!({"action": null})),
            "event 0: missing \"action\"",
        ),
        (
            "missing timestamp",
            envelope(json!({"timestamp": null})),
            "event 0: missing \"timestamp\"",
        ),
        (
            "bad timestamp",
            envelope(json!({"timestamp": "yesterday"})),
            "event 0: \"timestamp\" is not an RFC 3339 date-time",
        ),
        (
            "timestamp without zone",
            envelope(json!({"timestamp": "2026-11-23T08:13:23"})),
            "event 0: \"timestamp\" is not an RFC 3339 date-time",
        ),
        (
            "missing target",
            envelope(json!({"target": null})),
            "event 0: missing \"target\"",
        ),
        (
            "target not an object",
            envelope(json!({"target": "ns/repo"})),
            "event 0: \"target\" is not an object",
        ),
        (
            "missing repository",
            envelope(json!({"target": {"tag": "latest"}})),
            "event 0: missing \"target.repository\"",
        ),
    ];
    for (name, body, expected) in cases {
        let message = error(&body);
        assert!(
            message.starts_with(expected),
            "{name}: {message:?} should start with {expected:?}"
        );
        assert!(!message.contains('\n'), "{name}: {message:?}");
    }
}

#[test]
fn the_bad_event_is_named_by_its_index() {
    let good = json!({"id": "a", "timestamp": "2026-11-23T08:13:23Z", "action": "pull", "target": {"repository": "r"}});
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("id");
    let body = serde_json::to_vec(&json!({"events": [good, good, bad]})).unwrap();
    assert_eq!(error(&body), "event 2: missing \"id\"");
}

#[test]
fn messages_do_not_quote_values() {
    let message = error(&envelope(json!({"timestamp": "secret-looking-value"})));
    assert!(!message.contains("secret-looking-value"), "{message}");
}

#[test]
fn empty_event_list_is_valid() {
    assert_eq!(parse_envelope(b"{\"events\": []}").unwrap(), vec![]);
}

#[test]
fn many_events_parse_and_too_many_are_refused() {
    let event = json!({"id": "a", "timestamp": "2026-11-23T08:13:23Z", "action": "pull", "target": {"repository": "r"}});
    let at_cap = serde_json::to_vec(&json!({"events": vec![event.clone(); MAX_EVENTS]})).unwrap();
    assert_eq!(parse_envelope(&at_cap).unwrap().len(), MAX_EVENTS);
    let over = serde_json::to_vec(&json!({"events": vec![event; MAX_EVENTS + 1]})).unwrap();
    assert_eq!(
        parse_envelope(&over).unwrap_err(),
        EnvelopeError::TooManyEvents(MAX_EVENTS + 1)
    );
}

#[test]
fn optional_fields_of_the_wrong_type_or_empty_are_absent() {
    let body = envelope(json!({
        "target": {"repository": "ns/repo", "tag": 5, "digest": "", "size": "big"},
        "actor": {"name": ""},
        "request": "nope",
    }));
    let n = &parse_envelope(&body).unwrap()[0];
    assert_eq!(n.tag, None);
    assert_eq!(n.digest, None);
    assert_eq!(n.size, None);
    assert_eq!(n.actor, None);
    assert_eq!(n.request_host, None);
    assert_eq!(n.media_type, None);
}

#[test]
fn manifest_media_types_are_manifest_events() {
    for (media_type, manifest) in [
        ("application/vnd.docker.distribution.manifest.v2+json", true),
        (
            "application/vnd.docker.distribution.manifest.list.v2+json",
            true,
        ),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            true,
        ),
        ("application/vnd.docker.distribution.manifest.v1+json", true),
        ("application/vnd.oci.image.manifest.v1+json", true),
        ("application/vnd.oci.image.index.v1+json", true),
        ("application/octet-stream", false),
        ("application/vnd.oci.image.layer.v1.tar+gzip", false),
        ("application/vnd.oci.image.config.v1+json", false),
        ("application/vnd.docker.container.image.v1+json", false),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", false),
    ] {
        let body = envelope(
            json!({"target": {"repository": "r", "mediaType": media_type, "digest": "sha256:00"}}),
        );
        let n = &parse_envelope(&body).unwrap()[0];
        assert_eq!(n.is_manifest_event(), manifest, "{media_type}");
    }
}

#[test]
fn delete_without_digest_or_tag_is_not_a_manifest_event() {
    let body = envelope(json!({"action": "delete", "target": {"repository": "r"}}));
    assert!(!parse_envelope(&body).unwrap()[0].is_manifest_event());
    // A push without a media type is not guessed to be a manifest.
    let body = envelope(json!({"target": {"repository": "r", "digest": "sha256:00"}}));
    assert!(!parse_envelope(&body).unwrap()[0].is_manifest_event());
}

#[test]
fn supported_media_types() {
    for (content_type, supported) in [
        (None, true),
        (Some(EVENTS_V1), true),
        (Some(EVENTS_V2), true),
        (Some("application/json"), true),
        (Some("application/json; charset=utf-8"), true),
        (
            Some("application/vnd.docker.distribution.events.v1+json;charset=UTF-8"),
            true,
        ),
        (Some("Application/JSON"), true),
        (Some("text/plain"), false),
        (Some("application/x-www-form-urlencoded"), false),
        (Some(""), false),
    ] {
        assert_eq!(
            is_supported_media_type(content_type),
            supported,
            "{content_type:?}"
        );
    }
}
