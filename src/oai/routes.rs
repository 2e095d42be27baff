//! `GET|POST /oai`: the OAI-PMH endpoint. Every answer the protocol defines, errors included,
//! is a 200 with `text/xml`; only a failure of the server itself is a (problem+json) 500.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Reply, xml};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(harvest_get, harvest_post))
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A reply as the protocol's XML.
struct OaiXml(Reply);

impl IntoResponse for OaiXml {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            xml::render(&self.0),
        )
            .into_response()
    }
}

/// `GET /oai?verb=…`: an OAI-PMH 2.0 request in the query string.
#[utoipa::path(get, path = "/oai", tag = "oai",
    params(
        ("verb" = String, Query, description = "Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords or GetRecord"),
        ("metadataPrefix" = Option<String>, Query, description = "oai_dc, the only format"),
        ("identifier" = Option<String>, Query, description = "oai:{host}:{course id}"),
        ("set" = Option<String>, Query, description = "subject, subject:{word}, institution, institution:{slug}"),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, inclusive"),
        ("until" = Option<String>, Query, description = "YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, inclusive"),
        ("resumptionToken" = Option<String>, Query, description = "from the previous page; send it with verb alone"),
    ),
    responses(
        (status = 200, description = "an OAI-PMH response, protocol errors included", body = String, content_type = "text/xml"),
        (status = 500, description = "the server failed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn harvest_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<OaiXml, ApiError> {
    let query = query.unwrap_or_default();
    Ok(OaiXml(state.oai.answer(query.as_bytes()).await?))
}

/// `POST /oai`: the same request with its arguments in an
/// `application/x-www-form-urlencoded` body, as the protocol also allows.
#[utoipa::path(post, path = "/oai", tag = "oai",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "the arguments of GET /oai, form-encoded"),
    responses(
        (status = 200, description = "an OAI-PMH response, protocol errors included", body = String, content_type = "text/xml"),
        (status = 500, description = "the server failed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn harvest_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<OaiXml, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(FORM));
    let reply = match body {
        Ok(form) if is_form => state.oai.answer(&form).await?,
        Ok(_) => state
            .oai
            .refuse_unreadable("a POST request must be application/x-www-form-urlencoded"),
        Err(rejection) => state
            .oai
            .refuse_unreadable(&format!("the request body could not be read: {rejection}")),
    };
    Ok(OaiXml(reply))
}
