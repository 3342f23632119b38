//! Passwords and emails for Potato. Hashes are argon2id with OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane), computed on the blocking pool so they never stall the runtime.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use app::protocol::{ErrorCode, ProtocolError};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;
const MAX_EMAIL_BYTES: usize = 254;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Passwords are 8 to 128 characters.
pub fn check_password(password: &str) -> Result<(), ProtocolError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ProtocolError::new(
            ErrorCode::WeakPassword,
            format!("a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// An email must look like `name@domain.tld`: one `@`, no spaces or control characters, a dot
/// in the domain. Whether it exists is not checked.
pub fn check_email(email: &str) -> Result<(), ProtocolError> {
    let bad = || ProtocolError::new(ErrorCode::InvalidEmail, "an email address looks like name@example.com");
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let labels_ok = domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty() || domain.contains('@') || !domain.contains('.') || !labels_ok {
        return Err(bad());
    }
    Ok(())
}

fn internal(what: &str) -> ProtocolError {
    tracing::error!("password hashing failed: {what}");
    ProtocolError::new(ErrorCode::Internal, "the password could not be processed")
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub async fn hash(password: String) -> Result<String, ProtocolError> {
    tokio::task::spawn_blocking(move || {
        let salt =
            SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| internal(&e.to_string()))?;
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| internal(&e.to_string()))
    })
    .await
    .map_err(|e| internal(&e.to_string()))?
}

/// A hash of a random password, verified against when an account does not exist, so an
/// unknown account takes as long to refuse as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode as a salt");
        let password = rand::random::<[u8; 16]>();
        argon2().hash_password(&password, &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// Whether `password` matches `hash`; with no hash, it checks against a decoy and says no.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| decoy().to_owned());
        let matches =
            PasswordHash::new(&hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok());
        real && matches
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse".into(), Some(h.clone())).await);
        assert!(!verify("correct horse".into(), None).await);
        assert_ne!(hash("correct horse".into()).await.unwrap(), h, "salts differ");
    }

    #[test]
    fn emails_and_passwords_are_checked_for_form() {
        for ok in ["a@b.example", "first.last+tag@mail.example.org"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@@b.example",
            "a b@c.example",
            "a@.example",
            "a@b..c",
            "a@-b.example",
        ] {
            assert_eq!(check_email(bad).unwrap_err().code, ErrorCode::InvalidEmail, "{bad}");
        }
        assert!(check_password("12345678").is_ok());
        assert_eq!(check_password("1234567").unwrap_err().code, ErrorCode::WeakPassword);
        assert_eq!(check_password(&"x".repeat(129)).unwrap_err().code, ErrorCode::WeakPassword);
    }
}
