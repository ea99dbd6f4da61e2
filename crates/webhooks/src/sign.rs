//! `X-Portcullis-Signature`: an HMAC-SHA256 over the timestamp and the body.
//!
//! The format follows the widely used `t=<unix seconds>,v1=<hex>` scheme
//! (Stripe-style) so receivers can reuse existing verification code. The
//! timestamp is part of the signed message so a captured delivery cannot be
//! replayed outside the receiver's tolerance window, and the `v1` label lets
//! us add another algorithm later, or send several signatures while a
//! secret is being rotated, without breaking receivers.

use aws_lc_rs::hmac;

/// Name of the header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Portcullis-Signature";

fn signed_message(unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut message = unix_seconds.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

/// The value of the `X-Portcullis-Signature` header for `body` sent at
/// `unix_seconds`: `t=<unix seconds>,v1=<lower hex HMAC-SHA256 of "<t>." + body>`.
#[must_use]
pub fn signature_header(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_message(unix_seconds, body));
    format!("t={unix_seconds},v1={}", hex::encode(tag.as_ref()))
}

/// Checks a signature header as a receiver would.
///
/// Accepts the header when it has exactly one `t=` entry within
/// `tolerance_seconds` of `now_unix` (either direction, for clock skew) and
/// at least one `v1=` entry matching the body. Several `v1=` entries are
/// allowed so a sender can sign with an old and a new secret during
/// rotation; unknown entries (future schemes) are ignored. Tags are compared
/// in constant time.
#[must_use]
pub fn verify(
    header: &str,
    secret: &[u8],
    body: &[u8],
    now_unix: i64,
    tolerance_seconds: i64,
) -> bool {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for entry in header.split(',') {
        let Some((key, value)) = entry.trim().split_once('=') else {
            return false;
        };
        match key {
            "t" => {
                // Two timestamps would make it ambiguous which one was signed.
                if timestamp.is_some() {
                    return false;
                }
                match value.parse::<i64>() {
                    Ok(t) => timestamp = Some(t),
                    Err(_) => return false,
                }
            }
            "v1" => {
                // A malformed candidate cannot match; skipping it rather than
                // failing keeps a later valid entry usable.
                if let Ok(tag) = hex::decode(value) {
                    candidates.push(tag);
                }
            }
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    // checked_sub: an attacker-chosen timestamp must not overflow.
    match now_unix.checked_sub(timestamp) {
        Some(age) if age.checked_abs().is_some_and(|a| a <= tolerance_seconds) => {}
        _ => return false,
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let message = signed_message(timestamp, body);
    // hmac::verify compares in constant time. Every candidate is checked
    // (no early exit on the first match) so the timing does not reveal
    // which entry matched.
    let mut matched = false;
    for tag in &candidates {
        matched |= hmac::verify(&key, &message, tag).is_ok();
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors computed outside this crate:
    //   printf '1700000000.{"action":"push"}' | openssl dgst -sha256 -hmac 'whsec_test'
    //   python3 -c "import hmac,hashlib;print(hmac.new(b'key',b'0.',hashlib.sha256).hexdigest())"
    const KAT_BODY: &[u8] = br#"{"action":"push"}"#;
    const KAT_HEX: &str = "4c347b29b509a2a16168b7e007619243e43cf115c5db2fdcd03dab9318dd87d1";
    const KAT_EMPTY_HEX: &str = "85841b4efc3cd7776c3c8f9b7cca9e281c550e5d19889d78e9e669c6337f000d";

    #[test]
    fn known_answer() {
        assert_eq!(
            signature_header(b"whsec_test", 1_700_000_000, KAT_BODY),
            format!("t=1700000000,v1={KAT_HEX}")
        );
        assert_eq!(
            signature_header(b"key", 0, b""),
            format!("t=0,v1={KAT_EMPTY_HEX}")
        );
    }

    #[test]
    fn verify_table() {
        let secret = b"whsec_test";
        let t = 1_700_000_000;
        let good = format!("t={t},v1={KAT_HEX}");
        let other = signature_header(b"other secret", t, KAT_BODY);
        let other_v1 = other.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let cases: Vec<(&str, String, &[u8], i64, bool)> = vec![
            ("exact", good.clone(), KAT_BODY, t, true),
            (
                "within tolerance, later",
                good.clone(),
                KAT_BODY,
                t + 300,
                true,
            ),
            (
                "within tolerance, earlier (skew)",
                good.clone(),
                KAT_BODY,
                t - 300,
                true,
            ),
            ("too old", good.clone(), KAT_BODY, t + 301, false),
            (
                "too far in the future",
                good.clone(),
                KAT_BODY,
                t - 301,
                false,
            ),
            ("other body", good.clone(), b"{}", t, false),
            ("other secret", other.clone(), KAT_BODY, t, false),
            (
                "rotation: old then new",
                format!("t={t},v1={other_v1},v1={KAT_HEX}"),
                KAT_BODY,
                t,
                true,
            ),
            (
                "rotation: new then old",
                format!("t={t},v1={KAT_HEX},v1={other_v1}"),
                KAT_BODY,
                t,
                true,
            ),
            (
                "spaces after comma",
                format!("t={t}, v1={KAT_HEX}"),
                KAT_BODY,
                t,
                true,
            ),
            (
                "unknown scheme ignored",
                format!("t={t},v0=abc,v1={KAT_HEX}"),
                KAT_BODY,
                t,
                true,
            ),
            (
                "malformed candidate skipped",
                format!("t={t},v1=zz,v1={KAT_HEX}"),
                KAT_BODY,
                t,
                true,
            ),
            (
                "upper hex accepted",
                format!("t={t},v1={}", KAT_HEX.to_uppercase()),
                KAT_BODY,
                t,
                true,
            ),
            ("no timestamp", format!("v1={KAT_HEX}"), KAT_BODY, t, false),
            (
                "two timestamps",
                format!("t={t},t={t},v1={KAT_HEX}"),
                KAT_BODY,
                t,
                false,
            ),
            ("no signature", format!("t={t}"), KAT_BODY, t, false),
            (
                "timestamp altered",
                format!("t={},v1={KAT_HEX}", t + 1),
                KAT_BODY,
                t,
                false,
            ),
            (
                "truncated tag",
                format!("t={t},v1={}", &KAT_HEX[..62]),
                KAT_BODY,
                t,
                false,
            ),
            ("garbage", "garbage".to_owned(), KAT_BODY, t, false),
            ("empty", String::new(), KAT_BODY, t, false),
            (
                "bad timestamp",
                format!("t=abc,v1={KAT_HEX}"),
                KAT_BODY,
                t,
                false,
            ),
            (
                "overflowing timestamp",
                format!("t={},v1={KAT_HEX}", i64::MIN),
                KAT_BODY,
                t,
                false,
            ),
        ];
        for (name, header, body, now, want) in cases {
            assert_eq!(
                verify(&header, secret, body, now, 300),
                want,
                "{name}: {header}"
            );
        }
    }

    #[test]
    fn round_trip_binary_secret() {
        let secret = [0u8, 255, 7, 42];
        let header = signature_header(&secret, 12, b"\x00\x01binary");
        assert!(verify(&header, &secret, b"\x00\x01binary", 12, 0));
        assert!(!verify(&header, &secret[..3], b"\x00\x01binary", 12, 0));
    }
}
