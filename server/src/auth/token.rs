//! Login tokens: `ct1.<payload>.<signature>`, where the payload is base64url JSON naming the
//! user, when the token was issued and when it expires, and the signature is HMAC-SHA256 over
//! `ct1.<payload>` with a key derived from the shared secret. Verification is constant-time
//! (`Mac::verify_slice`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{hmac_sha256, AuthError};

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "ct1.";

/// What a token says once its signature checks out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The user the token logs in as.
    #[serde(rename = "u")]
    pub user: String,
    /// Expiry, seconds since the Unix epoch.
    #[serde(rename = "e")]
    pub expires: u64,
    /// When it was issued, milliseconds since the Unix epoch: a revocation of the user's
    /// tokens refuses every token issued at or before the revocation.
    #[serde(rename = "i", default)]
    pub issued_ms: u64,
    /// Random, so two tokens for one user and second differ.
    #[serde(rename = "n")]
    nonce: u64,
}

/// A freshly issued token and when it expires.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub token: String,
    pub expires_at: SystemTime,
}

/// Issues and checks tokens with one key.
#[derive(Clone)]
pub(crate) struct TokenSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<redacted>)")
    }
}

impl TokenSigner {
    /// A signer whose key is derived from the shared secret (so rotating the secret revokes
    /// every token issued under the old one).
    pub(crate) fn from_secret(secret: &str) -> Self {
        let mut mac = hmac_sha256(secret.as_bytes());
        mac.update(b"chattr token key v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self) -> HmacSha256 {
        hmac_sha256(&self.key)
    }

    /// A token for `user`, valid for `ttl` from `now`.
    #[allow(clippy::expect_used, reason = "claims are strings and numbers: they always serialize")]
    pub(crate) fn issue(&self, user: &str, ttl: Duration, now: SystemTime) -> Issued {
        let expires_at = now + ttl;
        let claims = Claims {
            user: user.to_owned(),
            expires: unix_secs(expires_at),
            issued_ms: unix_millis(now),
            nonce: rand::random(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims always serialize"));
        let signed = format!("{PREFIX}{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Issued { token: format!("{signed}.{signature}"), expires_at }
    }

    /// Checks the signature (constant-time) and then the expiry.
    pub(crate) fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, AuthError> {
        let rest = token.strip_prefix(PREFIX).ok_or(AuthError::Malformed)?;
        let (payload, signature) = rest.split_once('.').ok_or(AuthError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..PREFIX.len() + payload.len()]);
        mac.verify_slice(&signature).map_err(|_| AuthError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
        if unix_secs(now) >= claims.expires {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }

    /// Whether `token` has this scheme's shape (signed tokens), as opposed to a legacy token
    /// that an app chose itself.
    pub(crate) fn is_signed_token(token: &str) -> bool {
        token.starts_with(PREFIX)
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::from_secret("correct horse battery staple")
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_token_verifies_as_its_user_until_it_expires() {
        let now = SystemTime::now();
        let issued = signer().issue("alice", HOUR, now);
        let claims = signer().verify(&issued.token, now).unwrap();
        assert_eq!(claims.user, "alice");
        assert_eq!(claims.issued_ms, unix_millis(now));
        assert_eq!(
            signer().verify(&issued.token, now + HOUR - Duration::from_secs(1)).unwrap().user,
            "alice"
        );
        assert_eq!(signer().verify(&issued.token, now + HOUR).unwrap_err(), AuthError::Expired);
    }

    #[test]
    fn any_flipped_character_is_refused() {
        let now = SystemTime::now();
        let token = signer().issue("alice", HOUR, now).token;
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(tampered) = String::from_utf8(bytes) else {
                continue;
            };
            if tampered == token {
                continue;
            }
            assert!(signer().verify(&tampered, now).is_err(), "flipped byte {i} accepted");
        }
    }

    #[test]
    fn a_token_from_another_secret_is_refused() {
        let now = SystemTime::now();
        let token = TokenSigner::from_secret("other").issue("alice", HOUR, now).token;
        assert_eq!(signer().verify(&token, now).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn a_forged_payload_for_another_user_is_refused() {
        let now = SystemTime::now();
        let token = signer().issue("alice", HOUR, now).token;
        let signature = token.rsplit('.').next().unwrap();
        let forged_claims = Claims {
            user: "bob".into(),
            expires: unix_secs(now + HOUR),
            issued_ms: unix_millis(now),
            nonce: 1,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let forged = format!("{PREFIX}{payload}.{signature}");
        assert_eq!(signer().verify(&forged, now).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let now = SystemTime::now();
        for t in
            ["", "ct1.", "ct1..", "ct1.abc", "ct1.abc.", "ct1..sig", "xx1.a.b", "ct1.!!!.???", "ct1.e30.AAAA"]
        {
            assert!(signer().verify(t, now).is_err(), "{t:?}");
        }
        // A correctly signed payload that is not JSON claims is still refused.
        let payload = URL_SAFE_NO_PAD.encode(b"not json");
        let mut mac = signer().mac();
        mac.update(format!("{PREFIX}{payload}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            signer().verify(&format!("{PREFIX}{payload}.{sig}"), now).unwrap_err(),
            AuthError::Malformed
        );
    }

    #[test]
    fn two_tokens_for_one_user_differ() {
        let now = SystemTime::now();
        assert_ne!(signer().issue("a", HOUR, now).token, signer().issue("a", HOUR, now).token);
    }
}
