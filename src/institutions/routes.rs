//! `/api/v1/institutions*`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{Institution, InstitutionKind, Member, MemberRole};
use super::{MembershipChange, NewInstitution};
use crate::db::rfc3339;
use crate::error::{ApiError, Problem};
use crate::http::{AppJson, AppPath, AppQuery, AuthUser};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_institution, list_institutions))
        .routes(routes!(show_institution))
        .routes(routes!(add_member, list_members))
        .routes(routes!(list_my_memberships))
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    institution: InstitutionView,
    role: MemberRole,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipList {
    memberships: Vec<MembershipView>,
}

/// `GET /api/v1/me/memberships`: the institutions the signed-in user works for.
#[utoipa::path(get, path = "/api/v1/me/memberships", tag = "institutions",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "memberships", body = MembershipList),
        (status = 401, description = "not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_my_memberships(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
) -> Result<AppJson<MembershipList>, ApiError> {
    let memberships = super::memberships_of(&state.db, auth.user.id).await?;
    Ok(AppJson(MembershipList {
        memberships: memberships
            .into_iter()
            .map(|(institution, role)| MembershipView {
                institution: institution.into(),
                role,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstitutionRequest {
    /// 2 to 63 characters of a-z, 0-9 and '-'.
    slug: String,
    name: String,
    /// One of the SPEC's institution kinds.
    #[schema(value_type = InstitutionKind)]
    kind: String,
    /// province/city/county/town/village, 1 to 5 levels, e.g. `zhejiang/hangzhou/xihu`.
    region: String,
}

#[derive(Serialize, ToSchema)]
pub struct InstitutionView {
    id: Uuid,
    slug: String,
    name: String,
    kind: InstitutionKind,
    region: String,
    created_at: String,
}

impl From<Institution> for InstitutionView {
    fn from(i: Institution) -> Self {
        InstitutionView {
            id: i.id,
            slug: i.slug,
            name: i.name,
            kind: i.kind,
            region: i.region,
            created_at: rfc3339(i.created_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InstitutionList {
    institutions: Vec<InstitutionView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only institutions in this region or beneath it.
    region: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The e-mail of a registered account.
    email: String,
    #[schema(value_type = MemberRole)]
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    user_id: Uuid,
    email: String,
    display_name: String,
    role: MemberRole,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email,
            display_name: m.display_name,
            role: m.role,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    members: Vec<MemberView>,
}

/// `POST /api/v1/institutions`: registers an institution (site administrators).
#[utoipa::path(post, path = "/api/v1/institutions", tag = "institutions",
    security(("bearer" = []), ("cookie" = [])),
    request_body = CreateInstitutionRequest,
    responses(
        (status = 201, description = "registered", body = InstitutionView),
        (status = 403, description = "not a site administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_institution(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppJson(body): AppJson<CreateInstitutionRequest>,
) -> Result<(StatusCode, AppJson<InstitutionView>), ApiError> {
    let institution = super::create_as(
        &state.db,
        &auth.user,
        NewInstitution {
            slug: &body.slug,
            name: &body.name,
            kind: &body.kind,
            region: &body.region,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, AppJson(institution.into())))
}

/// `GET /api/v1/institutions`: every institution, or those in `region` and beneath it.
#[utoipa::path(get, path = "/api/v1/institutions", tag = "institutions",
    params(ListQuery),
    responses((status = 200, description = "institutions by slug", body = InstitutionList)))]
async fn list_institutions(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<AppJson<InstitutionList>, ApiError> {
    let institutions = super::list(&state.db, query.region.as_deref()).await?;
    Ok(AppJson(InstitutionList {
        institutions: institutions.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/institutions/{slug}`.
#[utoipa::path(get, path = "/api/v1/institutions/{slug}", tag = "institutions",
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "the institution", body = InstitutionView),
        (status = 404, description = "no such institution", body = Problem, content_type = "application/problem+json"),
    ))]
async fn show_institution(
    State(state): State<AppState>,
    AppPath(slug): AppPath<String>,
) -> Result<AppJson<InstitutionView>, ApiError> {
    Ok(AppJson(super::find(&state.db, &slug).await?.into()))
}

/// `POST /api/v1/institutions/{slug}/members`: adds a member or changes their role
/// (managers of the institution, site administrators). 201 when added, 200 when changed.
#[utoipa::path(post, path = "/api/v1/institutions/{slug}/members", tag = "institutions",
    security(("bearer" = []), ("cookie" = [])),
    params(("slug" = String, Path)),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "member added", body = MemberView),
        (status = 200, description = "role changed", body = MemberView),
        (status = 403, description = "not a manager of this institution", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such institution", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "unknown role or no account with this e-mail", body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_member(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(slug): AppPath<String>,
    AppJson(body): AppJson<AddMemberRequest>,
) -> Result<(StatusCode, AppJson<MemberView>), ApiError> {
    let (member, change) =
        super::add_member_as(&state.db, &auth.user, &slug, &body.email, &body.role).await?;
    let status = match change {
        MembershipChange::Added => StatusCode::CREATED,
        MembershipChange::RoleChanged => StatusCode::OK,
    };
    Ok((status, AppJson(member.into())))
}

/// `GET /api/v1/institutions/{slug}/members` (managers, site administrators).
#[utoipa::path(get, path = "/api/v1/institutions/{slug}/members", tag = "institutions",
    security(("bearer" = []), ("cookie" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "members", body = MemberList),
        (status = 403, description = "not a manager of this institution", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_members(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(slug): AppPath<String>,
) -> Result<AppJson<MemberList>, ApiError> {
    let members = super::list_members_as(&state.db, &auth.user, &slug).await?;
    Ok(AppJson(MemberList {
        members: members.into_iter().map(Into::into).collect(),
    }))
}
