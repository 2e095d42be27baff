//! This server's Ed25519 identity: the key pair every federated record it publishes is signed
//! with, kept in a file only its owner may read.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// The federation protocol this server speaks, published in `/.well-known/shuyuan`.
pub const PROTOCOL: u32 = 1;

/// The server's id (its public URL), name and signing key.
#[derive(Clone)]
pub struct Identity {
    pub server_id: String,
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("server_id", &self.server_id)
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads the key from `path`, or makes one there (mode 0600) on first start.
    pub fn load_or_create(path: &Path, server_id: String, name: String) -> anyhow::Result<Self> {
        let key = if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the server key {}", path.display()))?;
            let seed = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .with_context(|| {
                    format!(
                        "{} is not a server key (base64 of 32 bytes)",
                        path.display()
                    )
                })?;
            SigningKey::from_bytes(&seed)
        } else {
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed).context("no randomness for a new server key")?;
            write_private(path, &STANDARD.encode(seed))?;
            tracing::info!(path = %path.display(), "made this server's federation key");
            SigningKey::from_bytes(&seed)
        };
        Ok(Identity {
            server_id,
            name,
            key,
        })
    }

    /// Standard base64 of the 32-byte public key.
    pub fn public_key(&self) -> String {
        public_key_text(&self.key.verifying_key())
    }

    /// Standard base64 of the 64-byte signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.key.sign(message).to_bytes())
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating the server key {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// A public key in its published form: standard base64 of its 32 bytes.
pub fn public_key_text(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// A public key from its standard base64 form, if it is one.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes = STANDARD.decode(text).ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes).ok()?).ok()
}

/// Whether `signature` (standard base64) is `key`'s signature of `message`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &str) -> bool {
    decode_signature(signature).is_some_and(|signature| key.verify(message, &signature).is_ok())
}

fn decode_signature(text: &str) -> Option<Signature> {
    let bytes = STANDARD.decode(text).ok()?;
    let bytes = <[u8; 64]>::try_from(bytes).ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// Whether each `(key, message, signature)` is good, as [`verify`] says. A feed page's
/// signatures are checked together first (Ed25519 batch verification costs about half as much
/// per signature); only when the batch fails is each checked alone, to find the bad ones.
///
/// The batch equation is not multiplied by the cofactor, so a signature whose R carries a
/// small-order component can pass in a batch (with probability about 1/8) where [`verify`]
/// refuses it. Only the holder of the origin's key can make such a signature, so this lets no
/// one forge or alter a record; it only lets a misbehaving origin make acceptance of its own
/// odd signatures depend on the page they arrive in.
pub fn verify_each(items: &[(VerifyingKey, &[u8], &str)]) -> Vec<bool> {
    let decoded: Vec<Option<Signature>> = items
        .iter()
        .map(|(_, _, signature)| decode_signature(signature))
        .collect();
    if decoded.iter().all(Option::is_some) && !items.is_empty() {
        let messages: Vec<&[u8]> = items.iter().map(|(_, message, _)| *message).collect();
        let signatures: Vec<Signature> = decoded.iter().flatten().copied().collect();
        let keys: Vec<VerifyingKey> = items.iter().map(|(key, _, _)| *key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return vec![true; items.len()];
        }
    }
    items
        .iter()
        .zip(&decoded)
        .map(|((key, message, _), signature)| {
            signature.is_some_and(|signature| key.verify(message, &signature).is_ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let first = Identity::load_or_create(&path, "http://a".into(), "A".into()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Identity::load_or_create(&path, "http://a".into(), "A".into()).unwrap();
        assert_eq!(first.public_key(), again.public_key());

        let key = parse_public_key(&first.public_key()).unwrap();
        let signature = first.sign(b"record");
        assert!(verify(&key, b"record", &signature));
        assert!(!verify(&key, b"recorD", &signature));
        assert!(!verify(&key, b"record", "not base64!"));

        let other =
            Identity::load_or_create(&dir.path().join("other.key"), "http://b".into(), "B".into())
                .unwrap();
        let other_key = parse_public_key(&other.public_key()).unwrap();
        let other_signature = other.sign(b"second");
        let good: Vec<(VerifyingKey, &[u8], &str)> = vec![
            (key, b"record", &signature),
            (other_key, b"second", &other_signature),
        ];
        assert_eq!(verify_each(&good), [true, true]);
        let one_forged: Vec<(VerifyingKey, &[u8], &str)> = vec![
            (key, b"record", &signature),
            (other_key, b"second", &signature),
            (key, b"record", "not base64!"),
        ];
        assert_eq!(verify_each(&one_forged), [true, false, false]);
        assert!(verify_each(&[]).is_empty());
        assert!(parse_public_key("AAAA").is_none());
    }

    #[test]
    fn a_damaged_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, "garbage").unwrap();
        let error = Identity::load_or_create(&path, "http://a".into(), "A".into()).unwrap_err();
        assert!(error.to_string().contains("not a server key"), "{error}");
    }
}
