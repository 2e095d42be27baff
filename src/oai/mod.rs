//! OAI-PMH 2.0 at `/oai`, so any library harvester can collect the open catalog (SPEC §9).
//!
//! Owns the protocol: request parsing (`request.rs`), resumption tokens (`token.rs`), the XML
//! (`xml.rs`), and the `server_secrets` table (`store.rs`). Records are courses, read straight
//! from the catalog's `courses` table (with `institutions`), withdrawn ones included: those are
//! reported as deleted, forever (`deletedRecord` = `persistent`). Depends on `db`, `catalog`
//! (vocabulary) and `institutions` (slugs, the list of sets). Must not write the catalog, and
//! knows nothing of HTTP: `routes.rs` hands it the form-encoded arguments and sends back what
//! `xml::render` makes of the [`Reply`].
//!
//! ```text
//!   query string or form body ──► request::parse ──► Request ──► Repository::respond
//!        │ badVerb / badArgument / cannotDisseminateFormat            │ store::list, count, find
//!        ▼                                                            ▼
//!   Body::Errors ──────────────────────────► Reply ◄──── Body::ListRecords(Page { records,
//!                                              │              resumption: token::mint(after) })
//!                                              ▼
//!                                   xml::render ─► text/xml, 200
//! ```
//!
//! Paging is by position: a page holds up to [`PAGE_SIZE`] records in `(updated_at, id)` order
//! and its token carries the last `(updated_at, id)`, so the next page starts right after it
//! whatever was inserted or changed in between.

pub mod error;
pub mod request;
pub mod routes;
pub mod store;
pub mod token;
pub mod xml;

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;

use crate::catalog::model::Subject;
use crate::config::OaiConfig;
use crate::db::{self, Db};
use crate::institutions;
pub use error::OaiError;
use request::{
    ListKind, ListRequest, ProtocolError, ProtocolErrorCode, Refusal, Request, Selection, SetSpec,
};
use store::CourseRecord;
use token::{Continuation, Position, TokenKey};

/// Records (or headers) per response. The last page of a longer list ends with an empty
/// `resumptionToken`.
pub const PAGE_SIZE: u32 = 100;

/// The name of the token secret in `server_secrets`.
const TOKEN_SECRET: &str = "oai_resumption_token";

/// An answer, before it becomes XML.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub response_date_ms: i64,
    /// `{public_url}/oai`, the content of `<request>`.
    pub base_url: Arc<str>,
    /// The arguments `<request>` echoes as attributes: none after `badVerb` or `badArgument`.
    pub echo: Vec<(String, String)>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Identify(Identity),
    /// Always just `oai_dc`.
    ListMetadataFormats,
    ListSets(Vec<SetEntry>),
    ListIdentifiers(Page),
    ListRecords(Page),
    GetRecord(Record),
    Errors(Vec<ProtocolError>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub repository_name: Arc<str>,
    pub admin_email: Arc<str>,
    pub earliest_datestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEntry {
    pub spec: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Record>,
    /// `None` when the whole list fits in one response.
    pub resumption: Option<Resumption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumption {
    /// `None` on the last page: the element is then empty.
    pub token: Option<String>,
    pub complete_list_size: u64,
    /// How many records came before this page.
    pub cursor: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub header: Header,
    /// `None` for a deleted record.
    pub metadata: Option<DublinCore>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub identifier: String,
    pub datestamp_ms: i64,
    pub deleted: bool,
    pub set_specs: Vec<String>,
}

/// A course in unqualified Dublin Core. Repeatable elements are lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DublinCore {
    pub title: String,
    /// The institution's name, as creator and as publisher; `None` without one.
    pub institution: Option<String>,
    /// The subject vocabulary words, e.g. `fitness`.
    pub subjects: Vec<String>,
    pub description: String,
    /// When the course was published here.
    pub date_ms: i64,
    /// The course page, `{public_url}/#/courses/{id}`.
    pub url: String,
    pub languages: Vec<String>,
    /// The SPDX-style license, e.g. `CC-BY-4.0`.
    pub rights: String,
    /// The region path, e.g. `zhejiang/hangzhou/xihu`.
    pub coverage: String,
}

/// The repository: cheap to clone, kept in `AppState`.
#[derive(Clone, Debug)]
pub struct Repository {
    db: Db,
    public_url: Arc<str>,
    base_url: Arc<str>,
    /// The host of the public URL: the middle part of every identifier, `oai:{host}:{id}`.
    host: Arc<str>,
    repository_name: Arc<str>,
    admin_email: Arc<str>,
    key: Arc<TokenKey>,
}

impl Repository {
    /// Reads the token secret every node shares, creating it on the first start.
    pub async fn open(db: Db, config: &OaiConfig, public_url: Arc<str>) -> anyhow::Result<Self> {
        let mut candidate = [0u8; token::SECRET_BYTES];
        OsRng.fill_bytes(&mut candidate);
        let stored = store::shared_secret(
            db.pool(),
            TOKEN_SECRET,
            &STANDARD.encode(candidate),
            db::now_ms(),
        )
        .await
        .context("reading the OAI-PMH token secret")?;
        let secret = STANDARD
            .decode(stored)
            .context("the stored OAI-PMH token secret is not base64")?;
        let host: Arc<str> = host_of(&public_url).into();
        let repository_name = match config.repository_name.trim() {
            "" => format!("Shuyuan {host}"),
            name => name.to_owned(),
        };
        let admin_email = match config.admin_email.trim() {
            "" => format!("webmaster@{host}"),
            email => email.to_owned(),
        };
        Ok(Self {
            db,
            base_url: format!("{public_url}/oai").into(),
            public_url,
            host,
            repository_name: repository_name.into(),
            admin_email: admin_email.into(),
            key: Arc::new(TokenKey::new(secret)),
        })
    }

    /// Answers a request given as form-encoded arguments (a query string or a POST body).
    /// Protocol errors are part of the reply; `Err` is only for failures of the server.
    pub async fn answer(&self, form: &[u8]) -> Result<Reply, OaiError> {
        let pairs = request::form_pairs(form);
        let outcome = match request::parse(&pairs) {
            Ok(request) => self.respond(request).await?,
            Err(refusal) => Err(refusal),
        };
        Ok(match outcome {
            Ok(body) => self.reply(pairs, body),
            Err(refusal) => {
                let echo = if refusal.echoes_arguments() {
                    pairs
                } else {
                    Vec::new()
                };
                self.reply(echo, Body::Errors(refusal.0))
            }
        })
    }

    /// The reply to a request whose arguments could not be read at all.
    pub fn refuse_unreadable(&self, why: &str) -> Reply {
        self.reply(
            Vec::new(),
            Body::Errors(vec![ProtocolError::new(
                ProtocolErrorCode::BadArgument,
                why,
            )]),
        )
    }

    fn reply(&self, echo: Vec<(String, String)>, body: Body) -> Reply {
        Reply {
            response_date_ms: db::now_ms(),
            base_url: self.base_url.clone(),
            echo,
            body,
        }
    }

    async fn respond(&self, request: Request) -> Result<Result<Body, Refusal>, OaiError> {
        let pool = self.db.pool();
        match request {
            Request::Identify => Ok(Ok(Body::Identify(Identity {
                repository_name: self.repository_name.clone(),
                admin_email: self.admin_email.clone(),
                // With no course yet, the epoch is still a true lower bound.
                earliest_datestamp_ms: store::earliest_update(pool).await?.unwrap_or(0),
            }))),
            Request::ListMetadataFormats { identifier } => {
                if let Some(identifier) = identifier
                    && let Err(refusal) = self.find(&identifier).await?
                {
                    return Ok(Err(refusal));
                }
                Ok(Ok(Body::ListMetadataFormats))
            }
            Request::ListSets {
                resumption_token: Some(_),
            } => Ok(Err(refusal(
                ProtocolErrorCode::BadResumptionToken,
                "this repository lists every set in one response and issues no ListSets tokens",
            ))),
            Request::ListSets {
                resumption_token: None,
            } => Ok(Ok(Body::ListSets(self.sets().await?))),
            Request::List(kind, ListRequest::Fresh(selection)) => {
                self.list(kind, selection, None, 0).await
            }
            Request::List(kind, ListRequest::Resume(token)) => match self.key.open(&token) {
                Some(continuation) if continuation.kind == kind => {
                    self.list(
                        kind,
                        continuation.selection,
                        Some(continuation.after),
                        continuation.returned,
                    )
                    .await
                }
                _ => Ok(Err(refusal(
                    ProtocolErrorCode::BadResumptionToken,
                    format!(
                        "this is not a resumption token this repository issued for {}",
                        kind.verb().as_str()
                    ),
                ))),
            },
            Request::GetRecord { identifier } => Ok(self
                .find(&identifier)
                .await?
                .map(|course| Body::GetRecord(self.record(course, ListKind::Records)))),
        }
    }

    async fn find(&self, identifier: &str) -> Result<Result<CourseRecord, Refusal>, OaiError> {
        let found = match self.course_id(identifier) {
            Some(id) => store::find(self.db.pool(), id).await?,
            None => None,
        };
        Ok(found.ok_or_else(|| {
            refusal(
                ProtocolErrorCode::IdDoesNotExist,
                format!("{identifier:?} is not an identifier of this repository"),
            )
        }))
    }

    /// The course an identifier names, if it is one of ours in its canonical form.
    fn course_id(&self, identifier: &str) -> Option<Uuid> {
        let id = identifier
            .strip_prefix("oai:")?
            .strip_prefix(&*self.host)?
            .strip_prefix(':')?;
        let uuid = Uuid::parse_str(id).ok()?;
        (uuid.to_string() == id).then_some(uuid)
    }

    async fn sets(&self) -> Result<Vec<SetEntry>, OaiError> {
        let mut sets = vec![SetEntry {
            spec: SetSpec::AnySubject.spec(),
            name: "Subjects".into(),
        }];
        for subject in Subject::ALL {
            sets.push(SetEntry {
                spec: SetSpec::Subject(*subject).spec(),
                name: format!("Subject: {}", subject.as_str()),
            });
        }
        sets.push(SetEntry {
            spec: SetSpec::AnyInstitution.spec(),
            name: "Institutions".into(),
        });
        for institution in institutions::store::list(self.db.pool(), None).await? {
            sets.push(SetEntry {
                spec: format!("institution:{}", institution.slug),
                name: institution.name,
            });
        }
        Ok(sets)
    }

    /// One page of a list: the records after `after`, and a token for the rest if any.
    async fn list(
        &self,
        kind: ListKind,
        selection: Selection,
        after: Option<Position>,
        returned: u64,
    ) -> Result<Result<Body, Refusal>, OaiError> {
        let pool = self.db.pool();
        let mut courses = store::list(pool, &selection, after, PAGE_SIZE + 1).await?;
        if courses.is_empty() {
            return Ok(Err(refusal(
                ProtocolErrorCode::NoRecordsMatch,
                "no record matches the set and dates asked for",
            )));
        }
        let more = courses.len() > PAGE_SIZE as usize;
        courses.truncate(PAGE_SIZE as usize);
        let served = returned + courses.len() as u64;
        let resumption = if more || after.is_some() {
            // Counted now, so the size follows what was added meanwhile (the protocol allows
            // an approximate size); never less than what is known to exist.
            let remaining = store::count(pool, &selection, after).await?;
            let complete_list_size = (returned + remaining).max(served + u64::from(more));
            let token = match courses.last() {
                Some(last) if more => Some(self.key.mint(&Continuation {
                    kind,
                    selection,
                    after: Position {
                        updated_at_ms: last.updated_at_ms,
                        id: last.id,
                    },
                    returned: served,
                })),
                _ => None,
            };
            Some(Resumption {
                token,
                complete_list_size,
                cursor: returned,
            })
        } else {
            None
        };
        let page = Page {
            records: courses
                .into_iter()
                .map(|course| self.record(course, kind))
                .collect(),
            resumption,
        };
        Ok(Ok(match kind {
            ListKind::Identifiers => Body::ListIdentifiers(page),
            ListKind::Records => Body::ListRecords(page),
        }))
    }

    /// A course as a record; its metadata only for `ListKind::Records` and a live course.
    fn record(&self, course: CourseRecord, kind: ListKind) -> Record {
        let mut set_specs: Vec<String> = course
            .subjects
            .iter()
            .filter_map(|word| Subject::parse(word).ok())
            .map(|subject| SetSpec::Subject(subject).spec())
            .collect();
        if let Some(institution) = &course.institution {
            set_specs.push(format!("institution:{}", institution.slug));
        }
        let header = Header {
            identifier: format!("oai:{}:{}", self.host, course.id),
            datestamp_ms: course.updated_at_ms,
            deleted: course.withdrawn,
            set_specs,
        };
        let metadata = (kind == ListKind::Records && !course.withdrawn).then(|| DublinCore {
            url: format!("{}/#/courses/{}", self.public_url, course.id),
            title: course.title,
            institution: course.institution.map(|i| i.name),
            subjects: course.subjects,
            description: course.description,
            date_ms: course.created_at_ms,
            languages: course.languages,
            rights: course.license,
            coverage: course.region,
        });
        Record { header, metadata }
    }
}

fn refusal(code: ProtocolErrorCode, message: impl Into<String>) -> Refusal {
    Refusal(vec![ProtocolError::new(code, message)])
}

/// The host of an `http(s)://` URL, without user, port, path or query.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        // An IPv6 literal keeps its brackets, which also keep its colons apart from ours.
        return host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end]);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_public_urls_without_port_or_path() {
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(
            host_of("https://learn.example.org/shuyuan"),
            "learn.example.org"
        );
        assert_eq!(
            host_of("https://u:p@learn.example.org:443"),
            "learn.example.org"
        );
        assert_eq!(host_of("http://[::1]:8080"), "[::1]");
    }
}
