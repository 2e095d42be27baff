//! An OAI-PMH request as sent (form-encoded pairs) parsed into a typed [`Request`], or the
//! protocol errors that say why it cannot be. Pure: no database, no HTTP.

use time::{Date, Month, PrimitiveDateTime, Time};

use crate::catalog::model::Subject;
use crate::institutions::model::Slug;

/// The only metadata format served.
pub const OAI_DC: &str = "oai_dc";

/// The protocol's error codes (OAI-PMH 2.0 §3.6) that this repository can produce.
/// `noSetHierarchy` and `noMetadataFormats` cannot happen here: there are sets, and every
/// record is available as `oai_dc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolErrorCode {
    BadArgument,
    BadResumptionToken,
    BadVerb,
    CannotDisseminateFormat,
    IdDoesNotExist,
    NoRecordsMatch,
}

impl ProtocolErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolErrorCode::BadArgument => "badArgument",
            ProtocolErrorCode::BadResumptionToken => "badResumptionToken",
            ProtocolErrorCode::BadVerb => "badVerb",
            ProtocolErrorCode::CannotDisseminateFormat => "cannotDisseminateFormat",
            ProtocolErrorCode::IdDoesNotExist => "idDoesNotExist",
            ProtocolErrorCode::NoRecordsMatch => "noRecordsMatch",
        }
    }
}

/// One `<error code="…">message</error>` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ProtocolErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ProtocolErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad_argument(message: impl Into<String>) -> Self {
        Self::new(ProtocolErrorCode::BadArgument, message)
    }
}

/// The six verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Identify,
    ListMetadataFormats,
    ListSets,
    ListIdentifiers,
    ListRecords,
    GetRecord,
}

impl Verb {
    pub const ALL: [Verb; 6] = [
        Verb::Identify,
        Verb::ListMetadataFormats,
        Verb::ListSets,
        Verb::ListIdentifiers,
        Verb::ListRecords,
        Verb::GetRecord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Identify => "Identify",
            Verb::ListMetadataFormats => "ListMetadataFormats",
            Verb::ListSets => "ListSets",
            Verb::ListIdentifiers => "ListIdentifiers",
            Verb::ListRecords => "ListRecords",
            Verb::GetRecord => "GetRecord",
        }
    }

    /// Verbs are case-sensitive, like every name in the protocol.
    pub fn parse(text: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|verb| verb.as_str() == text)
    }

    /// The arguments the verb accepts besides `verb`.
    fn arguments(self) -> &'static [&'static str] {
        match self {
            Verb::Identify => &[],
            Verb::ListMetadataFormats => &["identifier"],
            Verb::ListSets => &["resumptionToken"],
            Verb::ListIdentifiers | Verb::ListRecords => {
                &["metadataPrefix", "from", "until", "set", "resumptionToken"]
            }
            Verb::GetRecord => &["identifier", "metadataPrefix"],
        }
    }
}

/// The two list verbs, which share selection and paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Identifiers,
    Records,
}

impl ListKind {
    pub fn verb(self) -> Verb {
        match self {
            ListKind::Identifiers => Verb::ListIdentifiers,
            ListKind::Records => Verb::ListRecords,
        }
    }
}

/// A request the repository can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Identify,
    /// With an identifier: the formats of that item (which must exist).
    ListMetadataFormats {
        identifier: Option<String>,
    },
    /// With a resumption token, which this repository never issues for sets.
    ListSets {
        resumption_token: Option<String>,
    },
    List(ListKind, ListRequest),
    GetRecord {
        identifier: String,
    },
}

/// A first list request, or a follow-up that carries only its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRequest {
    Fresh(Selection),
    Resume(String),
}

/// Which records a list request selects. The bounds are inclusive, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub set: Option<SetSpec>,
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// The sets: every subject and every institution, each under a parent set. As the protocol
/// says, a parent set holds every record of its children: `subject` is every course with a
/// subject, `institution` every course with an institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSpec {
    AnySubject,
    Subject(Subject),
    AnyInstitution,
    Institution(Slug),
}

impl SetSpec {
    /// `None` for a spec that names no set of this repository.
    pub fn parse(spec: &str) -> Option<SetSpec> {
        match spec.split_once(':') {
            None if spec == "subject" => Some(SetSpec::AnySubject),
            None if spec == "institution" => Some(SetSpec::AnyInstitution),
            Some(("subject", word)) => Subject::parse(word).ok().map(SetSpec::Subject),
            Some(("institution", slug)) => Slug::parse(slug).ok().map(SetSpec::Institution),
            _ => None,
        }
    }

    pub fn spec(&self) -> String {
        match self {
            SetSpec::AnySubject => "subject".into(),
            SetSpec::Subject(subject) => format!("subject:{}", subject.as_str()),
            SetSpec::AnyInstitution => "institution".into(),
            SetSpec::Institution(slug) => format!("institution:{}", slug.as_str()),
        }
    }
}

/// Why a request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub Vec<ProtocolError>);

impl Refusal {
    fn one(code: ProtocolErrorCode, message: impl Into<String>) -> Self {
        Refusal(vec![ProtocolError::new(code, message)])
    }

    /// The protocol echoes a request's arguments in `<request>` unless it was refused with
    /// `badVerb` or `badArgument` (OAI-PMH 2.0 §3.2).
    pub fn echoes_arguments(&self) -> bool {
        !self.0.iter().any(|error| {
            matches!(
                error.code,
                ProtocolErrorCode::BadVerb | ProtocolErrorCode::BadArgument
            )
        })
    }
}

/// Decodes a query string or an `application/x-www-form-urlencoded` body into its pairs, in
/// order, repeats kept (a repeated argument is an error the parser must see).
pub fn form_pairs(form: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(form).into_owned().collect()
}

/// Parses the pairs of one request. Every `badArgument` found is reported, not just the first.
pub fn parse(pairs: &[(String, String)]) -> Result<Request, Refusal> {
    let verb = parse_verb(pairs)?;
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        if name == "verb" {
            continue;
        }
        if !verb.arguments().contains(&name.as_str()) {
            errors.push(ProtocolError::bad_argument(format!(
                "{name:?} is not an argument of {}",
                verb.as_str()
            )));
        } else if seen.contains(&name.as_str()) {
            errors.push(ProtocolError::bad_argument(format!("{name} is repeated")));
        } else if value.is_empty() {
            errors.push(ProtocolError::bad_argument(format!("{name} is empty")));
        }
        seen.push(name);
    }
    if !errors.is_empty() {
        return Err(Refusal(errors));
    }
    let argument = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    };
    match verb {
        Verb::Identify => Ok(Request::Identify),
        Verb::ListMetadataFormats => Ok(Request::ListMetadataFormats {
            identifier: argument("identifier"),
        }),
        Verb::ListSets => Ok(Request::ListSets {
            resumption_token: argument("resumptionToken"),
        }),
        Verb::GetRecord => {
            let (Some(identifier), Some(prefix)) =
                (argument("identifier"), argument("metadataPrefix"))
            else {
                return Err(Refusal::one(
                    ProtocolErrorCode::BadArgument,
                    "GetRecord needs identifier and metadataPrefix",
                ));
            };
            check_prefix(&prefix)?;
            Ok(Request::GetRecord { identifier })
        }
        Verb::ListIdentifiers | Verb::ListRecords => {
            let kind = if verb == Verb::ListRecords {
                ListKind::Records
            } else {
                ListKind::Identifiers
            };
            if let Some(token) = argument("resumptionToken") {
                if pairs.len() > 2 {
                    return Err(Refusal::one(
                        ProtocolErrorCode::BadArgument,
                        "resumptionToken is exclusive: send only verb and resumptionToken",
                    ));
                }
                return Ok(Request::List(kind, ListRequest::Resume(token)));
            }
            let selection = parse_selection(
                argument("metadataPrefix").as_deref(),
                argument("from").as_deref(),
                argument("until").as_deref(),
                argument("set").as_deref(),
            )?;
            Ok(Request::List(kind, ListRequest::Fresh(selection)))
        }
    }
}

fn parse_verb(pairs: &[(String, String)]) -> Result<Verb, Refusal> {
    let verbs: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == "verb")
        .map(|(_, value)| value.as_str())
        .collect();
    match verbs.as_slice() {
        [] => Err(Refusal::one(
            ProtocolErrorCode::BadVerb,
            "the verb argument is missing",
        )),
        [verb] => Verb::parse(verb).ok_or_else(|| {
            Refusal::one(
                ProtocolErrorCode::BadVerb,
                format!("{verb:?} is not an OAI-PMH verb"),
            )
        }),
        _ => Err(Refusal::one(
            ProtocolErrorCode::BadVerb,
            "the verb argument is repeated",
        )),
    }
}

fn check_prefix(prefix: &str) -> Result<(), Refusal> {
    if prefix == OAI_DC {
        Ok(())
    } else {
        Err(Refusal::one(
            ProtocolErrorCode::CannotDisseminateFormat,
            format!("{prefix:?} is not a format of this repository; it serves oai_dc"),
        ))
    }
}

fn parse_selection(
    prefix: Option<&str>,
    from: Option<&str>,
    until: Option<&str>,
    set: Option<&str>,
) -> Result<Selection, Refusal> {
    let mut errors = Vec::new();
    if prefix.is_none() {
        errors.push(ProtocolError::bad_argument("metadataPrefix is required"));
    }
    let mut parse_date = |name: &str, text: Option<&str>| {
        text.and_then(|text| match Datestamp::parse(text) {
            Ok(date) => Some(date),
            Err(message) => {
                errors.push(ProtocolError::bad_argument(format!("{name}: {message}")));
                None
            }
        })
    };
    let from = parse_date("from", from);
    let until = parse_date("until", until);
    if let (Some(from), Some(until)) = (from, until) {
        if from.granularity != until.granularity {
            errors.push(ProtocolError::bad_argument(
                "from and until must have the same granularity",
            ));
        } else if from.start_ms > until.end_ms {
            errors.push(ProtocolError::bad_argument("from is later than until"));
        }
    }
    if !errors.is_empty() {
        return Err(Refusal(errors));
    }
    check_prefix(prefix.unwrap_or_default())?;
    let set = match set {
        None => None,
        Some(spec) => Some(SetSpec::parse(spec).ok_or_else(|| {
            Refusal::one(
                ProtocolErrorCode::NoRecordsMatch,
                format!("there is no set {spec:?}; ListSets names every set"),
            )
        })?),
    };
    Ok(Selection {
        set,
        from_ms: from.map(|d| d.start_ms),
        until_ms: until.map(|d| d.end_ms),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Second,
}

/// A `from` or `until` value: the span of time it names, in milliseconds, both ends inclusive
/// (`2024-05-01` is the whole day; `2024-05-01T08:00:00Z` the whole second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datestamp {
    pub granularity: Granularity,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Datestamp {
    /// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`, exactly (UTC, no fractions, no offsets).
    pub fn parse(text: &str) -> Result<Datestamp, String> {
        const SHAPE: &str = "must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ";
        let bytes = text.as_bytes();
        let digits_at = |positions: &[usize]| {
            positions
                .iter()
                .all(|&i| bytes.get(i).is_some_and(u8::is_ascii_digit))
        };
        let date_shape = bytes.len() >= 10
            && digits_at(&[0, 1, 2, 3, 5, 6, 8, 9])
            && bytes[4] == b'-'
            && bytes[7] == b'-';
        let number = |range: std::ops::Range<usize>| -> u32 {
            text[range].parse().expect("checked to be ASCII digits")
        };
        if !date_shape {
            return Err(SHAPE.into());
        }
        let month = Month::try_from(number(5..7) as u8).map_err(|_| "no such month".to_owned())?;
        let date = Date::from_calendar_date(number(0..4) as i32, month, number(8..10) as u8)
            .map_err(|_| "no such date".to_owned())?;
        let (granularity, time, span_ms) = match bytes.len() {
            10 => (Granularity::Day, Time::MIDNIGHT, 86_400_000),
            20 if bytes[10] == b'T'
                && digits_at(&[11, 12, 14, 15, 17, 18])
                && bytes[13] == b':'
                && bytes[16] == b':'
                && bytes[19] == b'Z' =>
            {
                let time = Time::from_hms(
                    number(11..13) as u8,
                    number(14..16) as u8,
                    number(17..19) as u8,
                )
                .map_err(|_| "no such time of day".to_owned())?;
                (Granularity::Second, time, 1_000)
            }
            _ => return Err(SHAPE.into()),
        };
        let start_ms = PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp()
            * 1_000;
        Ok(Datestamp {
            granularity,
            start_ms,
            end_ms: start_ms + span_ms - 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_pairs(query.as_bytes())
    }

    fn codes(query: &str) -> Vec<ProtocolErrorCode> {
        match parse(&pairs(query)) {
            Ok(request) => panic!("{query} parsed as {request:?}"),
            Err(Refusal(errors)) => errors.into_iter().map(|e| e.code).collect(),
        }
    }

    #[test]
    fn every_verb_parses() {
        assert_eq!(parse(&pairs("verb=Identify")), Ok(Request::Identify));
        assert_eq!(
            parse(&pairs("verb=ListMetadataFormats&identifier=oai:x:1")),
            Ok(Request::ListMetadataFormats {
                identifier: Some("oai:x:1".into())
            })
        );
        assert_eq!(
            parse(&pairs("verb=ListSets")),
            Ok(Request::ListSets {
                resumption_token: None
            })
        );
        assert_eq!(
            parse(&pairs(
                "verb=ListRecords&metadataPrefix=oai_dc&set=subject%3Afitness&from=2024-01-01"
            )),
            Ok(Request::List(
                ListKind::Records,
                ListRequest::Fresh(Selection {
                    set: Some(SetSpec::Subject(Subject::Fitness)),
                    from_ms: Some(1_704_067_200_000),
                    until_ms: None,
                })
            ))
        );
        assert_eq!(
            parse(&pairs("verb=ListIdentifiers&resumptionToken=abc")),
            Ok(Request::List(
                ListKind::Identifiers,
                ListRequest::Resume("abc".into())
            ))
        );
        assert_eq!(
            parse(&pairs(
                "metadataPrefix=oai_dc&verb=GetRecord&identifier=oai:x:1"
            )),
            Ok(Request::GetRecord {
                identifier: "oai:x:1".into()
            })
        );
    }

    #[test]
    fn a_missing_repeated_or_unknown_verb_is_bad_verb() {
        assert_eq!(codes(""), [ProtocolErrorCode::BadVerb]);
        assert_eq!(codes("verb=identify"), [ProtocolErrorCode::BadVerb]);
        assert_eq!(
            codes("verb=Identify&verb=Identify"),
            [ProtocolErrorCode::BadVerb]
        );
        assert_eq!(codes("verb="), [ProtocolErrorCode::BadVerb]);
    }

    #[test]
    fn unknown_repeated_empty_and_missing_arguments_are_bad_arguments() {
        assert_eq!(codes("verb=Identify&x=1"), [ProtocolErrorCode::BadArgument]);
        assert_eq!(
            codes("verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=oai_dc"),
            [ProtocolErrorCode::BadArgument]
        );
        assert_eq!(
            codes("verb=ListRecords&metadataPrefix=oai_dc&set="),
            [ProtocolErrorCode::BadArgument]
        );
        assert_eq!(codes("verb=ListRecords"), [ProtocolErrorCode::BadArgument]);
        assert_eq!(
            codes("verb=GetRecord&identifier=oai:x:1"),
            [ProtocolErrorCode::BadArgument]
        );
        assert_eq!(
            codes("verb=ListRecords&resumptionToken=t&metadataPrefix=oai_dc"),
            [ProtocolErrorCode::BadArgument]
        );
        assert_eq!(
            codes("verb=Identify&a=1&b=2"),
            [
                ProtocolErrorCode::BadArgument,
                ProtocolErrorCode::BadArgument
            ],
            "every bad argument is reported"
        );
    }

    #[test]
    fn dates_must_be_valid_ordered_and_of_one_granularity() {
        let list = "verb=ListRecords&metadataPrefix=oai_dc";
        for bad in [
            "from=2024-13-01",
            "from=2024-02-30",
            "from=2024-1-01",
            "until=2024-01-01T25:00:00Z",
            "until=2024-01-01T10:00:00",
            "until=2024-01-01T10:00:00.5Z",
            "until=2024-01-01T10:00:00%2B08:00",
            "from=yesterday",
            "from=2024-01-02&until=2024-01-01",
            "from=2024-01-01T00:00:01Z&until=2024-01-01T00:00:00Z",
            "from=2024-01-01&until=2024-01-02T00:00:00Z",
        ] {
            assert_eq!(
                codes(&format!("{list}&{bad}")),
                [ProtocolErrorCode::BadArgument],
                "{bad}"
            );
        }
        assert!(parse(&pairs(&format!("{list}&from=2024-01-01&until=2024-01-01"))).is_ok());
    }

    #[test]
    fn datestamps_cover_their_whole_day_or_second() {
        let day = Datestamp::parse("1970-01-02").unwrap();
        assert_eq!(day.granularity, Granularity::Day);
        assert_eq!((day.start_ms, day.end_ms), (86_400_000, 172_799_999));
        let second = Datestamp::parse("1970-01-01T00:00:05Z").unwrap();
        assert_eq!(second.granularity, Granularity::Second);
        assert_eq!((second.start_ms, second.end_ms), (5_000, 5_999));
    }

    #[test]
    fn other_formats_cannot_be_disseminated() {
        assert_eq!(
            codes("verb=ListRecords&metadataPrefix=marc21"),
            [ProtocolErrorCode::CannotDisseminateFormat]
        );
        assert_eq!(
            codes("verb=GetRecord&metadataPrefix=mods&identifier=oai:x:1"),
            [ProtocolErrorCode::CannotDisseminateFormat]
        );
    }

    #[test]
    fn sets_parse_and_print_back() {
        for spec in [
            "subject",
            "subject:digital_skills",
            "institution",
            "institution:xihu-college",
        ] {
            assert_eq!(SetSpec::parse(spec).unwrap().spec(), spec);
        }
        for unknown in [
            "subject:cooking",
            "subject:%",
            "institution:X",
            "region",
            "subject:",
        ] {
            assert_eq!(SetSpec::parse(unknown), None, "{unknown}");
        }
        assert_eq!(
            codes("verb=ListIdentifiers&metadataPrefix=oai_dc&set=subject:cooking"),
            [ProtocolErrorCode::NoRecordsMatch]
        );
    }

    #[test]
    fn only_bad_verbs_and_arguments_suppress_the_echo() {
        assert!(!Refusal::one(ProtocolErrorCode::BadVerb, "").echoes_arguments());
        assert!(!Refusal::one(ProtocolErrorCode::BadArgument, "").echoes_arguments());
        assert!(Refusal::one(ProtocolErrorCode::CannotDisseminateFormat, "").echoes_arguments());
    }
}
