//! The web front-end: the files under `web/`, embedded in the binary at build time (in debug
//! builds rust-embed reads them from disk, so editing a page needs no rebuild).

use axum::body::Body;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// The policy for our own pages: scripts, styles and media only from this server, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; \
    media-src 'self' blob:; style-src 'self'; script-src 'self'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The fallback of the whole router: a web asset for `GET`/`HEAD`, otherwise a problem+json 404.
pub async fn serve_asset_or_not_found(method: Method, uri: Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let path = uri.path().trim_start_matches('/');
        let path = if path.is_empty() { "index.html" } else { path };
        if let Some(response) = asset(path) {
            return response;
        }
    }
    ApiError::not_found(format!("no route for {} {}", method, uri.path())).into_response()
}

fn asset(path: &str) -> Option<Response> {
    // API namespaces never fall through to files, whatever `web/` contains.
    if path.starts_with("api/") || path.contains("..") {
        return None;
    }
    let file = Assets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut response = Response::new(Body::from(file.data.into_owned()));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    // Revalidate every time: pages change with releases and there is no build step to add
    // content hashes to file names.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    Some(response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
