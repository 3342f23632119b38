//! Who may do what: login tokens (the server's own, [`token`], and those an app signs,
//! [`jwt`]), the shared-secret check for app servers, and the cloaks that hide users'
//! addresses from each other.

pub(crate) mod jwt;
pub(crate) mod token;

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use app::protocol::{ErrorCode, ProtocolError};

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not known")]
    Unknown,
    #[error("only HS256 tokens are accepted")]
    WrongAlgorithm,
    #[error("the token lacks a claim it needs (sub, exp, and aud or iss when the server asks for them)")]
    MissingClaim,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token comes from another issuer")]
    WrongIssuer,
    #[error("the token's exp is further ahead than the server's token lifetime")]
    TooLong,
    #[error("the token's iat is later than now (clocks may differ by 30 s)")]
    SignedAhead,
}

impl From<AuthError> for ProtocolError {
    fn from(e: AuthError) -> Self {
        let code = if e == AuthError::Expired { ErrorCode::TokenExpired } else { ErrorCode::AuthFailed };
        ProtocolError::new(code, e.to_string())
    }
}

/// Compares a presented secret with the configured one in constant time. Both sides are
/// hashed first so that neither their contents nor their lengths show in the timing.
pub(crate) fn secret_matches(configured: &str, presented: &str) -> bool {
    let a = Sha256::digest(configured.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.ct_eq(&b).into()
}

/// HMAC-SHA256 keyed with `key`.
#[allow(clippy::expect_used, reason = "HMAC takes keys of any length: new_from_slice cannot fail for it")]
pub(crate) fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    Hmac::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Token login, on a server with a shared secret: the secret app servers present and the
/// signer of the tokens the server issues, which is derived from it (so the two cannot
/// disagree, and rotating the secret revokes every token).
pub struct TokenAuth {
    secret: Secret,
    signer: token::TokenSigner,
    /// Checks the JWTs apps sign with the secret.
    jwt_key: jsonwebtoken::DecodingKey,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAuth(<redacted>)")
    }
}

/// A secret that does not show in logs.
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl TokenAuth {
    /// Token login with `secret`; none without one (an empty secret is none).
    pub fn new(secret: Option<&str>) -> Option<Self> {
        let secret = secret.filter(|s| !s.is_empty())?;
        Some(Self {
            secret: Secret(secret.to_owned()),
            signer: token::TokenSigner::from_secret(secret),
            jwt_key: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        })
    }

    /// HMAC-SHA256 of `data` keyed with the shared secret itself (what webhook receivers check).
    pub(crate) fn sign(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = hmac_sha256(self.secret.0.as_bytes());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `presented` is the shared secret (in constant time).
    pub fn secret_matches(&self, presented: &str) -> bool {
        secret_matches(&self.secret.0, presented)
    }

    pub(crate) fn signer(&self) -> &token::TokenSigner {
        &self.signer
    }

    /// Checks a JWT an app signed with the secret.
    pub(crate) fn verify_jwt(
        &self,
        token: &str,
        rules: &jwt::JwtRules,
        now: std::time::SystemTime,
    ) -> Result<jwt::AppClaims, AuthError> {
        jwt::verify(token, &self.jwt_key, rules, now)
    }
}

/// The secret in an `Authorization: Bearer <secret>` header value, if it has that form.
pub(crate) fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Hides IP addresses behind a keyed hash: the same address always gets the same cloak (so
/// bans on a cloak hold), and nobody without the key can recover the address.
#[derive(Clone)]
pub(crate) struct Cloaker {
    key: [u8; 32],
}

impl Cloaker {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The key itself (for a hash of it).
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn cloak(&self, ip: IpAddr) -> String {
        let mut mac = hmac_sha256(&self.key);
        mac.update(ip.to_string().as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.cloak")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_check_accepts_only_the_exact_secret() {
        assert!(secret_matches("s3cret", "s3cret"));
        assert!(!secret_matches("s3cret", "s3cre"));
        assert!(!secret_matches("s3cret", "s3cret "));
        assert!(!secret_matches("s3cret", ""));
        assert!(!secret_matches("s3cret", "S3CRET"));
        assert!(!secret_matches("s3cret", "s3cretx"));
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearerabc")), None);
        assert_eq!(bearer(Some("")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn cloaks_are_stable_per_address_and_hide_it() {
        let c = Cloaker::new([7; 32]);
        let a: IpAddr = "203.0.113.9".parse().unwrap();
        let b: IpAddr = "203.0.113.10".parse().unwrap();
        assert_eq!(c.cloak(a), c.cloak(a));
        assert_ne!(c.cloak(a), c.cloak(b));
        assert!(!c.cloak(a).contains("203"));
        assert_ne!(Cloaker::new([8; 32]).cloak(a), c.cloak(a));
    }
}
