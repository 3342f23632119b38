//! Login tokens for apps: issued to an app's server (which hands them to its user's browser),
//! bound by the app itself (legacy tokens), revoked, and resolved to the user a token logs in
//! as. Every token user's nick is reserved for them from the first token on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::protocol::names::{fold, validate_nick};
use app::protocol::{ErrorCode, ProtocolError};

use super::{ChatService, Result};
use crate::auth::token::{unix_millis, TokenSigner};
use crate::auth::{AuthError, TokenAuth};
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

/// Legacy tokens an app picks itself: long enough to be unguessable, URL-safe.
pub fn valid_legacy_token(token: &str) -> bool {
    (16..=256).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

fn store_error(context: &str, e: StoreError) -> ProtocolError {
    tracing::error!(error = %e, "{context}");
    e.to_protocol("internal error")
}

impl ChatService {
    /// Token login, when the server has a shared secret.
    pub fn tokens(&self) -> Option<&TokenAuth> {
        self.tokens.as_ref()
    }

    fn signer(&self) -> Result<&TokenSigner> {
        self.tokens.as_ref().map(TokenAuth::signer).ok_or_else(|| {
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
        if ttl.is_zero() {
            return Err(ProtocolError::new(ErrorCode::BadArguments, "ttl_secs must be positive"));
        }
        validate_nick(user)?;
        self.refuse_lookalike(user)?;
        let revoked_before = self
            .store
            .add_token_user(&fold(user), user)
            .await
            .map_err(|e| store_error("storing token user failed", e))?;
        self.hub.reserve_nick(user);
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
        self.hub.reserve_nick(user);
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
        let sessions_closed = self.hub.revoke_app_user(user);
        tracing::info!(user, sessions_closed, "tokens revoked");
        Ok(Revoked { at, sessions_closed })
    }

    /// The user a token logs in as: signed tokens are verified and checked against the user's
    /// last revocation; others are looked up as legacy tokens (a revocation deletes those).
    pub async fn token_user(&self, token: &str) -> Result<String> {
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "token lookup failed");
            ProtocolError::new(ErrorCode::Internal, "login is unavailable right now")
        };
        if TokenSigner::is_signed_token(token) {
            let signer = self.tokens.as_ref().ok_or(AuthError::BadSignature)?.signer();
            let claims = signer.verify(token, SystemTime::now())?;
            let revoked_before =
                self.store.tokens_revoked_before(&fold(&claims.user)).await.map_err(unavailable)?;
            if revoked_before.is_some_and(|at| i64::try_from(claims.issued_ms).unwrap_or(i64::MAX) <= at) {
                return Err(ProtocolError::new(ErrorCode::TokenRevoked, "this token was revoked by the app"));
            }
            return Ok(claims.user);
        }
        if !valid_legacy_token(token) {
            return Err(AuthError::Unknown.into());
        }
        match self.store.legacy_token_user(token).await.map_err(unavailable)? {
            Some(user) => {
                self.hub.reserve_nick(&user);
                Ok(user)
            }
            None => Err(AuthError::Unknown.into()),
        }
    }
}
