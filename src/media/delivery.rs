//! Deciding how to answer a media request: conditional headers first (RFC 9110 §13.2.2),
//! then `Range`. Pure logic over headers, so it is tested without HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::RANGE;
use headers::{ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, IfRange, LastModified};
use http_range_header::RangeUnsatisfiableError;

/// What is being served.
pub struct Representation {
    pub size: u64,
    /// Hex SHA-256 of the bytes; the strong validator.
    pub sha256_hex: String,
    pub last_modified_ms: i64,
}

impl Representation {
    pub fn etag(&self) -> ETag {
        format!("\"{}\"", self.sha256_hex)
            .parse()
            .expect("a quoted hex string is a valid entity tag")
    }

    pub fn last_modified(&self) -> SystemTime {
        // HTTP dates have one-second resolution; comparing at finer grain would never match.
        let seconds = u64::try_from(self.last_modified_ms / 1000).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(seconds)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    NotModified,
    Full,
    /// Inclusive byte positions.
    Partial {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

pub fn plan(request: &HeaderMap, representation: &Representation) -> Delivery {
    let etag = representation.etag();
    let last_modified = representation.last_modified();
    if let Some(if_none_match) = request.typed_get::<IfNoneMatch>() {
        if !if_none_match.precondition_passes(&etag) {
            return Delivery::NotModified;
        }
    } else if let Some(if_modified_since) = request.typed_get::<IfModifiedSince>()
        && !if_modified_since.is_modified(last_modified)
    {
        return Delivery::NotModified;
    }

    let Some(range) = request.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Delivery::Full;
    };
    if let Some(if_range) = request.typed_get::<IfRange>()
        && if_range.is_modified(Some(&etag), Some(&LastModified::from(last_modified)))
    {
        // The client's copy is stale: it gets the whole current file, not a piece to splice.
        return Delivery::Full;
    }
    let validated = http_range_header::parse_range_header(range)
        .and_then(|parsed| parsed.validate(representation.size));
    match validated {
        Ok(ranges) if ranges.len() == 1 => Delivery::Partial {
            start: *ranges[0].start(),
            end: *ranges[0].end(),
        },
        // Several ranges: answering with the whole file is allowed (RFC 9110 §14.2) and every
        // player asks for one range at a time, so multipart/byteranges is not worth its cost.
        Ok(_) => Delivery::Full,
        Err(RangeUnsatisfiableError::Unsatisfiable) => Delivery::Unsatisfiable,
        // Malformed ranges (`bytes=5-1`, `bytes=abc`) are ignored, as the
        // RFC requires of a header the server does not understand.
        Err(_) => Delivery::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn file() -> Representation {
        Representation {
            size: 1000,
            sha256_hex: "ab".repeat(32),
            last_modified_ms: 1_700_000_000_000,
        }
    }

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn single_ranges_of_every_form() {
        let f = file();
        assert_eq!(
            plan(&with(&[("range", "bytes=0-99")]), &f),
            Delivery::Partial { start: 0, end: 99 }
        );
        assert_eq!(
            plan(&with(&[("range", "bytes=900-")]), &f),
            Delivery::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            plan(&with(&[("range", "bytes=-10")]), &f),
            Delivery::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            plan(&with(&[("range", "bytes=990-5000")]), &f),
            Delivery::Partial {
                start: 990,
                end: 999
            }
        );
    }

    #[test]
    fn bad_ranges_are_ignored_and_impossible_ones_unsatisfiable() {
        let f = file();
        for ignored in ["bytes=5-1", "bytes=abc", "items=0-1", "bytes=0-0,5-9"] {
            assert_eq!(
                plan(&with(&[("range", ignored)]), &f),
                Delivery::Full,
                "{ignored}"
            );
        }
        assert_eq!(
            plan(&with(&[("range", "bytes=1000-")]), &f),
            Delivery::Unsatisfiable
        );
        // A start past u64 is past the end of any file.
        assert_eq!(
            plan(&with(&[("range", "bytes=99999999999999999999999-")]), &f),
            Delivery::Unsatisfiable
        );
        assert_eq!(
            plan(&with(&[("range", "bytes=5000-6000")]), &f),
            Delivery::Unsatisfiable
        );
    }

    #[test]
    fn conditional_requests() {
        let f = file();
        let etag = format!("\"{}\"", "ab".repeat(32));
        assert_eq!(
            plan(&with(&[("if-none-match", &etag)]), &f),
            Delivery::NotModified
        );
        assert_eq!(
            plan(&with(&[("if-none-match", "\"other\"")]), &f),
            Delivery::Full
        );
        assert_eq!(
            plan(
                &with(&[("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")]),
                &f
            ),
            Delivery::NotModified
        );
        assert_eq!(
            plan(
                &with(&[("if-modified-since", "Mon, 13 Nov 2023 00:00:00 GMT")]),
                &f
            ),
            Delivery::Full
        );
        assert_eq!(
            plan(&with(&[("range", "bytes=0-9"), ("if-range", &etag)]), &f),
            Delivery::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            plan(
                &with(&[("range", "bytes=0-9"), ("if-range", "\"stale\"")]),
                &f
            ),
            Delivery::Full
        );
    }
}
