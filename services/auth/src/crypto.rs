//! Rocket.Chat's password and token storage (protocol.md §6): passwords are bcrypt of the
//! SHA-256 hex digest of the password; tokens are stored as base64(sha256(token)).

use apogee_api::Password;
use apogee_types::{ServiceError, ServiceResult};
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of the password: what bcrypt is applied to.
pub fn password_digest(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub use apogee_api::hash_token;

/// The pre-hash of a password as a client sent it.
pub(crate) fn prehash(password: &Password) -> ServiceResult<String> {
    match password {
        Password::Plain(plain) => Ok(password_digest(plain)),
        Password::Digest { digest, algorithm } => {
            if algorithm != "sha-256" {
                return Err(ServiceError::invalid(
                    "error-invalid-password-hash-algorithm",
                    "Invalid password hash algorithm. Only 'sha-256' is allowed.",
                ));
            }
            Ok(digest.to_lowercase())
        }
    }
}

/// bcrypt is slow by design: run it off the async runtime.
pub(crate) async fn hash_password(plain: &str, cost: u32) -> ServiceResult<String> {
    let digest = password_digest(plain);
    tokio::task::spawn_blocking(move || bcrypt::hash(digest, cost))
        .await
        .map_err(|e| ServiceError::internal(format!("bcrypt task: {e}")))?
        .map_err(|e| ServiceError::internal(format!("bcrypt: {e}")))
}

pub(crate) async fn verify_password(prehashed: String, stored: &str) -> ServiceResult<bool> {
    let stored = stored.to_owned();
    tokio::task::spawn_blocking(move || bcrypt::verify(prehashed, &stored).unwrap_or(false))
        .await
        .map_err(|e| ServiceError::internal(format!("bcrypt task: {e}")))
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rocket_chat_formats() {
        assert_eq!(
            password_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_token("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }

    #[tokio::test]
    async fn bcrypt_of_digest_verifies_both_forms() {
        let stored = hash_password("s3cret", 4).await.unwrap_or_default();
        let plain = prehash(&Password::Plain("s3cret".into())).unwrap_or_default();
        assert!(verify_password(plain, &stored).await.unwrap_or(false));
        let upper = Password::Digest {
            digest: password_digest("s3cret").to_uppercase(),
            algorithm: "sha-256".into(),
        };
        assert!(verify_password(prehash(&upper).unwrap_or_default(), &stored).await.unwrap_or(false));
        let wrong = prehash(&Password::Plain("nope".into())).unwrap_or_default();
        assert!(!verify_password(wrong, &stored).await.unwrap_or(true));
        let md5 = Password::Digest { digest: "x".into(), algorithm: "md5".into() };
        assert!(prehash(&md5).is_err());
    }
}
