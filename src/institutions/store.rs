//! Every SQL statement about institutions and memberships.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::model::{Institution, Member, MemberRole};
use crate::accounts::store::parse_uuid;

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn institution_from_row(row: &AnyRow) -> Result<Institution, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    Ok(Institution {
        id: parse_uuid(&id)?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        kind: kind.parse().map_err(decode_error)?,
        region: row.try_get("region")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

pub async fn insert_institution(
    pool: &AnyPool,
    institution: &Institution,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO institutions (id, slug, name, kind, region, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(institution.id.to_string())
    .bind(&institution.slug)
    .bind(&institution.name)
    .bind(institution.kind.as_str())
    .bind(&institution.region)
    .bind(institution.created_at_ms)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn find_by_slug(pool: &AnyPool, slug: &str) -> Result<Option<Institution>, sqlx::Error> {
    sqlx::query("SELECT id, slug, name, kind, region, created_at FROM institutions WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await?
        .map(|row| institution_from_row(&row))
        .transpose()
}

/// Institutions in `region` or beneath it (all of them when `None`), by slug.
pub async fn list(pool: &AnyPool, region: Option<&str>) -> Result<Vec<Institution>, sqlx::Error> {
    let rows =
        match region {
            Some(region) => {
                sqlx::query(
                    "SELECT id, slug, name, kind, region, created_at FROM institutions \
                 WHERE region = $1 OR SUBSTR(region, 1, CAST($3 AS INTEGER)) = $2 ORDER BY slug",
                )
                // A prefix comparison, not LIKE: '_' may appear in segments and is a LIKE wildcard.
                .bind(region)
                .bind(format!("{region}/"))
                .bind(i64::try_from(region.len() + 1).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?
            }
            None => sqlx::query(
                "SELECT id, slug, name, kind, region, created_at FROM institutions ORDER BY slug",
            )
            .fetch_all(pool)
            .await?,
        };
    rows.iter().map(institution_from_row).collect()
}

/// Adds the member or changes their role; true when the person was not a member before.
pub async fn upsert_membership(
    db: &crate::db::Db,
    institution_id: Uuid,
    user_id: Uuid,
    role: MemberRole,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT role FROM memberships WHERE institution_id = $1 AND user_id = $2",
    )
    .bind(institution_id.to_string())
    .bind(user_id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO memberships (institution_id, user_id, role, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (institution_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(institution_id.to_string())
    .bind(user_id.to_string())
    .bind(role.as_str())
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(existing.is_none())
}

pub async fn find_role(
    pool: &AnyPool,
    institution_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberRole>, sqlx::Error> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM memberships WHERE institution_id = $1 AND user_id = $2",
    )
    .bind(institution_id.to_string())
    .bind(user_id.to_string())
    .fetch_optional(pool)
    .await?;
    role.map(|r| r.parse().map_err(decode_error)).transpose()
}

pub async fn list_members(
    pool: &AnyPool,
    institution_id: Uuid,
) -> Result<Vec<Member>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.display_name, m.role FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.institution_id = $1 ORDER BY u.email",
    )
    .bind(institution_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut members = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let role: String = row.try_get("role")?;
        members.push(Member {
            user_id: parse_uuid(&id)?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            role: role.parse().map_err(decode_error)?,
        });
    }
    Ok(members)
}

/// The institutions `user_id` belongs to, with the role held in each.
pub async fn memberships_of(
    pool: &AnyPool,
    user_id: Uuid,
) -> Result<Vec<(Institution, MemberRole)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.id, i.slug, i.name, i.kind, i.region, i.created_at, m.role FROM memberships m \
         JOIN institutions i ON i.id = m.institution_id WHERE m.user_id = $1 ORDER BY i.slug",
    )
    .bind(user_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let role: String = row.try_get("role")?;
        out.push((
            institution_from_row(&row)?,
            role.parse().map_err(decode_error)?,
        ));
    }
    Ok(out)
}
