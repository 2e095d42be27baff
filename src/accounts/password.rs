//! argon2id hashing, always on the blocking pool: one hash takes tens of milliseconds of CPU,
//! which would stall every other request on an async worker thread.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::error::AccountsError;

pub async fn hash(password: String) -> Result<String, AccountsError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| AccountsError::Internal(format!("hashing task failed: {e}")))?
}

fn hash_blocking(password: &str) -> Result<String, AccountsError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountsError::Internal(format!("hashing failed: {e}")))
}

/// Verifies `password` against `stored`. With `stored = None` (no such account) it verifies
/// against a fixed dummy hash, so an unknown e-mail costs the same time as a wrong password and
/// response timing does not reveal which accounts exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, AccountsError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.as_deref().unwrap_or_else(|| dummy_hash());
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .map_err(|e| AccountsError::Internal(format!("verification task failed: {e}")))
}

/// Computes the dummy hash ahead of the first sign-in; blocking, run it off the async workers.
pub fn warm_up() {
    dummy_hash();
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking("not anyone's password; only spends the same time")
            .expect("hashing a constant cannot fail")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let stored = hash("long enough passphrase".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            verify("long enough passphrase".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong".into(), Some(stored)).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        // Same algorithm, version and parameters mean the same argon2 work per verification,
        // which is what keeps unknown accounts from answering faster.
        let real = hash_blocking("long enough passphrase").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        let dummy = PasswordHash::new(dummy_hash()).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(
            dummy.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "output length"
        );
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let dummy_password = "not anyone's password; only spends the same time";
        assert!(!verify(dummy_password.into(), None).await.unwrap());
    }
}
