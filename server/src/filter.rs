//! The app's message filter: before a user's message is stored and delivered, the app may
//! accept it, reject it (the sender sees the app's reason) or rewrite it. The request is a
//! JSON `POST` signed like a webhook; the answer is `{"action":"accept"}`,
//! `{"action":"reject","reason":"…"}` or `{"action":"rewrite","text":"…"}`. No answer within
//! the timeout, or any other answer, is a failure, which sends the message (fail open) or
//! refuses it with `busy` (fail closed), as configured.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use app::protocol::{ChatMessage, ErrorCode, ProtocolError};

use crate::auth::TokenAuth;
use crate::webhooks::{app_client, signature};

/// What the filter decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    Reject(String),
    Rewrite(String),
}

#[derive(Serialize)]
struct Request<'a> {
    from: &'a str,
    target: &'a str,
    text: &'a str,
    action: bool,
    private: bool,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Answer {
    Accept,
    Reject {
        #[serde(default)]
        reason: Option<String>,
    },
    Rewrite {
        text: String,
    },
}

pub(crate) struct MessageFilter {
    url: String,
    client: reqwest::Client,
    auth: Arc<TokenAuth>,
    fail_open: bool,
}

impl MessageFilter {
    pub(crate) fn new(url: &str, auth: Arc<TokenAuth>, timeout: Duration, fail_open: bool) -> Self {
        Self { url: url.to_owned(), client: app_client(timeout), auth, fail_open }
    }

    /// The verdict on `message` (`private`: sent to a nick); a refusal when the filter failed
    /// and the server fails closed.
    pub(crate) async fn check(&self, message: &ChatMessage, private: bool) -> Result<Verdict, ProtocolError> {
        match self.ask(message, private).await {
            Ok(verdict) => Ok(verdict),
            Err(why) => {
                tracing::warn!(url = %self.url, error = %why, fail_open = self.fail_open, "the message filter failed");
                if self.fail_open {
                    Ok(Verdict::Accept)
                } else {
                    Err(ProtocolError::new(ErrorCode::Busy, "the message filter did not answer; try again"))
                }
            }
        }
    }

    async fn ask(&self, message: &ChatMessage, private: bool) -> Result<Verdict, String> {
        let request = Request {
            from: &message.from,
            target: &message.target,
            text: &message.text,
            action: message.action,
            private,
        };
        let body = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("chattr-signature", signature(&self.auth, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let answer: Answer =
            response.json().await.map_err(|e| format!("an answer that is no verdict: {e}"))?;
        Ok(match answer {
            Answer::Accept => Verdict::Accept,
            Answer::Reject { reason } => {
                // Shown to the sender as it is, so kept short and free of control characters.
                let reason: String =
                    reason.unwrap_or_default().chars().filter(|c| !c.is_control()).take(300).collect();
                let reason =
                    if reason.trim().is_empty() { "the message was refused".to_owned() } else { reason };
                Verdict::Reject(reason)
            }
            Answer::Rewrite { text } => Verdict::Rewrite(text),
        })
    }
}
