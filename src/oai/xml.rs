//! A [`Reply`] as OAI-PMH 2.0 XML, written with quick-xml's `Writer`, which escapes every text
//! and attribute value. Characters XML 1.0 cannot carry at all (most control characters, which
//! a course description may contain) are dropped, so a harvester's parser never chokes.

use std::borrow::Cow;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use time::OffsetDateTime;
use time::macros::format_description;

use super::request::OAI_DC;
use super::{Body, DublinCore, Header, Identity, Page, Record, Reply, Resumption, SetEntry};

const OAI_NAMESPACE: &str = "http://www.openarchives.org/OAI/2.0/";
const OAI_SCHEMA_LOCATION: &str =
    "http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd";
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";
const OAI_DC_NAMESPACE: &str = "http://www.openarchives.org/OAI/2.0/oai_dc/";
const OAI_DC_SCHEMA: &str = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd";
const DC_NAMESPACE: &str = "http://purl.org/dc/elements/1.1/";

/// What `dc:type` says of every record.
const DC_TYPE: &str = "Course";

/// The granularity `Identify` announces; `from` and `until` may also be whole days.
pub const GRANULARITY: &str = "YYYY-MM-DDThh:mm:ssZ";

/// The XML document for `reply`, UTF-8.
pub fn render(reply: &Reply) -> Vec<u8> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 1);
    write_reply(&mut writer, reply).expect("writing to a Vec cannot fail");
    writer.into_inner()
}

type Out = Writer<Vec<u8>>;

fn write_reply(w: &mut Out, reply: &Reply) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("OAI-PMH")
        .with_attribute(("xmlns", OAI_NAMESPACE))
        .with_attribute(("xmlns:xsi", XSI_NAMESPACE))
        .with_attribute(("xsi:schemaLocation", OAI_SCHEMA_LOCATION))
        .write_inner_content(|w| {
            text(w, "responseDate", &datestamp(reply.response_date_ms))?;
            let echo: Vec<(&str, Cow<'_, str>)> = reply
                .echo
                .iter()
                .map(|(name, value)| (name.as_str(), xml_chars(value)))
                .collect();
            w.create_element("request")
                .with_attributes(echo.iter().map(|(name, value)| (*name, value.as_ref())))
                .write_text_content(BytesText::new(&reply.base_url))?;
            write_body(w, &reply.base_url, &reply.body)
        })?;
    Ok(())
}

fn write_body(w: &mut Out, base_url: &str, body: &Body) -> io::Result<()> {
    match body {
        Body::Identify(identity) => write_identify(w, base_url, identity),
        Body::ListMetadataFormats => {
            w.create_element("ListMetadataFormats")
                .write_inner_content(|w| {
                    w.create_element("metadataFormat")
                        .write_inner_content(|w| {
                            text(w, "metadataPrefix", OAI_DC)?;
                            text(w, "schema", OAI_DC_SCHEMA)?;
                            text(w, "metadataNamespace", OAI_DC_NAMESPACE)
                        })?;
                    Ok(())
                })?;
            Ok(())
        }
        Body::ListSets(sets) => write_sets(w, sets),
        Body::ListIdentifiers(page) => write_page(w, "ListIdentifiers", page, |w, record| {
            write_header(w, &record.header)
        }),
        Body::ListRecords(page) => write_page(w, "ListRecords", page, write_record),
        Body::GetRecord(record) => {
            w.create_element("GetRecord")
                .write_inner_content(|w| write_record(w, record))?;
            Ok(())
        }
        Body::Errors(errors) => {
            for error in errors {
                w.create_element("error")
                    .with_attribute(("code", error.code.as_str()))
                    .write_text_content(BytesText::new(&xml_chars(&error.message)))?;
            }
            Ok(())
        }
    }
}

fn write_identify(w: &mut Out, base_url: &str, identity: &Identity) -> io::Result<()> {
    w.create_element("Identify").write_inner_content(|w| {
        text(w, "repositoryName", &identity.repository_name)?;
        text(w, "baseURL", base_url)?;
        text(w, "protocolVersion", "2.0")?;
        text(w, "adminEmail", &identity.admin_email)?;
        text(
            w,
            "earliestDatestamp",
            &datestamp(identity.earliest_datestamp_ms),
        )?;
        // Withdrawn courses stay in the repository as deleted records, for good.
        text(w, "deletedRecord", "persistent")?;
        text(w, "granularity", GRANULARITY)
    })?;
    Ok(())
}

fn write_sets(w: &mut Out, sets: &[SetEntry]) -> io::Result<()> {
    w.create_element("ListSets").write_inner_content(|w| {
        for set in sets {
            w.create_element("set").write_inner_content(|w| {
                text(w, "setSpec", &set.spec)?;
                text(w, "setName", &set.name)
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_page(
    w: &mut Out,
    verb: &str,
    page: &Page,
    write_item: impl Fn(&mut Out, &Record) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(verb).write_inner_content(|w| {
        for record in &page.records {
            write_item(w, record)?;
        }
        if let Some(resumption) = &page.resumption {
            write_resumption(w, resumption)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_resumption(w: &mut Out, resumption: &Resumption) -> io::Result<()> {
    let size = resumption.complete_list_size.to_string();
    let cursor = resumption.cursor.to_string();
    let element = w
        .create_element("resumptionToken")
        .with_attribute(("completeListSize", size.as_str()))
        .with_attribute(("cursor", cursor.as_str()));
    match &resumption.token {
        Some(token) => element.write_text_content(BytesText::new(token))?,
        // The last page of a list: an empty token says the list is complete.
        None => element.write_empty()?,
    };
    Ok(())
}

fn write_record(w: &mut Out, record: &Record) -> io::Result<()> {
    w.create_element("record").write_inner_content(|w| {
        write_header(w, &record.header)?;
        if let Some(dc) = &record.metadata {
            w.create_element("metadata")
                .write_inner_content(|w| write_dublin_core(w, dc))?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_header(w: &mut Out, header: &Header) -> io::Result<()> {
    let mut element = w.create_element("header");
    if header.deleted {
        element = element.with_attribute(("status", "deleted"));
    }
    element.write_inner_content(|w| {
        text(w, "identifier", &header.identifier)?;
        text(w, "datestamp", &datestamp(header.datestamp_ms))?;
        for spec in &header.set_specs {
            text(w, "setSpec", spec)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_dublin_core(w: &mut Out, dc: &DublinCore) -> io::Result<()> {
    w.create_element("oai_dc:dc")
        .with_attribute(("xmlns:oai_dc", OAI_DC_NAMESPACE))
        .with_attribute(("xmlns:dc", DC_NAMESPACE))
        .with_attribute(("xmlns:xsi", XSI_NAMESPACE))
        .with_attribute((
            "xsi:schemaLocation",
            format!("{OAI_DC_NAMESPACE} {OAI_DC_SCHEMA}").as_str(),
        ))
        .write_inner_content(|w| {
            text(w, "dc:title", &dc.title)?;
            if let Some(institution) = &dc.institution {
                text(w, "dc:creator", institution)?;
            }
            for subject in &dc.subjects {
                text(w, "dc:subject", subject)?;
            }
            if !dc.description.is_empty() {
                text(w, "dc:description", &dc.description)?;
            }
            if let Some(institution) = &dc.institution {
                text(w, "dc:publisher", institution)?;
            }
            text(w, "dc:date", &day(dc.date_ms))?;
            text(w, "dc:type", DC_TYPE)?;
            text(w, "dc:identifier", &dc.url)?;
            for language in &dc.languages {
                text(w, "dc:language", language)?;
            }
            text(w, "dc:rights", &dc.rights)?;
            text(w, "dc:coverage", &dc.coverage)
        })?;
    Ok(())
}

/// `<name>text</name>`, escaped, with characters XML cannot carry dropped.
fn text(w: &mut Out, name: &str, content: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(&xml_chars(content)))?;
    Ok(())
}

/// `text` without the characters XML 1.0 forbids even escaped: C0 controls other than tab,
/// line feed and carriage return, and U+FFFE, U+FFFF. (Rust strings hold no surrogates.)
fn xml_chars(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| allowed(c)).collect())
    }
}

fn utc(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A datestamp in the repository's granularity, seconds, in UTC.
pub fn datestamp(ms: i64) -> String {
    utc(ms)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("formatting a valid time cannot fail")
}

fn day(ms: i64) -> String {
    utc(ms)
        .format(format_description!("[year]-[month]-[day]"))
        .expect("formatting a valid date cannot fail")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::oai::request::{ProtocolError, ProtocolErrorCode};

    fn reply(echo: Vec<(String, String)>, body: Body) -> String {
        String::from_utf8(render(&Reply {
            response_date_ms: 1_717_000_000_999,
            base_url: Arc::from("http://learn.example.org/oai"),
            echo,
            body,
        }))
        .unwrap()
    }

    #[test]
    fn datestamps_are_utc_seconds() {
        assert_eq!(datestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(datestamp(1_717_000_000_999), "2024-05-29T16:26:40Z");
        assert_eq!(day(1_717_000_000_999), "2024-05-29");
    }

    #[test]
    fn text_and_arguments_are_escaped_and_cleaned() {
        let xml = reply(
            vec![("verb".into(), "GetRecord\"<&".into())],
            Body::Errors(vec![ProtocolError::new(
                ProtocolErrorCode::IdDoesNotExist,
                "a <b> & \u{1}c",
            )]),
        );

        assert!(
            xml.contains(r#"<request verb="GetRecord&quot;&lt;&amp;">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<error code="idDoesNotExist">a &lt;b&gt; &amp; c</error>"#),
            "{xml}"
        );
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#));
        assert!(xml.contains("<responseDate>2024-05-29T16:26:40Z</responseDate>"));
    }

    #[test]
    fn a_deleted_record_has_a_status_and_no_metadata() {
        let xml = reply(
            Vec::new(),
            Body::GetRecord(Record {
                header: Header {
                    identifier: "oai:learn.example.org:1".into(),
                    datestamp_ms: 0,
                    deleted: true,
                    set_specs: vec!["subject:health".into()],
                },
                metadata: None,
            }),
        );

        assert!(xml.contains(r#"<header status="deleted">"#), "{xml}");
        assert!(xml.contains("<setSpec>subject:health</setSpec>"), "{xml}");
        assert!(!xml.contains("<metadata>"), "{xml}");
    }

    #[test]
    fn the_last_page_ends_with_an_empty_token() {
        let xml = reply(
            Vec::new(),
            Body::ListIdentifiers(Page {
                records: Vec::new(),
                resumption: Some(Resumption {
                    token: None,
                    complete_list_size: 250,
                    cursor: 200,
                }),
            }),
        );

        assert!(
            xml.contains(r#"<resumptionToken completeListSize="250" cursor="200"/>"#),
            "{xml}"
        );
    }
}
