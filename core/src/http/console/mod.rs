//! The web console at `/console/`: its static pages (HTML, CSS, JavaScript compiled into the
//! binary, no CDN), served with their content types, ETags, cache headers and a strict
//! content security policy; and the routes of its few JSON endpoints (`data.rs`). The pages
//! call the node's own API with the user's Basic credentials, so the API's permissions apply.

mod data;

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::api::Api;

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset { name: $name, content_type: $ct, body: include_bytes!(concat!("assets/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages load (`index.html` is served at `/console/`).
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("core.js", JS),
    asset!("sqlsplit.js", JS),
    asset!("chart.js", JS),
    asset!("login.js", JS),
    asset!("query.js", JS),
    asset!("schema.js", JS),
    asset!("cluster.js", JS),
    asset!("metrics.js", JS),
    asset!("app.js", JS),
];

/// Who may embed or feed the pages: nothing but this node (no inline script, no other origin).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// FNV-1a (64 bits): the assets' ETags and the version in their URLs.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The version of the whole set of assets: `index.html` loads `file?v=VERSION`, and a URL with
/// the current version never changes content, so browsers may keep it for a year.
static VERSION: LazyLock<String> =
    LazyLock::new(|| format!("{:016x}", ASSETS.iter().fold(FNV_START, |h, a| fnv(a.body, h))));

/// `index.html` with its asset URLs versioned.
static INDEX: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let page = ASSETS.iter().find(|a| a.name == "index.html").map_or(&b""[..], |a| a.body);
    String::from_utf8_lossy(page).replace("__VERSION__", &VERSION).into_bytes()
});

/// The console's routes, merged into the client API's router when the console is on.
pub(super) fn router() -> Router<Api> {
    Router::new()
        .route("/console", get(|| async { redirect_to_index() }))
        .route("/console/", get(index))
        .route("/console/{file}", get(file))
        .route("/console/api/whoami", get(data::whoami))
        .route("/console/api/cluster", get(data::cluster))
        .route("/console/api/series", get(data::series))
}

fn redirect_to_index() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/console/")]).into_response()
}

async fn index(headers: HeaderMap) -> Response {
    // The page itself is checked on every load (cheap with its ETag): it names the versions
    // of everything else.
    serve(&headers, "text/html; charset=utf-8", &INDEX, "no-cache")
}

async fn file(Path(name): Path<String>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    if name == "index.html" {
        return index(headers).await;
    }
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such console file\n").into_response();
    };
    let versioned = uri.query().is_some_and(|q| q == format!("v={}", *VERSION));
    let cache = if versioned { "public, max-age=31536000, immutable" } else { "no-cache" };
    serve(&headers, a.content_type, a.body, cache)
}

/// Answer with `body`, or 304 when the browser's copy (`If-None-Match`) is current.
fn serve(
    headers: &HeaderMap,
    content_type: &'static str,
    body: &'static [u8],
    cache: &'static str,
) -> Response {
    let etag = format!("\"{:016x}\"", fnv(body, FNV_START));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(h);
    r
}

/// Headers every console answer carries.
fn secure(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_complete_and_referenced() {
        let index = String::from_utf8_lossy(&INDEX).into_owned();
        assert!(!index.contains("__VERSION__"));
        for a in ASSETS.iter().filter(|a| a.name != "index.html") {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                index.contains(&format!("{}?v={}", a.name, *VERSION)),
                "index.html does not load {} at the current version",
                a.name
            );
        }
        // No inline script or style: the content security policy forbids them.
        assert!(!index.contains("<script>") && !index.contains("style="));
    }

    #[test]
    fn etags_answer_304() {
        let body: &'static [u8] = b"x";
        let etag = format!("\"{:016x}\"", fnv(body, FNV_START));
        let mut h = HeaderMap::new();
        assert_eq!(serve(&h, JS, body, "no-cache").status(), StatusCode::OK);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&etag).expect("etag"));
        let r = serve(&h, JS, body, "no-cache");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
