//! Tokens an app signs itself, with no round trip to the chat server: JSON Web Tokens, HMAC
//! SHA-256 (`HS256`) with the shared secret, checked by the `jsonwebtoken` crate with the
//! algorithm pinned. `sub` is the user; `exp` is required and may lie at most the token
//! lifetime (`CHATTR_TOKEN_TTL`) ahead; `iat`, if there, may not lie ahead (a revocation
//! refuses the tokens signed before it: one dated later would escape it); `nick` optionally
//! names the nick to chat as; `aud` and `iss` must match when the server is configured with
//! them. Clocks may differ by [`LEEWAY`].

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::token::unix_secs;
use super::AuthError;

/// How far apart the app's clock and the server's may be.
pub(crate) const LEEWAY: Duration = Duration::from_secs(30);

/// What a JWT must say.
#[derive(Debug, Clone, Default)]
pub(crate) struct JwtRules {
    /// The `aud` the token must carry, when set.
    pub(crate) audience: Option<String>,
    /// The `iss` the token must carry, when set.
    pub(crate) issuer: Option<String>,
    /// How far ahead `exp` may lie.
    pub(crate) max_ttl: Duration,
}

/// The claims Chattr reads.
#[derive(Debug, Clone)]
pub(crate) struct AppClaims {
    /// The app's user.
    pub(crate) sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub(crate) exp: u64,
    /// When it was signed, seconds since the Unix epoch; a revocation refuses tokens signed
    /// before it.
    pub(crate) iat: Option<u64>,
    /// The nick to chat as, when not the user's name.
    pub(crate) nick: Option<String>,
}

/// The claims as a token has them: `sub` and `exp` may be missing, which is refused as such
/// rather than as a malformed token.
#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    nick: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// The JWT's header, if `token` has a JWT's shape: three dot-separated parts, the first a
/// base64url JSON object naming an `alg`.
fn header(token: &str) -> Option<Header> {
    let mut parts = token.split('.');
    let (first, _, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).ok()?).ok()
}

/// Whether `token` is a JWT (as opposed to one of the server's own tokens or a legacy one).
pub(crate) fn is_jwt(token: &str) -> bool {
    header(token).is_some()
}

/// Checks a JWT against `key` and `rules` at `now`.
pub(crate) fn verify(
    token: &str,
    key: &DecodingKey,
    rules: &JwtRules,
    now: SystemTime,
) -> Result<AppClaims, AuthError> {
    // Refused before anything else looks at it: `none`, and any algorithm but the one pinned,
    // whatever the signature says.
    if header(token).map(|h| h.alg).as_deref() != Some("HS256") {
        return Err(AuthError::WrongAlgorithm);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY.as_secs();
    let mut required = vec!["exp", "sub"];
    required.extend(rules.audience.as_ref().map(|_| "aud"));
    required.extend(rules.issuer.as_ref().map(|_| "iss"));
    validation.set_required_spec_claims(&required);
    match &rules.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    if let Some(iss) = &rules.issuer {
        validation.set_issuer(&[iss]);
    }
    let payload = jsonwebtoken::decode::<Payload>(token, key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim,
                _ => AuthError::Malformed,
            }
        })?
        .claims;
    let (Some(sub), Some(exp)) = (payload.sub, payload.exp) else {
        return Err(AuthError::MissingClaim);
    };
    let claims = AppClaims { sub, exp, iat: payload.iat, nick: payload.nick };
    // jsonwebtoken's own check (validated above) compares with its clock; this one is ours.
    let now = unix_secs(now);
    if claims.exp + LEEWAY.as_secs() <= now {
        return Err(AuthError::Expired);
    }
    if claims.exp > now + rules.max_ttl.as_secs() + LEEWAY.as_secs() {
        return Err(AuthError::TooLong);
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY.as_secs()) {
        return Err(AuthError::SignedAhead);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header as JwtHeader};
    use serde_json::{json, Value};

    const SECRET: &[u8] = b"the shared secret";

    fn now() -> u64 {
        unix_secs(SystemTime::now())
    }

    fn sign(claims: &Value) -> String {
        encode(&JwtHeader::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn check(token: &str, rules: &JwtRules) -> Result<AppClaims, AuthError> {
        verify(token, &DecodingKey::from_secret(SECRET), rules, SystemTime::now())
    }

    fn rules() -> JwtRules {
        JwtRules { max_ttl: Duration::from_secs(3600), ..JwtRules::default() }
    }

    /// A token with any header and payload, signed with HMAC-SHA256 over them.
    fn forge(header: &Value, claims: &Value) -> String {
        use hmac::Mac;
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let signed = format!("{}.{}", part(header), part(claims));
        let mut mac = super::super::hmac_sha256(SECRET);
        mac.update(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_well_formed_token_logs_in_with_its_nick() {
        let claims = check(&sign(&json!({"sub":"alice","exp":now() + 60,"nick":"ally"})), &rules()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.nick.as_deref()), ("alice", Some("ally")));
        assert!(is_jwt(&sign(&json!({"sub":"a","exp":1}))));
        assert!(!is_jwt("ct1.abc.def") && !is_jwt("a-legacy-token-0123456789"));
    }

    #[test]
    fn the_usual_pitfalls_are_refused() {
        let exp = now() + 60;
        let claims = json!({"sub":"alice","exp":exp});
        let refused = |token: &str| check(token, &rules()).unwrap_err();
        // alg none, with and without a signature; another HMAC; a swap to an asymmetric one.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#), {
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        });
        assert_eq!(refused(&none), AuthError::WrongAlgorithm);
        assert_eq!(refused(&forge(&json!({"alg":"none"}), &claims)), AuthError::WrongAlgorithm);
        assert_eq!(refused(&forge(&json!({"alg":"HS512"}), &claims)), AuthError::WrongAlgorithm);
        assert_eq!(refused(&forge(&json!({"alg":"RS256"}), &claims)), AuthError::WrongAlgorithm);
        // The right algorithm named by hand verifies: the forge is a faithful HS256.
        assert_eq!(check(&forge(&json!({"alg":"HS256"}), &claims), &rules()).unwrap().sub, "alice");
        // Another secret.
        let other = encode(&JwtHeader::default(), &claims, &EncodingKey::from_secret(b"another")).unwrap();
        assert_eq!(refused(&other), AuthError::BadSignature);
        // Missing or past expiry, missing subject, an expiry too far ahead.
        assert_eq!(refused(&sign(&json!({"sub":"alice"}))), AuthError::MissingClaim);
        assert_eq!(refused(&sign(&json!({"exp":exp}))), AuthError::MissingClaim);
        assert_eq!(refused(&sign(&json!({"sub":"alice","exp":now() - 31}))), AuthError::Expired);
        assert_eq!(refused(&sign(&json!({"sub":"alice","exp":now() + 3700}))), AuthError::TooLong);
        assert_eq!(refused(&sign(&json!({"sub":"alice","exp":"soon"}))), AuthError::Malformed);
        // Signed ahead of now, past the leeway: a revocation could not reach it.
        let ahead = json!({"sub":"alice","exp":now() + 3600,"iat":now() + 3000});
        assert_eq!(refused(&sign(&ahead)), AuthError::SignedAhead);
        // A tampered payload.
        let token = sign(&claims);
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let tampered =
            format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":9999999999}"#));
        assert_eq!(refused(&tampered), AuthError::BadSignature);
    }

    #[test]
    fn clocks_may_differ_by_the_leeway() {
        assert!(check(&sign(&json!({"sub":"alice","exp":now() - 10})), &rules()).is_ok());
        assert!(check(&sign(&json!({"sub":"alice","exp":now() + 3610})), &rules()).is_ok());
        assert!(check(&sign(&json!({"sub":"alice","exp":now() + 60,"iat":now() + 20})), &rules()).is_ok());
    }

    #[test]
    fn audience_and_issuer_are_checked_when_configured() {
        let strict = JwtRules { audience: Some("chat".into()), issuer: Some("shop".into()), ..rules() };
        let exp = now() + 60;
        let ok = sign(&json!({"sub":"a","exp":exp,"aud":"chat","iss":"shop"}));
        assert!(check(&ok, &strict).is_ok());
        let refused = |claims: Value| check(&sign(&claims), &strict).unwrap_err();
        assert_eq!(
            refused(json!({"sub":"a","exp":exp,"aud":"other","iss":"shop"})),
            AuthError::WrongAudience
        );
        assert_eq!(refused(json!({"sub":"a","exp":exp,"iss":"shop"})), AuthError::MissingClaim);
        assert_eq!(refused(json!({"sub":"a","exp":exp,"aud":"chat","iss":"else"})), AuthError::WrongIssuer);
        // Unconfigured, they are not looked at.
        assert!(check(&sign(&json!({"sub":"a","exp":exp,"aud":"any"})), &rules()).is_ok());
    }
}
