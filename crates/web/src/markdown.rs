//! Descriptions in Markdown, rendered safely: raw HTML in the source is shown as text,
//! never passed through, and links or images with a scheme other than http, https or
//! mailto (`javascript:`, `data:`, …) lose their target. Rendering HTML only from
//! Markdown's own constructs needs no HTML sanitizer.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// Whether a link target is harmless: relative, or http(s)/mailto.
fn is_safe_url(url: &str) -> bool {
    let url = url.trim();
    // Browsers ignore these inside a scheme ("java\tscript:"); treat them as unsafe.
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    let scheme_end = url.find(':');
    let path_start = url.find(['/', '?', '#']);
    match (scheme_end, path_start) {
        (None, _) => true,
        (Some(colon), Some(path)) if path < colon => true,
        (Some(colon), _) => {
            let scheme = url[..colon].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
    }
}

fn safe(url: CowStr<'_>) -> CowStr<'_> {
    if is_safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// Markdown to HTML that is safe to embed in a page.
pub fn render(source: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(source, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (url, ok) in [
            ("https://example.com/x", true),
            ("http://example.com", true),
            ("mailto:a@example.com", true),
            ("/relative/path", true),
            ("relative", true),
            ("#anchor", true),
            ("?q=1", true),
            ("docs/a:b", true),
            ("javascript:alert(1)", false),
            ("JavaScript:alert(1)", false),
            (" javascript:alert(1)", false),
            ("java\tscript:alert(1)", false),
            ("data:text/html,<script>", false),
            ("vbscript:x", false),
        ] {
            assert_eq!(is_safe_url(url), ok, "{url:?}");
        }
    }

    #[test]
    fn rendering() {
        for (source, expected) in [
            ("# Title", "<h1>Title</h1>\n"),
            ("*x*", "<p><em>x</em></p>\n"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            (
                "a <b onclick=x>b</b>",
                "<p>a &lt;b onclick=x&gt;b&lt;/b&gt;</p>\n",
            ),
            ("[x](javascript:alert(1))", "<p><a href=\"#\">x</a></p>\n"),
            (
                "[x](https://e.com)",
                "<p><a href=\"https://e.com\">x</a></p>\n",
            ),
            (
                "![i](data:image/svg+xml,x)",
                "<p><img src=\"#\" alt=\"i\" /></p>\n",
            ),
            ("`<i>`", "<p><code>&lt;i&gt;</code></p>\n"),
        ] {
            assert_eq!(render(source), expected, "{source:?}");
        }
    }
}
