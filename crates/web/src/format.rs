//! How values read on a page: times, sizes, digests, activities.

use portcullis_domain::inventory::Activity;
use portcullis_domain::time::Timestamp;

/// `2026-12-03 08:15 UTC`, the form shown; the `<time>` element carries RFC 3339.
pub fn when(ts: Timestamp) -> String {
    let rfc = portcullis_http::rfc3339(ts);
    // "2026-12-03T08:15:42Z" → "2026-12-03 08:15 UTC"
    match (rfc.get(..10), rfc.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => rfc,
    }
}

pub fn rfc3339(ts: Timestamp) -> String {
    portcullis_http::rfc3339(ts)
}

/// Bytes in binary units, one decimal: `812 B`, `1.5 KiB`, `23.4 MiB`.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[expect(clippy::cast_precision_loss, reason = "one decimal is shown")]
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The 12 hex digits after the algorithm, as `docker images` shows an image id.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// What an activity says, in words (Portus's keys, section 10.4).
pub fn activity(a: &Activity) -> String {
    let p = |name: &str| {
        a.parameters
            .get(name)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    };
    let repository = match (p("namespace_name"), p("repository_name")) {
        (Some(ns), Some(repo)) if !ns.is_empty() => format!("{ns}/{repo}"),
        (_, Some(repo)) => repo,
        _ => String::new(),
    };
    let tag = p("tag_name").or_else(|| p("tag")).unwrap_or_default();
    let what = match a.key.as_str() {
        "repository.push" => format!("pushed {repository}:{tag}"),
        "repository.delete" if tag.is_empty() => format!("deleted {repository}"),
        "repository.delete" => format!("deleted {repository}:{tag}"),
        "namespace.create" => "created a namespace".to_owned(),
        "namespace.delete" => format!("deleted {repository}"),
        "namespace.change_visibility" => {
            format!("made a namespace {}", p("visibility").unwrap_or_default())
        }
        "team.create" => "created a team".to_owned(),
        "team.add_member" => "added a member to a team".to_owned(),
        "team.remove_member" => "removed a member from a team".to_owned(),
        "team.change_member_role" => "changed a member's role".to_owned(),
        "application_token.create" => format!(
            "created the application token {}",
            p("application").unwrap_or_default()
        ),
        "application_token.destroy" => format!(
            "revoked the application token {}",
            p("application").unwrap_or_default()
        ),
        other => other.replace(['.', '_'], " "),
    };
    format!("{} {what}", a.owner_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (bytes, shown) in [
            (0, "0 B"),
            (812, "812 B"),
            (1536, "1.5 KiB"),
            (24_536_678, "23.4 MiB"),
            (-5, "-5 B"),
        ] {
            assert_eq!(size(bytes), shown);
        }
    }

    #[test]
    fn digests_and_times() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
        assert_eq!(
            when(Timestamp::from_secs(1_800_000_000)),
            "2027-01-15 08:00 UTC"
        );
    }
}
