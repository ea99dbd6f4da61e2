//! The stylesheet and script, embedded in the binary. Their URLs carry a hash of the
//! content, so they are cached for a year and a new build is fetched at once. Two
//! files do not need an asset pipeline; compression is the app's `CompressionLayer`.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    /// `style.<hash>.css`
    name: String,
    content_type: &'static str,
    body: &'static [u8],
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let hash = hex::encode(&Sha256::digest(body)[..6]);
    Asset {
        name: format!("{stem}.{hash}.{ext}"),
        content_type,
        body,
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset(
            "style",
            "css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/style.css"),
        ),
        asset(
            "app",
            "js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/app.js"),
        ),
    ]
});

/// The URL of the stylesheet.
pub fn style_url() -> String {
    format!("/assets/{}", ASSETS[0].name)
}

/// The URL of the script.
pub fn script_url() -> String {
    format!("/assets/{}", ASSETS[1].name)
}

pub(crate) fn routes() -> Router<Services> {
    Router::new().route("/assets/{name}", axum::routing::get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
