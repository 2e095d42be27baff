//! Institutions and who works for them.
//!
//! Owns the `institutions` and `memberships` tables. Site administrators register institutions;
//! an institution's managers (or an administrator) add staff and managers. Later capabilities
//! ask [`role_of`] whether someone may publish for an institution.
//!
//! Depends on `db` and `accounts` (to find people by e-mail).

pub mod error;
pub mod model;
pub mod routes;
pub mod store;

use uuid::Uuid;

use crate::accounts::{self, model::User};
use crate::db::{self, Db};
use crate::error::Validation;
pub use error::InstitutionsError;
use model::{Institution, InstitutionKind, Member, MemberRole, RegionPath, Slug, parse_name};

pub struct NewInstitution<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub region: &'a str,
}

/// Registers an institution on behalf of `actor`, who must be a site administrator.
pub async fn create_as(
    db: &Db,
    actor: &User,
    new: NewInstitution<'_>,
) -> Result<Institution, InstitutionsError> {
    if !actor.is_admin {
        return Err(InstitutionsError::AdminOnly);
    }
    create(db, new).await
}

/// Registers an institution. No permission check: for the operator's command line.
pub async fn create(db: &Db, new: NewInstitution<'_>) -> Result<Institution, InstitutionsError> {
    let mut validation = Validation::new();
    let slug = validation.check("slug", Slug::parse(new.slug));
    let name = validation.check("name", parse_name(new.name));
    let kind = validation.check("kind", new.kind.parse::<InstitutionKind>());
    let region = validation.check("region", RegionPath::parse(new.region));
    validation.finish().map_err(InstitutionsError::Invalid)?;
    let (Some(slug), Some(name), Some(kind), Some(region)) = (slug, name, kind, region) else {
        unreachable!("validation passed, so every field parsed");
    };

    let institution = Institution {
        id: Uuid::now_v7(),
        slug: slug.as_str().to_owned(),
        name,
        kind,
        region: region.as_str().to_owned(),
        created_at_ms: db::now_ms(),
    };
    store::insert_institution(db.pool(), &institution)
        .await
        .map_err(|e| {
            if db::is_unique_violation(&e) {
                InstitutionsError::SlugTaken
            } else {
                InstitutionsError::Db(e)
            }
        })?;
    Ok(institution)
}

pub async fn find(db: &Db, slug: &str) -> Result<Institution, InstitutionsError> {
    store::find_by_slug(db.pool(), slug)
        .await?
        .ok_or(InstitutionsError::NotFound)
}

/// All institutions, or those in a region and beneath it.
pub async fn list(db: &Db, region: Option<&str>) -> Result<Vec<Institution>, InstitutionsError> {
    let region = match region {
        Some(raw) => Some(RegionPath::parse(raw).map_err(|message| {
            InstitutionsError::Invalid(vec![crate::error::FieldError::new("region", message)])
        })?),
        None => None,
    };
    Ok(store::list(db.pool(), region.as_ref().map(RegionPath::as_str)).await?)
}

/// The role `user_id` holds in the institution, if any.
pub async fn role_of(
    db: &Db,
    institution_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberRole>, InstitutionsError> {
    Ok(store::find_role(db.pool(), institution_id, user_id).await?)
}

/// The institutions the user works for, with their role in each.
pub async fn memberships_of(
    db: &Db,
    user_id: Uuid,
) -> Result<Vec<(Institution, MemberRole)>, InstitutionsError> {
    Ok(store::memberships_of(db.pool(), user_id).await?)
}

/// Managers of an institution and site administrators manage its members.
pub fn may_manage_members(actor: &User, actor_role: Option<MemberRole>) -> bool {
    actor.is_admin || actor_role == Some(MemberRole::Manager)
}

/// Whether adding a member created a membership or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    Added,
    RoleChanged,
}

/// Makes the person with `email` a member with `role`, on behalf of `actor`.
pub async fn add_member_as(
    db: &Db,
    actor: &User,
    slug: &str,
    email: &str,
    role: &str,
) -> Result<(Member, MembershipChange), InstitutionsError> {
    let institution = find(db, slug).await?;
    let actor_role = role_of(db, institution.id, actor.id).await?;
    if !may_manage_members(actor, actor_role) {
        return Err(InstitutionsError::ManagerOnly);
    }
    let role: MemberRole = role.parse().map_err(|message| {
        InstitutionsError::Invalid(vec![crate::error::FieldError::new("role", message)])
    })?;
    let person = accounts::find_by_email(db, email)
        .await?
        .ok_or(InstitutionsError::UserNotFound)?;
    let added = store::upsert_membership(db, institution.id, person.id, role, db::now_ms()).await?;
    let member = Member {
        user_id: person.id,
        email: person.email,
        display_name: person.display_name,
        role,
    };
    let change = if added {
        MembershipChange::Added
    } else {
        MembershipChange::RoleChanged
    };
    Ok((member, change))
}

/// The members of an institution, for its managers and site administrators.
pub async fn list_members_as(
    db: &Db,
    actor: &User,
    slug: &str,
) -> Result<Vec<Member>, InstitutionsError> {
    let institution = find(db, slug).await?;
    let actor_role = role_of(db, institution.id, actor.id).await?;
    if !may_manage_members(actor, actor_role) {
        return Err(InstitutionsError::ManagerOnly);
    }
    Ok(store::list_members(db.pool(), institution.id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(is_admin: bool) -> User {
        User {
            id: Uuid::nil(),
            email: "x@example.org".into(),
            display_name: "X".into(),
            is_admin,
            created_at_ms: 0,
        }
    }

    #[test]
    fn only_managers_and_admins_manage_members() {
        assert!(may_manage_members(&user(true), None));
        assert!(may_manage_members(&user(false), Some(MemberRole::Manager)));
        assert!(!may_manage_members(&user(false), Some(MemberRole::Staff)));
        assert!(!may_manage_members(&user(false), None));
    }
}
