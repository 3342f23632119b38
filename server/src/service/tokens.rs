//! Login tokens for apps: issued to an app's server (which hands them to its user's browser),
//! bound by the app itself (legacy tokens), revoked, and resolved to the user a token logs in
//! as. Every token user's nick is reserved for them from the first token on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::protocol::names::{fold, validate_nick};
use app::protocol::{ErrorCode, ProtocolError};

use super::{ChatService, Result};
use crate::auth::jwt::{self, JwtRules};
use crate::auth::token::{unix_millis, TokenSigner};
use crate::auth::{AuthError, TokenAuth};
use crate::chat::Call;
use crate::store::StoreError;

/// A freshly issued token and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: SystemTime,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy)]
pub struct Revoked {
    /// Tokens issued up to this instant no longer log in.
    pub at: SystemTime,
    /// The user's sessions it closed.
    pub sessions_closed: usize,
}

/// Who a token logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// The app's user: the account `app:<user>`.
    pub user: String,
    /// The nick to chat as, when the token names one; otherwise the user's name.
    pub nick: Option<String>,
}

/// Legacy tokens an app picks itself: long enough to be unguessable, URL-safe.
pub fn valid_legacy_token(token: &str) -> bool {
    (16..=256).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

fn lookup_failed(e: StoreError) -> ProtocolError {
    tracing::error!(error = %e, "token lookup failed");
    ProtocolError::new(ErrorCode::Internal, "login is unavailable right now")
}

fn store_error(context: &str, e: StoreError) -> ProtocolError {
    tracing::error!(error = %e, "{context}");
    e.to_protocol("internal error")
}

impl ChatService {
    /// Token login, when the server has a shared secret.
    pub fn tokens(&self) -> Option<&TokenAuth> {
        self.tokens.as_deref()
    }

    fn signer(&self) -> Result<&TokenSigner> {
        self.tokens.as_deref().map(TokenAuth::signer).ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::TokensDisabled,
                "token login is disabled: set CHATTR_SHARED_SECRET on the chat server",
            )
        })
    }

    /// Refuses a new app user whose name looks like another app user's: the two would be
    /// indistinguishable in the chat, and the nick can only belong to one of them.
    fn refuse_lookalike(&self, user: &str) -> Result<()> {
        match self.hub.app_user_lookalike(user) {
            Some(other) => Err(ProtocolError::new(
                ErrorCode::NickReserved,
                format!("{user} looks like the existing user {other}; pick a name that looks different"),
            )),
            None => Ok(()),
        }
    }

    /// Issues a token for `user`, valid for `ttl` (at most the configured lifetime), and
    /// reserves the nick for that account.
    pub async fn issue_token(&self, user: &str, ttl: Option<Duration>) -> Result<IssuedToken> {
        let signer = self.signer()?;
        let ttl = ttl.map_or(self.config.token_ttl, |t| t.min(self.config.token_ttl));
        validate_nick(user)?;
        self.refuse_lookalike(user)?;
        let revoked_before = self
            .store
            .add_token_user(&fold(user), user)
            .await
            .map_err(|e| store_error("storing token user failed", e))?;
        self.change::<()>(Call::ReserveNick { user: user.to_owned() }).await?;
        // A token must read as issued after the user's last revocation, even within its millisecond.
        let mut now = SystemTime::now();
        if let Some(at) = revoked_before.and_then(|ms| u64::try_from(ms).ok()) {
            now = now.max(UNIX_EPOCH + Duration::from_millis(at + 1));
        }
        let issued = signer.issue(user, ttl, now);
        Ok(IssuedToken { token: issued.token, expires_at: issued.expires_at })
    }

    /// Binds a token the app chose to `user` (pychattr's `/gettoken`); it survives restarts
    /// until the user's tokens are revoked.
    pub async fn bind_legacy_token(&self, user: &str, token: &str) -> Result<()> {
        self.signer()?;
        if !valid_legacy_token(token) || TokenSigner::is_signed_token(token) {
            return Err(ProtocolError::new(
                ErrorCode::BadArguments,
                "a token is 16 to 256 characters of A-Z a-z 0-9 - _ . ~",
            ));
        }
        validate_nick(user)?;
        self.refuse_lookalike(user)?;
        let folded = fold(user);
        let stored = async {
            self.store.add_token_user(&folded, user).await?;
            self.store.bind_legacy_token(token, user, &folded).await
        };
        stored.await.map_err(|e| store_error("storing a legacy token failed", e))?;
        self.change::<()>(Call::ReserveNick { user: user.to_owned() }).await?;
        Ok(())
    }

    /// Every token issued to `user` until now stops working (signed tokens are refused from
    /// now on, legacy tokens deleted) and the user's sessions are closed with `token_revoked`.
    pub async fn revoke_tokens(&self, user: &str) -> Result<Revoked> {
        self.signer()?;
        validate_nick(user)?;
        let at = SystemTime::now();
        let at_ms = i64::try_from(unix_millis(at)).unwrap_or(i64::MAX);
        self.store
            .revoke_tokens(&fold(user), at_ms)
            .await
            .map_err(|e| store_error("revoking tokens failed", e))?;
        let sessions_closed: usize = self.change(Call::RevokeAppUser { user: user.to_owned() }).await?;
        tracing::info!(user, sessions_closed, "tokens revoked");
        Ok(Revoked { at, sessions_closed })
    }

    /// Who a token logs in: the server's own tokens and JWTs an app signed are verified and
    /// checked against the user's last revocation; others are looked up as legacy tokens (a
    /// revocation deletes those).
    pub async fn token_user(&self, token: &str) -> Result<TokenUser> {
        if jwt::is_jwt(token) {
            return self.jwt_user(token).await;
        }
        if TokenSigner::is_signed_token(token) {
            let signer = self.tokens.as_ref().ok_or(AuthError::BadSignature)?.signer();
            let claims = signer.verify(token, SystemTime::now())?;
            self.refuse_revoked(&claims.user, claims.issued_ms).await?;
            return Ok(TokenUser { user: claims.user, nick: None });
        }
        if !valid_legacy_token(token) {
            return Err(AuthError::Unknown.into());
        }
        match self.store.legacy_token_user(token).await.map_err(lookup_failed)? {
            Some(user) => {
                self.change::<()>(Call::ReserveNick { user: user.clone() }).await?;
                Ok(TokenUser { user, nick: None })
            }
            None => Err(AuthError::Unknown.into()),
        }
    }

    /// A JWT an app signed: valid, not revoked, naming a valid user (and nick). The first
    /// login of a user the server has not seen makes it an app user, as issuing a token would:
    /// its nick is reserved for it, unless it looks like another app user's.
    async fn jwt_user(&self, token: &str) -> Result<TokenUser> {
        let rules = JwtRules {
            audience: self.config.jwt_audience.clone().filter(|a| !a.is_empty()),
            issuer: self.config.jwt_issuer.clone().filter(|i| !i.is_empty()),
            max_ttl: self.config.token_ttl,
        };
        let auth = self.tokens.as_ref().ok_or(AuthError::BadSignature)?;
        let claims = auth.verify_jwt(token, &rules, SystemTime::now())?;
        validate_nick(&claims.sub)?;
        if let Some(nick) = &claims.nick {
            validate_nick(nick)?;
        }
        // Without `iat`, the token may have been signed as early as its lifetime allows.
        let signed_secs = claims.iat.unwrap_or_else(|| claims.exp.saturating_sub(rules.max_ttl.as_secs()));
        self.refuse_revoked(&claims.sub, signed_secs.saturating_mul(1000)).await?;
        self.refuse_lookalike(&claims.sub)?;
        // Past the look-alike check, a reservation of the name can only be this user's own.
        if !self.hub.app_owns(&claims.sub) {
            self.store.add_token_user(&fold(&claims.sub), &claims.sub).await.map_err(lookup_failed)?;
            self.change::<()>(Call::ReserveNick { user: claims.sub.clone() }).await?;
        }
        Ok(TokenUser { user: claims.sub, nick: claims.nick })
    }

    /// Refuses a token issued (at `issued_ms`) no later than the user's last revocation.
    async fn refuse_revoked(&self, user: &str, issued_ms: u64) -> Result<()> {
        let revoked_before = self.store.tokens_revoked_before(&fold(user)).await.map_err(lookup_failed)?;
        if revoked_before.is_some_and(|at| i64::try_from(issued_ms).unwrap_or(i64::MAX) <= at) {
            return Err(ProtocolError::new(ErrorCode::TokenRevoked, "this token was revoked by the app"));
        }
        Ok(())
    }
}
