//! Logging in: a token from an app, a guest's nick, or the secret of a session to resume.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use app::protocol::{ClientFrame, ErrorCode, ProtocolError};

use super::{ChatService, Result, TokenUser};
use crate::chat::{Account, Attached, Identity, Outbox, Resumed};

/// What an `auth` frame asks for: at most one of a token and a nick, and a resume secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    token: Option<String>,
    nick: Option<String>,
    resume: Option<String>,
}

impl Auth {
    /// A guest's login with a nick.
    pub fn nick(nick: impl Into<String>) -> Self {
        Self { token: None, nick: Some(nick.into()), resume: None }
    }

    /// A login with a token an app issued.
    pub fn token(token: impl Into<String>) -> Self {
        Self { token: Some(token.into()), nick: None, resume: None }
    }

    /// Resumes the session `secret` belongs to, falling back to this login when there is none.
    pub fn resuming(self, secret: impl Into<String>) -> Self {
        Self { resume: Some(secret.into()), ..self }
    }

    /// The login an `auth` frame asks for; any other frame is refused.
    pub fn from_frame(frame: ClientFrame) -> Result<Self> {
        match frame {
            ClientFrame::Auth { token: Some(_), nick: Some(_), .. } => {
                Err(ProtocolError::new(ErrorCode::BadArguments, "auth takes either a token or a nick"))
            }
            ClientFrame::Auth { token: None, nick: None, resume: None } => Err(ProtocolError::new(
                ErrorCode::BadArguments,
                "auth takes a token, a nick or a resume secret",
            )),
            ClientFrame::Auth { token, nick, resume } => Ok(Self { token, nick, resume }),
            _ => Err(ProtocolError::new(ErrorCode::NotAuthenticated, "the first frame must be auth")),
        }
    }
}

/// How a logged-in connection came to be.
pub enum Login {
    /// A new session; its `welcome` is queued on the outbox.
    Fresh(Attached),
    /// A held or still connected session, taken over. Its `welcome` goes out first, then
    /// whatever the held session had queued.
    Resumed(Box<Resumed>),
}

/// Logins since the start, by kind, and refusals by error code (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct LoginCounts {
    token: AtomicU64,
    guest: AtomicU64,
    resumed: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl LoginCounts {
    fn count(&self, by_token: bool, result: &Result<Login>) {
        let counter = match result {
            Ok(Login::Resumed(_)) => &self.resumed,
            Ok(Login::Fresh(_)) if by_token => &self.token,
            Ok(Login::Fresh(_)) => &self.guest,
            Err(e) => {
                *self
                    .refused
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(e.code.as_str())
                    .or_default() += 1;
                return;
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Logins by kind: `token`, `guest`, `resume`.
    pub(crate) fn by_kind(&self) -> [(&'static str, u64); 3] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [("token", get(&self.token)), ("guest", get(&self.guest)), ("resume", get(&self.resumed))]
    }

    /// Refused logins by error code.
    pub(crate) fn refused(&self) -> Vec<(&'static str, u64)> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

impl ChatService {
    /// Logs a connection from `ip` in; events for it go to `outbox`.
    pub async fn login(&self, auth: Auth, outbox: &Outbox, ip: IpAddr) -> Result<Login> {
        let by_token = auth.token.is_some();
        let result = self.log_in(auth, outbox, ip).await;
        self.logins.count(by_token, &result);
        result
    }

    async fn log_in(&self, auth: Auth, outbox: &Outbox, ip: IpAddr) -> Result<Login> {
        if let Some(secret) = &auth.resume {
            let resumed = match &self.cluster {
                Some(cluster) => cluster.resume(secret, outbox.clone(), ip).await?,
                None => self.hub.resume(secret, outbox, ip)?,
            };
            if let Some(resumed) = resumed {
                return Ok(Login::Resumed(Box::new(resumed)));
            }
        }
        let identity = match auth {
            Auth { token: Some(token), .. } => {
                let TokenUser { user, nick } = self.token_user(&token).await?;
                Identity { nick: nick.unwrap_or_else(|| user.clone()), account: Some(Account::App(user)), ip }
            }
            Auth { nick: Some(nick), .. } => {
                if !self.config.guests {
                    return Err(ProtocolError::new(
                        ErrorCode::GuestsDisabled,
                        "this server only accepts logins from its apps",
                    ));
                }
                Identity { nick, account: None, ip }
            }
            Auth { .. } => {
                return Err(ProtocolError::new(
                    ErrorCode::ResumeFailed,
                    "that session is over; log in again with a token or a nick",
                ))
            }
        };
        match &self.cluster {
            Some(cluster) => cluster.connect(identity, outbox.clone()).await.map(Login::Fresh),
            None => self.hub.connect(identity, outbox.clone(), self.hub.fresh_session()).map(Login::Fresh),
        }
    }
}
