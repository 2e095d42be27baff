//! `GET /api/v1/search`.

use std::collections::HashMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::{self, Filters, SearchRequest, Sort};
use crate::error::{ApiError, FieldError, Problem};
use crate::http::{AppJson, AppQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_courses))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Free text: Chinese, English or pinyin; `"quoted phrases"`. Empty browses newest first.
    /// Cut at 500 characters.
    q: Option<String>,
    subject: Option<String>,
    audience: Option<String>,
    /// A region path; includes everything beneath it.
    region: Option<String>,
    /// Institution slug.
    institution: Option<String>,
    /// A file kind the course has: video, audio, document, subtitle, image, other.
    kind: Option<String>,
    language: Option<String>,
    /// The server a course comes from.
    origin: Option<String>,
    /// `relevance` (default) or `newest`.
    sort: Option<String>,
    /// Default 0, at most 10000.
    offset: Option<usize>,
    /// 1 to 100 (larger values are clamped to 100), default 20.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct InstitutionRef {
    slug: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct MatchView {
    file_id: String,
    /// For a subtitle cue: where it starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    at_seconds: Option<f64>,
    /// For a PDF page: its number, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u64>,
    /// Plain text of the cue or page (not HTML).
    text: String,
}

#[derive(Serialize, ToSchema)]
pub struct HitView {
    id: String,
    title: String,
    /// HTML-escaped text with matches in `<mark>`…`</mark>`.
    snippet: String,
    institution: InstitutionRef,
    region: String,
    subjects: Vec<String>,
    origin: String,
    score: f32,
    /// Places inside the course's media where the query matched.
    matches: Vec<MatchView>,
}

#[derive(Serialize, ToSchema)]
pub struct FacetsView {
    subject: HashMap<String, u64>,
    audience: HashMap<String, u64>,
    /// Top-level regions, and the children of a region being filtered on.
    region: HashMap<String, u64>,
    kind: HashMap<String, u64>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    total: usize,
    hits: Vec<HitView>,
    facets: FacetsView,
}

/// `GET /api/v1/search`: courses matching the text and filters, with facet counts.
#[utoipa::path(get, path = "/api/v1/search", tag = "search",
    params(SearchQuery),
    responses(
        (status = 200, description = "results", body = SearchResponse),
        (status = 422, description = "bad sort or offset", body = Problem, content_type = "application/problem+json"),
    ))]
async fn search_courses(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<SearchQuery>,
) -> Result<AppJson<SearchResponse>, ApiError> {
    let request = search_request(params)?;
    let results = state
        .search
        .search(request)
        .await
        .map_err(|e| ApiError::internal(format!("search: {e:#}")))?;
    Ok(AppJson(SearchResponse {
        total: results.total,
        hits: results
            .hits
            .into_iter()
            .map(|hit| HitView {
                id: hit.course_id,
                title: hit.summary.title,
                snippet: hit.snippet,
                institution: InstitutionRef {
                    slug: hit.summary.institution_slug,
                    name: hit.summary.institution_name,
                },
                region: hit.summary.region,
                subjects: hit.summary.subjects,
                origin: hit.summary.origin,
                score: hit.score,
                matches: hit
                    .matches
                    .into_iter()
                    .map(|m| MatchView {
                        file_id: m.file_id,
                        at_seconds: m.at_ms.map(|ms| ms as f64 / 1000.0),
                        page: m.page,
                        text: m.text,
                    })
                    .collect(),
            })
            .collect(),
        facets: FacetsView {
            subject: query::as_map(&results.facets.subject),
            audience: query::as_map(&results.facets.audience),
            region: query::as_map(&results.facets.region),
            kind: query::as_map(&results.facets.kind),
        },
    }))
}

fn search_request(params: SearchQuery) -> Result<SearchRequest, ApiError> {
    let mut errors = Vec::new();
    let sort = match params.sort.as_deref() {
        None | Some("") | Some("relevance") => Sort::Relevance,
        Some("newest") => Sort::Newest,
        Some(other) => {
            errors.push(FieldError::new(
                "sort",
                format!("{other:?} is not one of: relevance, newest"),
            ));
            Sort::Relevance
        }
    };
    let offset = params.offset.unwrap_or(0);
    if offset > query::MAX_OFFSET {
        errors.push(FieldError::new(
            "offset",
            format!("must be at most {}", query::MAX_OFFSET),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(SearchRequest {
        text: params.q.unwrap_or_default(),
        filters: Filters {
            subject: params.subject,
            audience: params.audience,
            region: params.region,
            institution: params.institution,
            kind: params.kind,
            language: params.language,
            origin: params.origin,
        },
        sort,
        offset,
        limit: params.limit.unwrap_or(20).clamp(1, query::MAX_LIMIT),
    })
}
