//! Resumption tokens: where a list stopped, signed so that a client cannot forge or alter one.
//!
//! A token is `<payload>.<mac>`, both base64url without padding: the payload is a small JSON
//! object (the verb, the selection, the last `(updated_at, id)` returned and how many records
//! came before), the MAC an HMAC-SHA256 of the encoded payload under a secret stored in the
//! database (`server_secrets`). Every node of a cluster reads the same secret, so a harvester
//! may be sent to any node for its next page, and tokens survive restarts. They do not expire:
//! a token only names a position in a list ordered by `(updated_at, id)`, which stays
//! meaningful, so an old token resumes where it stopped. The payload is readable, and tells a
//! client nothing it did not send or receive.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::request::{ListKind, Selection, SetSpec};

/// Bytes of the random secret.
pub const SECRET_BYTES: usize = 32;

/// The last record a page returned: the next page starts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub updated_at_ms: i64,
    pub id: Uuid,
}

/// What a token carries: everything needed to serve the next page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    pub kind: ListKind,
    pub selection: Selection,
    pub after: Position,
    /// Records returned before the page this asks for: that page's `cursor`.
    pub returned: u64,
}

/// The wire form of [`Continuation`]. Short keys keep tokens short in harvesters' URLs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    /// Format version, so a later change can refuse tokens it cannot read.
    v: u8,
    /// `r` for `ListRecords`, `i` for `ListIdentifiers`: a token resumes only its own verb.
    k: char,
    #[serde(skip_serializing_if = "Option::is_none")]
    set: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
    at: i64,
    id: Uuid,
    n: u64,
}

const VERSION: u8 = 1;

/// The signing key. Its `Debug` shows nothing of the secret.
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl TokenKey {
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts a key of any length")
    }

    pub fn mint(&self, state: &Continuation) -> String {
        let payload = Payload {
            v: VERSION,
            k: match state.kind {
                ListKind::Records => 'r',
                ListKind::Identifiers => 'i',
            },
            set: state.selection.set.as_ref().map(SetSpec::spec),
            from: state.selection.from_ms,
            until: state.selection.until_ms,
            at: state.after.updated_at_ms,
            id: state.after.id,
            n: state.returned,
        };
        let json = serde_json::to_vec(&payload).expect("the payload serializes");
        let encoded = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(encoded.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{encoded}.{signature}")
    }

    /// The state a token carries, or `None` if this repository did not mint it as it is.
    pub fn open(&self, token: &str) -> Option<Continuation> {
        let (encoded, signature) = token.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(encoded.as_bytes());
        // Constant-time comparison: a forger learns nothing from how long a refusal takes.
        mac.verify_slice(&signature).ok()?;
        let json = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let payload: Payload = serde_json::from_slice(&json).ok()?;
        if payload.v != VERSION {
            return None;
        }
        let kind = match payload.k {
            'r' => ListKind::Records,
            'i' => ListKind::Identifiers,
            _ => return None,
        };
        let set = match payload.set {
            Some(spec) => Some(SetSpec::parse(&spec)?),
            None => None,
        };
        Some(Continuation {
            kind,
            selection: Selection {
                set,
                from_ms: payload.from,
                until_ms: payload.until,
            },
            after: Position {
                updated_at_ms: payload.at,
                id: payload.id,
            },
            returned: payload.n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::Subject;

    fn continuation() -> Continuation {
        Continuation {
            kind: ListKind::Records,
            selection: Selection {
                set: Some(SetSpec::Subject(Subject::Health)),
                from_ms: Some(1_000),
                until_ms: None,
            },
            after: Position {
                updated_at_ms: 1_717_000_000_123,
                id: Uuid::now_v7(),
            },
            returned: 100,
        }
    }

    #[test]
    fn a_minted_token_opens_to_the_same_state() {
        let key = TokenKey::new(vec![7; SECRET_BYTES]);
        let state = continuation();

        let token = key.mint(&state);

        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "URL- and XML-safe: {token}"
        );
        assert_eq!(key.open(&token), Some(state));
    }

    #[test]
    fn altered_forged_and_foreign_tokens_are_refused() {
        let key = TokenKey::new(vec![7; SECRET_BYTES]);
        let token = key.mint(&continuation());
        let (payload, signature) = token.split_once('.').unwrap();

        // Another position, signed with the old signature.
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        json["n"] = 0.into();
        let altered = format!(
            "{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
        );
        assert_eq!(key.open(&altered), None);
        // The same payload under another server's secret.
        let foreign = TokenKey::new(vec![8; SECRET_BYTES]).mint(&continuation());
        assert_eq!(key.open(&foreign), None);
        for junk in ["", ".", "abc", "abc.def", &format!("{payload}."), payload] {
            assert_eq!(key.open(junk), None, "{junk}");
        }
    }
}
