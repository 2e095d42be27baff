//! OAI-PMH 2.0 at `/oai`: every verb, every error code the repository can produce, selective
//! harvesting, paging with signed resumption tokens, deleted records, and a real harvester.
//!
//! The harvester test runs when `TEST_OAI_PYTHON` names a Python interpreter with `sickle`
//! installed (`python3 -m venv /tmp/oai-venv && /tmp/oai-venv/bin/pip install sickle`). Unset,
//! it reports that it did nothing; set but unusable, it fails.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quick_xml::events::Event;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shuyuan::catalog::CourseInput;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem};

/// An element of a parsed response: enough of a DOM for assertions.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: HashMap<String, String>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn parse(xml: &str) -> Element {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut stack = vec![Element::default()];
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("{e}: {xml}")) {
                Event::Start(start) => stack.push(Element::open(&start)),
                Event::Empty(start) => {
                    let element = Element::open(&start);
                    stack.last_mut().unwrap().children.push(element);
                }
                Event::Text(text) => {
                    let text = text.decode().unwrap();
                    stack.last_mut().unwrap().text.push_str(&text);
                }
                Event::GeneralRef(reference) => {
                    let name = reference.decode().unwrap();
                    let character = match name.as_ref() {
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "amp" => "&".to_owned(),
                        "quot" => "\"".to_owned(),
                        "apos" => "'".to_owned(),
                        other => panic!("unexpected entity {other}"),
                    };
                    stack.last_mut().unwrap().text.push_str(&character);
                }
                Event::End(_) => {
                    let element = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(element);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(stack.len(), 1, "unbalanced XML: {xml}");
        let mut document = stack.pop().unwrap();
        assert_eq!(document.children.len(), 1, "one root element: {xml}");
        document.children.pop().unwrap()
    }

    fn open(start: &quick_xml::events::BytesStart<'_>) -> Element {
        Element {
            name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
            attributes: start
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect(),
            ..Element::default()
        }
    }

    /// The first child named `name`; panics if there is none.
    fn child(&self, name: &str) -> &Element {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {self:#?}", self.name))
    }

    fn has(&self, name: &str) -> bool {
        self.children.iter().any(|c| c.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn texts(&self, name: &str) -> Vec<String> {
        self.all(name).map(|c| c.text.clone()).collect()
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// An answer from `/oai`: always 200 with `text/xml`.
async fn oai(app: &TestApp, query: &str) -> Element {
    let response = app.get(&format!("/oai?{query}")).await;
    xml_of(response).await
}

async fn xml_of(response: reqwest::Response) -> Element {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "text/xml; charset=utf-8"
    );
    let root = Element::parse(&response.text().await.unwrap());
    assert_eq!(root.name, "OAI-PMH");
    assert_eq!(
        root.attr("xmlns"),
        Some("http://www.openarchives.org/OAI/2.0/")
    );
    assert!(root.child("responseDate").text.ends_with('Z'));
    root
}

/// The single `<error>` code of a response.
fn error_code(root: &Element) -> String {
    let errors: Vec<&Element> = root.all("error").collect();
    assert!(!errors.is_empty(), "no error: {root:#?}");
    assert!(
        errors.iter().all(|e| !e.text.is_empty()),
        "errors say why: {root:#?}"
    );
    errors[0].attr("code").unwrap().to_owned()
}

fn identifier(app: &TestApp, course_id: &str) -> String {
    let host = app.address.trim_start_matches("http://").split(':').next();
    format!("oai:{}:{course_id}", host.unwrap())
}

/// Publishes `count` courses straight through the catalog (no HTTP, no sign-in): the fast
/// way to fill a catalog. Returns their ids in creation order.
async fn publish(app: &TestApp, slug: &str, count: usize, subject: &str) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let id = Uuid::now_v7();
        app.catalog
            .create_course_with_id(
                slug,
                id,
                CourseInput {
                    title: Some(format!("{slug} course {n}")),
                    subjects: Some(vec![subject.to_owned()]),
                    languages: Some(vec!["zh".into()]),
                    ..CourseInput::default()
                },
            )
            .await
            .expect("course created");
        ids.push(id);
    }
    ids
}

/// Sets a course's datestamp, for date-range tests that need known times.
async fn set_updated_at(app: &TestApp, id: &str, ms: i64) {
    sqlx::query("UPDATE courses SET updated_at = $1 WHERE id = $2")
        .bind(ms)
        .bind(id)
        .execute(app.db.pool())
        .await
        .unwrap();
}

/// What one list response held: the identifiers in order, and its resumption token.
struct PageSeen {
    identifiers: Vec<String>,
    token: Option<TokenSeen>,
}

#[derive(Debug, Clone, PartialEq)]
struct TokenSeen {
    text: String,
    cursor: String,
    complete_list_size: String,
}

/// One response of `verb` (`ListIdentifiers` or `ListRecords`) to `arguments`.
async fn page(app: &TestApp, verb: &str, arguments: &str) -> PageSeen {
    let root = oai(app, &format!("verb={verb}&{arguments}")).await;
    let list = root.child(verb);
    let identifiers = list
        .children
        .iter()
        .filter(|item| item.name != "resumptionToken")
        .map(|item| {
            let header = if item.name == "record" {
                item.child("header")
            } else {
                item
            };
            header.child("identifier").text.clone()
        })
        .collect();
    let token = list.all("resumptionToken").next().map(|token| TokenSeen {
        text: token.text.clone(),
        cursor: token.attr("cursor").unwrap().to_owned(),
        complete_list_size: token.attr("completeListSize").unwrap().to_owned(),
    });
    PageSeen { identifiers, token }
}

/// Every identifier of a list from `arguments` on, following resumption tokens with only
/// `verb` and `resumptionToken`, as the protocol says; also every token seen.
async fn harvest(app: &TestApp, verb: &str, arguments: &str) -> (Vec<String>, Vec<TokenSeen>) {
    let mut identifiers = Vec::new();
    let mut tokens = Vec::new();
    let mut arguments = arguments.to_owned();
    loop {
        let seen = page(app, verb, &arguments).await;
        identifiers.extend(seen.identifiers);
        let Some(token) = seen.token else { break };
        tokens.push(token.clone());
        if token.text.is_empty() {
            break;
        }
        arguments = format!("resumptionToken={}", token.text);
        assert!(tokens.len() < 100, "the list never ends");
    }
    (identifiers, tokens)
}

/// An institution with one published course (via the API, as staff would); returns the admin
/// token and the course JSON.
async fn catalog_with_one_course(app: &TestApp) -> (String, Value) {
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    let response = app
        .post_json_with_token(
            "/api/v1/courses",
            &admin,
            &json!({"institution": "xihu-college", "title": "太极拳入门 Tai chi & <you>",
                    "description": "Slow movements for seniors.", "subjects": ["fitness", "health"],
                    "audience": ["seniors"], "languages": ["zh", "en"], "license": "CC-BY-SA-4.0"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (admin, response.json().await.unwrap())
}

#[tokio::test]
async fn identify_describes_the_repository() {
    let app = TestApp::spawn().await;
    let (_, course) = catalog_with_one_course(&app).await;

    let root = oai(&app, "verb=Identify").await;

    let request = root.child("request");
    assert_eq!(request.text, app.url("/oai"));
    assert_eq!(request.attr("verb"), Some("Identify"));
    let identify = root.child("Identify");
    let host = app
        .address
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap();
    assert_eq!(
        identify.child("repositoryName").text,
        format!("Shuyuan {host}")
    );
    assert_eq!(identify.child("baseURL").text, app.url("/oai"));
    assert_eq!(identify.child("protocolVersion").text, "2.0");
    assert_eq!(
        identify.child("adminEmail").text,
        format!("webmaster@{host}")
    );
    assert_eq!(identify.child("deletedRecord").text, "persistent");
    assert_eq!(identify.child("granularity").text, "YYYY-MM-DDThh:mm:ssZ");
    let updated_at = course["updated_at"].as_str().unwrap();
    assert_eq!(
        identify.child("earliestDatestamp").text,
        format!("{}Z", &updated_at[..19]),
        "the course's datestamp, to the second"
    );
}

#[tokio::test]
async fn identify_uses_the_configured_name_and_address() {
    let app = TestApp::spawn_with(|config| {
        config.oai.repository_name = "西湖区社区学院 OAI".into();
        config.oai.admin_email = "library@example.org".into();
    })
    .await;

    let identify = oai(&app, "verb=Identify").await;

    let identify = identify.child("Identify");
    assert_eq!(identify.child("repositoryName").text, "西湖区社区学院 OAI");
    assert_eq!(identify.child("adminEmail").text, "library@example.org");
    assert_eq!(
        identify.child("earliestDatestamp").text,
        "1970-01-01T00:00:00Z",
        "an empty repository"
    );
}

#[tokio::test]
async fn list_metadata_formats_offers_oai_dc_for_the_repository_and_each_item() {
    let app = TestApp::spawn().await;
    let (_, course) = catalog_with_one_course(&app).await;
    let id = identifier(&app, course["id"].as_str().unwrap());

    for query in [
        "verb=ListMetadataFormats".to_owned(),
        format!("verb=ListMetadataFormats&identifier={id}"),
    ] {
        let root = oai(&app, &query).await;
        let formats: Vec<&Element> = root
            .child("ListMetadataFormats")
            .all("metadataFormat")
            .collect();
        assert_eq!(formats.len(), 1, "{query}");
        assert_eq!(formats[0].child("metadataPrefix").text, "oai_dc");
        assert_eq!(
            formats[0].child("metadataNamespace").text,
            "http://www.openarchives.org/OAI/2.0/oai_dc/"
        );
        assert_eq!(
            formats[0].child("schema").text,
            "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
        );
    }
    let unknown = identifier(&app, &Uuid::now_v7().to_string());
    let root = oai(
        &app,
        &format!("verb=ListMetadataFormats&identifier={unknown}"),
    )
    .await;
    assert_eq!(error_code(&root), "idDoesNotExist");
    assert_eq!(
        root.child("request").attr("identifier"),
        Some(unknown.as_str()),
        "other errors echo the arguments"
    );
}

#[tokio::test]
async fn list_sets_names_every_subject_and_institution() {
    let app = TestApp::spawn().await;
    let (admin, _) = catalog_with_one_course(&app).await;
    app.institution(
        &admin,
        "fayun-point",
        "zhejiang/hangzhou/xihu/lingyin/fayun",
    )
    .await;

    let root = oai(&app, "verb=ListSets").await;

    let sets: HashMap<String, String> = root
        .child("ListSets")
        .all("set")
        .map(|set| {
            (
                set.child("setSpec").text.clone(),
                set.child("setName").text.clone(),
            )
        })
        .collect();
    assert_eq!(sets.len(), 2 + 11 + 2, "{sets:?}");
    assert_eq!(sets["subject"], "Subjects");
    assert_eq!(sets["subject:digital_skills"], "Subject: digital_skills");
    assert_eq!(sets["institution"], "Institutions");
    assert_eq!(sets["institution:xihu-college"], "xihu-college college");
    assert!(sets.contains_key("institution:fayun-point"));
    let with_token = oai(&app, "verb=ListSets&resumptionToken=anything").await;
    assert_eq!(error_code(&with_token), "badResumptionToken");
}

#[tokio::test]
async fn get_record_returns_a_course_as_dublin_core() {
    let app = TestApp::spawn().await;
    let (_, course) = catalog_with_one_course(&app).await;
    let course_id = course["id"].as_str().unwrap();
    let id = identifier(&app, course_id);

    let root = oai(
        &app,
        &format!("verb=GetRecord&identifier={id}&metadataPrefix=oai_dc"),
    )
    .await;

    let request = root.child("request");
    assert_eq!(request.attr("identifier"), Some(id.as_str()));
    assert_eq!(request.attr("metadataPrefix"), Some("oai_dc"));
    let record = root.child("GetRecord").child("record");
    let header = record.child("header");
    assert_eq!(header.attr("status"), None);
    assert_eq!(header.child("identifier").text, id);
    let updated_at = course["updated_at"].as_str().unwrap();
    assert_eq!(
        header.child("datestamp").text,
        format!("{}Z", &updated_at[..19])
    );
    assert_eq!(
        header.texts("setSpec"),
        [
            "subject:fitness",
            "subject:health",
            "institution:xihu-college"
        ]
    );
    let dc = record.child("metadata").child("oai_dc:dc");
    assert_eq!(
        dc.attr("xmlns:dc"),
        Some("http://purl.org/dc/elements/1.1/")
    );
    assert_eq!(dc.texts("dc:title"), ["太极拳入门 Tai chi & <you>"]);
    assert_eq!(dc.texts("dc:description"), ["Slow movements for seniors."]);
    assert_eq!(dc.texts("dc:subject"), ["fitness", "health"]);
    assert_eq!(dc.texts("dc:creator"), ["xihu-college college"]);
    assert_eq!(dc.texts("dc:publisher"), ["xihu-college college"]);
    assert_eq!(dc.texts("dc:language"), ["zh", "en"]);
    assert_eq!(dc.texts("dc:rights"), ["CC-BY-SA-4.0"]);
    assert_eq!(dc.texts("dc:type"), ["Course"]);
    assert_eq!(dc.texts("dc:coverage"), ["zhejiang/hangzhou/xihu"]);
    assert_eq!(
        dc.texts("dc:identifier"),
        [format!("{}/#/courses/{course_id}", app.address)]
    );
    let created_at = course["created_at"].as_str().unwrap();
    assert_eq!(dc.texts("dc:date"), [&created_at[..10]]);
}

#[tokio::test]
async fn a_withdrawn_course_is_reported_as_a_deleted_record() {
    let app = TestApp::spawn().await;
    let (admin, course) = catalog_with_one_course(&app).await;
    let course_id = course["id"].as_str().unwrap();
    let live = publish(&app, "xihu-college", 1, "health").await;
    let withdrawn = app
        .client
        .delete(app.url(&format!("/api/v1/courses/{course_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::NO_CONTENT);
    let id = identifier(&app, course_id);

    let root = oai(
        &app,
        &format!("verb=GetRecord&identifier={id}&metadataPrefix=oai_dc"),
    )
    .await;

    let record = root.child("GetRecord").child("record");
    assert_eq!(record.child("header").attr("status"), Some("deleted"));
    assert!(!record.has("metadata"), "{record:#?}");
    let records = oai(&app, "verb=ListRecords&metadataPrefix=oai_dc").await;
    let records: Vec<&Element> = records.child("ListRecords").all("record").collect();
    assert_eq!(records.len(), 2, "deleted records stay in the list");
    assert_eq!(
        records[0].child("header").child("identifier").text,
        identifier(&app, &live[0].to_string()),
        "the withdrawal is the newest change"
    );
    assert!(records[0].has("metadata"));
    assert_eq!(records[1].child("header").attr("status"), Some("deleted"));
    assert!(!records[1].has("metadata"));
    let headers = oai(
        &app,
        "verb=ListIdentifiers&metadataPrefix=oai_dc&set=subject:fitness",
    )
    .await;
    let headers: Vec<&Element> = headers.child("ListIdentifiers").all("header").collect();
    assert_eq!(headers.len(), 1, "a set harvest learns of the deletion too");
    assert_eq!(headers[0].attr("status"), Some("deleted"));
}

#[tokio::test]
async fn from_and_until_select_by_datestamp_at_either_granularity() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    let ids = publish(&app, "xihu-college", 3, "fitness").await;
    let times = [
        ("2024-01-01T00:00:00Z", 1_704_067_200_000),
        ("2024-06-15T12:30:45Z", 1_718_454_645_500),
        ("2025-01-01T00:00:00Z", 1_735_689_600_000),
    ];
    for (id, (_, ms)) in ids.iter().zip(times) {
        set_updated_at(&app, &id.to_string(), ms).await;
    }
    let listed = |query: &'static str| {
        let app = &app;
        async move {
            let root = oai(
                app,
                &format!("verb=ListIdentifiers&metadataPrefix=oai_dc&{query}"),
            )
            .await;
            if root.has("error") {
                return Err(error_code(&root));
            }
            Ok(root
                .child("ListIdentifiers")
                .all("header")
                .map(|h| h.child("datestamp").text.clone())
                .collect::<Vec<_>>())
        }
    };

    assert_eq!(
        listed("from=2024-06-15T12:30:45Z").await,
        Ok(vec![times[1].0.into(), times[2].0.into()]),
        "a datestamp is within its own second"
    );
    assert_eq!(
        listed("until=2024-06-15T12:30:45Z").await,
        Ok(vec![times[0].0.into(), times[1].0.into()])
    );
    assert_eq!(
        listed("from=2024-06-15T12:30:46Z&until=2024-12-31T23:59:59Z").await,
        Err("noRecordsMatch".into())
    );
    assert_eq!(
        listed("from=2024-06-15&until=2024-06-15").await,
        Ok(vec![times[1].0.into()]),
        "a day is the whole day"
    );
    assert_eq!(
        listed("from=2024-01-02").await,
        Ok(vec![times[1].0.into(), times[2].0.into()])
    );
    assert_eq!(
        listed("until=2024-01-01").await,
        Ok(vec![times[0].0.into()])
    );
    assert_eq!(
        listed("from=2024-06-15&until=2024-06-15T23:59:59Z").await,
        Err("badArgument".into()),
        "granularities differ"
    );
    assert_eq!(
        listed("from=2025-01-01&until=2024-01-01").await,
        Err("badArgument".into()),
        "from after until"
    );
    assert_eq!(listed("from=2024-02-30").await, Err("badArgument".into()));
}

#[tokio::test]
async fn a_set_selects_its_courses() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    app.institution(
        &admin,
        "fayun-point",
        "zhejiang/hangzhou/xihu/lingyin/fayun",
    )
    .await;
    let fitness = publish(&app, "xihu-college", 2, "fitness").await;
    let civic = publish(&app, "fayun-point", 3, "civic_literacy").await;
    let count = |set: &'static str| {
        let app = &app;
        async move {
            let root = oai(
                app,
                &format!("verb=ListIdentifiers&metadataPrefix=oai_dc&set={set}"),
            )
            .await;
            if root.has("error") {
                return Err(error_code(&root));
            }
            Ok(root.child("ListIdentifiers").all("header").count())
        }
    };

    assert_eq!(count("subject:fitness").await, Ok(fitness.len()));
    assert_eq!(count("subject:civic_literacy").await, Ok(civic.len()));
    assert_eq!(count("institution:fayun-point").await, Ok(civic.len()));
    assert_eq!(
        count("subject").await,
        Ok(5),
        "a parent set holds its children's records"
    );
    assert_eq!(count("institution").await, Ok(5));
    assert_eq!(count("subject:health").await, Err("noRecordsMatch".into()));
    assert_eq!(count("subject:cooking").await, Err("noRecordsMatch".into()));
    assert_eq!(
        count("institution:nowhere").await,
        Err("noRecordsMatch".into())
    );
    assert_eq!(
        count("subject:%25").await,
        Err("noRecordsMatch".into()),
        "no LIKE wildcards"
    );
}

#[tokio::test]
async fn long_lists_page_by_position_so_concurrent_changes_skip_and_repeat_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    let original = publish(&app, "xihu-college", 250, "fitness").await;

    let first = page(&app, "ListRecords", "metadataPrefix=oai_dc").await;
    // Between pages: five new courses, and an edit of a course the first page served.
    let added = publish(&app, "xihu-college", 5, "health").await;
    let edited = app
        .patch_json_with_token(
            &format!("/api/v1/courses/{}", original[0]),
            &admin,
            &json!({"title": "edited"}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let first_token = first.token.clone().expect("a token after the first page");
    let (rest, tokens) = harvest(
        &app,
        "ListRecords",
        &format!("resumptionToken={}", first_token.text),
    )
    .await;

    assert_eq!(first.identifiers.len(), 100);
    assert_eq!(
        (
            first_token.cursor.as_str(),
            first_token.complete_list_size.as_str()
        ),
        ("0", "250")
    );
    assert!(!first_token.text.is_empty());
    // 150 left, 5 added, and the edited course again under its new datestamp.
    assert_eq!(rest.len(), 156);
    let cursors: Vec<&str> = tokens.iter().map(|t| t.cursor.as_str()).collect();
    assert_eq!(cursors, ["100", "200"]);
    assert!(
        tokens.iter().all(|t| t.complete_list_size == "256"),
        "{tokens:?}"
    );
    assert!(!tokens[0].text.is_empty());
    assert_eq!(tokens[1].text, "", "the last page's token is empty");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in first.identifiers.iter().chain(&rest) {
        *seen.entry(id.clone()).or_default() += 1;
    }
    for (n, id) in original.iter().enumerate() {
        let times = seen.get(&identifier(&app, &id.to_string())).copied();
        let expected = if n == 0 { 2 } else { 1 };
        assert_eq!(times, Some(expected), "course {n}");
    }
    for id in &added {
        assert_eq!(seen.get(&identifier(&app, &id.to_string())), Some(&1));
    }
    assert_eq!(
        rest.last(),
        Some(&identifier(&app, &original[0].to_string())),
        "the newest change comes last"
    );

    let (all_headers, header_tokens) =
        harvest(&app, "ListIdentifiers", "metadataPrefix=oai_dc").await;
    assert_eq!(all_headers.len(), 255);
    assert_eq!(all_headers.iter().collect::<HashSet<_>>().len(), 255);
    let cursors: Vec<&str> = header_tokens.iter().map(|t| t.cursor.as_str()).collect();
    assert_eq!(cursors, ["0", "100", "200"], "three pages from the start");
}

#[tokio::test]
async fn forged_altered_and_misused_tokens_are_bad_resumption_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    publish(&app, "xihu-college", 150, "fitness").await;
    let first = page(&app, "ListIdentifiers", "metadataPrefix=oai_dc").await;
    let token = first.token.expect("two pages").text;
    let (payload, signature) = token.split_once('.').expect("payload.signature");
    let mut fields: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    fields["n"] = json!(0);
    let altered = format!(
        "{}.{signature}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&fields).unwrap())
    );

    for (verb, bad) in [
        ("ListIdentifiers", altered.as_str()),
        ("ListIdentifiers", &token[..token.len() - 2]),
        ("ListIdentifiers", payload),
        ("ListIdentifiers", "forged.forged"),
        ("ListRecords", &token),
    ] {
        let root = oai(&app, &format!("verb={verb}&resumptionToken={bad}")).await;
        assert_eq!(error_code(&root), "badResumptionToken", "{verb} {bad}");
        assert_eq!(root.child("request").attr("resumptionToken"), Some(bad));
    }
    let genuine = page(&app, "ListIdentifiers", &format!("resumptionToken={token}")).await;
    assert_eq!(genuine.identifiers.len(), 50);
    assert_eq!(genuine.token.unwrap().text, "");
}

#[tokio::test]
async fn each_protocol_error_is_xml_with_status_200() {
    let app = TestApp::spawn().await;
    let (_, course) = catalog_with_one_course(&app).await;
    let id = identifier(&app, course["id"].as_str().unwrap());
    let list = "verb=ListRecords&metadataPrefix=oai_dc";
    let cases = [
        ("".to_owned(), "badVerb"),
        ("verb=Harvest".into(), "badVerb"),
        ("verb=identify".into(), "badVerb"),
        ("verb=Identify&verb=ListSets".into(), "badVerb"),
        ("verb=Identify&metadataPrefix=oai_dc".into(), "badArgument"),
        ("verb=ListRecords".into(), "badArgument"),
        (format!("{list}&metadataPrefix=oai_dc"), "badArgument"),
        (format!("{list}&from=2024-13-01"), "badArgument"),
        (format!("{list}&until=2024-01-01T00:00:00"), "badArgument"),
        (
            format!("{list}&from=2024-02-01&until=2024-01-01"),
            "badArgument",
        ),
        (
            format!("{list}&from=2024-01-01&until=2024-01-02T00:00:00Z"),
            "badArgument",
        ),
        (format!("{list}&resumptionToken=abc"), "badArgument"),
        (format!("{list}&set="), "badArgument"),
        (format!("verb=GetRecord&identifier={id}"), "badArgument"),
        (
            "verb=ListIdentifiers&metadataPrefix=marc21".into(),
            "cannotDisseminateFormat",
        ),
        (
            format!("verb=GetRecord&identifier={id}&metadataPrefix=mods"),
            "cannotDisseminateFormat",
        ),
        (
            format!(
                "verb=GetRecord&identifier=oai:elsewhere.org:{}&metadataPrefix=oai_dc",
                course["id"].as_str().unwrap()
            ),
            "idDoesNotExist",
        ),
        (
            format!(
                "verb=GetRecord&identifier={}&metadataPrefix=oai_dc",
                id.to_uppercase()
            ),
            "idDoesNotExist",
        ),
        (
            "verb=GetRecord&identifier=%00%FF&metadataPrefix=oai_dc".into(),
            "idDoesNotExist",
        ),
        (format!("{list}&from=2099-01-01"), "noRecordsMatch"),
        (format!("{list}&set=region:zhejiang"), "noRecordsMatch"),
        (
            "verb=ListRecords&resumptionToken=abc".into(),
            "badResumptionToken",
        ),
    ];

    for (query, code) in cases {
        let root = oai(&app, &query).await;
        assert_eq!(error_code(&root), code, "{query}");
        let request = root.child("request");
        assert_eq!(request.text, app.url("/oai"), "{query}");
        if matches!(code, "badVerb" | "badArgument") {
            assert!(
                request.attributes.is_empty(),
                "no echo after {code}: {query}"
            );
        } else {
            assert!(request.attr("verb").is_some(), "echo after {code}: {query}");
        }
    }
}

#[tokio::test]
async fn post_requests_are_answered_like_get_requests() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    publish(&app, "xihu-college", 120, "fitness").await;
    let post = |body: String, content_type: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/oai"))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            xml_of(response).await
        }
    };
    let form = "application/x-www-form-urlencoded";

    let first = post("verb=ListIdentifiers&metadataPrefix=oai_dc".into(), form).await;
    let list = first.child("ListIdentifiers");
    assert_eq!(list.all("header").count(), 100);
    let token = list.child("resumptionToken").text.clone();
    let second = post(
        format!("verb=ListIdentifiers&resumptionToken={token}"),
        "application/x-www-form-urlencoded; charset=UTF-8",
    )
    .await;
    assert_eq!(second.child("ListIdentifiers").all("header").count(), 20);
    let identify = post("verb=Identify".into(), form).await;
    assert_eq!(identify.child("request").attr("verb"), Some("Identify"));
    let json_body = post(r#"{"verb":"Identify"}"#.into(), "application/json").await;
    assert_eq!(error_code(&json_body), "badArgument");
    let no_verb = post(String::new(), form).await;
    assert_eq!(error_code(&no_verb), "badVerb");
}

#[tokio::test]
async fn a_database_failure_is_a_500_not_a_protocol_error() {
    let app = TestApp::spawn().await;
    sqlx::query("ALTER TABLE courses RENAME TO courses_gone")
        .execute(app.db.pool())
        .await
        .unwrap();

    let response = app.get("/oai?verb=ListRecords&metadataPrefix=oai_dc").await;

    assert_problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
}

/// The harvest a library would run, with the `sickle` harvester (from the Python package index): every record of
/// `ListRecords`, deleted ones skipped, over GET and over POST.
const SICKLE_HARVEST: &str = r#"
import json, sys
from sickle import Sickle

def titles(method):
    sickle = Sickle(sys.argv[1], http_method=method, max_retries=0)
    records = sickle.ListRecords(metadataPrefix="oai_dc", ignore_deleted=True)
    return [record.metadata["title"][0] for record in records]

by_get = titles("GET")
print(json.dumps({"count": len(by_get), "titles": by_get, "titles_by_post": titles("POST")}))
"#;

#[tokio::test]
async fn sickle_harvests_the_whole_catalog() {
    let python = match std::env::var("TEST_OAI_PYTHON") {
        Ok(path) if !path.is_empty() => path,
        _ => {
            eprintln!("OAI-PMH harvester test not run: TEST_OAI_PYTHON is not set");
            return;
        }
    };
    let app = TestApp::spawn().await;
    let (admin, withdrawn) = catalog_with_one_course(&app).await;
    publish(&app, "xihu-college", 230, "health").await;
    let response = app
        .client
        .delete(app.url(&format!(
            "/api/v1/courses/{}",
            withdrawn["id"].as_str().unwrap()
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let chinese = app
        .post_json_with_token(
            "/api/v1/courses",
            &admin,
            &json!({"institution": "xihu-college", "title": "书法 Calligraphy: 永字八法"}),
        )
        .await;
    assert_eq!(chinese.status(), StatusCode::CREATED);

    let output = tokio::process::Command::new(&python)
        .args(["-c", SICKLE_HARVEST, &app.url("/oai")])
        .output()
        .await
        .unwrap_or_else(|e| panic!("TEST_OAI_PYTHON={python} does not run: {e}"));

    assert!(
        output.status.success(),
        "the harvest failed (is sickle installed for {python}?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let harvested: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(harvested["count"], 231, "every live course, no deleted one");
    let titles: Vec<&str> = harvested["titles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(titles.iter().collect::<HashSet<_>>().len(), 231);
    assert_eq!(titles.last(), Some(&"书法 Calligraphy: 永字八法"));
    assert!(titles.contains(&"xihu-college course 229"));
    assert!(!titles.contains(&"太极拳入门 Tai chi & <you>"), "withdrawn");
    assert_eq!(harvested["titles_by_post"], harvested["titles"]);
}
