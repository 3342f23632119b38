//! HTTP endpoints besides the UI: the token API for app servers, the legacy pychattr routes,
//! and the health check. Secret-bearing endpoints send no CORS headers at all: they are for
//! servers, never for browsers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use app::protocol::names::{fold, validate_nick};
use app::protocol::{ErrorCode, ProtocolError, ServerEvent};

use crate::auth::token::{unix_millis, TokenSigner};
use crate::auth::{bearer, secret_matches};
use crate::session::token_user;
use crate::store::StoreError;
use crate::{AppState, Inner};

/// An HTTP error: a status and a client-safe [`ProtocolError`], rendered as the same JSON
/// `error` object the WebSocket uses. Internal details go to the log, never to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: ProtocolError,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, error: ProtocolError::new(code, message) }
    }

    fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error")
    }

    /// A store error: 503 `unavailable` once the store has failed, 500 `internal` otherwise.
    fn store(context: &str, e: StoreError) -> Self {
        tracing::error!(error = %e, "{context}");
        let error = e.to_protocol("internal error");
        let status = if error.code == ErrorCode::Unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self { status, error }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ServerEvent::from(self.error))).into_response()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    user: String,
    /// Optional shorter lifetime, in seconds; the configured TTL is the maximum.
    #[serde(default)]
    ttl_secs: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub expires_at: String,
}

/// Checks the shared secret, in constant time.
fn check_secret(app: &Inner, presented: Option<&str>) -> Result<(), ApiError> {
    let Some(secret) = app.secret.as_deref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TokensDisabled,
            "token login is disabled: set CHATTR_SHARED_SECRET on the chat server",
        ));
    };
    match presented {
        Some(p) if secret_matches(secret, p) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AccessDenied,
            "wrong or missing shared secret",
        )),
    }
}

/// The checks every server-to-server JSON endpoint starts with: the shared secret in the
/// `Authorization` header, then a body that parses as the request.
fn app_request<T: DeserializeOwned>(app: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    check_secret(app, bearer(auth))?;
    let bad = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadArguments,
            format!("the body must be JSON like {{\"user\":\"alice\"}}: {e}"),
        )
    };
    // An object, not just anything serde could map onto the struct (such as `["alice"]`);
    // parsed straight into the request, so a key given twice is refused, not silently merged.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadArguments,
            "the body must be a JSON object like {\"user\":\"alice\"}",
        ));
    }
    serde_json::from_slice(body).map_err(bad)
}

/// Refuses a new app user whose name looks like another app user's: the two would be
/// indistinguishable in the chat, and the nick can only belong to one of them.
fn refuse_lookalike(app: &Inner, user: &str) -> Result<(), ApiError> {
    match app.hub.app_user_lookalike(user) {
        Some(other) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NickReserved,
            format!("{user} looks like the existing user {other}; pick a name that looks different"),
        )),
        None => Ok(()),
    }
}

/// Issues a token for `user` and reserves the nick for that account.
async fn issue(app: &Inner, user: &str, ttl: Duration) -> Result<(String, SystemTime), ApiError> {
    validate_nick(user).map_err(|error| ApiError { status: StatusCode::BAD_REQUEST, error })?;
    refuse_lookalike(app, user)?;
    let signer =
        app.signer.as_ref().ok_or_else(|| ApiError::internal("no signer", "secret without signer"))?;
    let revoked_before = app
        .store
        .add_token_user(&fold(user), user)
        .await
        .map_err(|e| ApiError::store("storing token user failed", e))?;
    app.hub.reserve_nick(user);
    // A token must read as issued after the user's last revocation, even within its millisecond.
    let mut now = SystemTime::now();
    if let Some(at) = revoked_before.and_then(|ms| u64::try_from(ms).ok()) {
        now = now.max(UNIX_EPOCH + Duration::from_millis(at + 1));
    }
    let issued = signer.issue(user, ttl, now);
    Ok((issued.token, issued.expires_at))
}

/// # POST /api/token
/// `Authorization: Bearer <shared secret>`, body `{"user":"alice"}` (optionally `"ttl_secs"`)
/// → `{"token":"…","expires_at":"2026-01-01T00:00:00Z"}`.
pub async fn post_token(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    let app = &app.inner;
    let request: TokenRequest = app_request(app, &headers, &body)?;
    let ttl =
        request.ttl_secs.map_or(app.config.token_ttl, |s| Duration::from_secs(s).min(app.config.token_ttl));
    if ttl.is_zero() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadArguments,
            "ttl_secs must be positive",
        ));
    }
    let (token, expires_at) = issue(app, &request.user, ttl).await?;
    Ok(Json(TokenResponse { token, expires_at: humantime::format_rfc3339_seconds(expires_at).to_string() }))
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.into()).into_response()
}

/// Legacy tokens an app picks itself: long enough to be unguessable, URL-safe.
fn valid_legacy_token(token: &str) -> bool {
    (16..=256).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

/// # GET /gettoken/{user}/{token}/{secret}
/// The pychattr route: `nil` as the token generates one; any other token is bound to the user
/// and stored (it survives restarts). Answers the token as plain text, or
/// `Error: Access Denied` (403) for a wrong secret.
pub async fn get_legacy_token(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((user, token, secret))) = path else {
        return plain(StatusCode::BAD_REQUEST, "Error: the path does not decode to UTF-8 text");
    };
    let app = &app.inner;
    match app.secret.as_deref() {
        Some(s) if secret_matches(s, &secret) => {}
        Some(_) => return plain(StatusCode::FORBIDDEN, "Error: Access Denied"),
        None => return plain(StatusCode::SERVICE_UNAVAILABLE, "Error: token login is disabled"),
    }
    if token == "nil" {
        return match issue(app, &user, app.config.token_ttl).await {
            Ok((token, _)) => plain(StatusCode::OK, token),
            Err(e) => plain(e.status, format!("Error: {}", e.error.message)),
        };
    }
    if !valid_legacy_token(&token) || TokenSigner::is_signed_token(&token) {
        return plain(
            StatusCode::BAD_REQUEST,
            "Error: a token is 16 to 256 characters of A-Z a-z 0-9 - _ . ~",
        );
    }
    if let Err(e) = validate_nick(&user) {
        return plain(StatusCode::BAD_REQUEST, format!("Error: {}", e.message));
    }
    if let Err(e) = refuse_lookalike(app, &user) {
        return plain(e.status, format!("Error: {}", e.error.message));
    }
    let stored = async {
        let folded = fold(&user);
        app.store.add_token_user(&folded, &user).await?;
        app.store.bind_legacy_token(&token, &user, &folded).await
    };
    match stored.await {
        Ok(()) => {
            app.hub.reserve_nick(&user);
            plain(StatusCode::OK, token)
        }
        Err(e) => {
            let e = ApiError::store("storing a legacy token failed", e);
            plain(e.status, format!("Error: {}", e.error.message))
        }
    }
}

/// # GET /getuser/{token}
/// The user a token logs in as, as plain text; `Not Found` (404) for unknown, expired, revoked
/// or forged tokens.
pub async fn get_legacy_user(
    State(app): State<AppState>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let app = &app.inner;
    let Ok(Path(token)) = token else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    if !TokenSigner::is_signed_token(&token) && !valid_legacy_token(&token) {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    match token_user(app, &token).await {
        Ok(user) => plain(StatusCode::OK, user),
        Err(e) if matches!(e.code, ErrorCode::Internal | ErrorCode::Unavailable) => {
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Error: internal error")
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "Not Found"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    user: String,
}

#[derive(Debug, Serialize)]
pub struct RevokeResponse {
    pub user: String,
    pub revoked_at: String,
    pub sessions_closed: usize,
}

/// # POST /api/revoke
/// `Authorization: Bearer <shared secret>`, body `{"user":"alice"}`: every token issued to the
/// user until now stops working (signed tokens are refused, legacy tokens deleted) and the
/// user's open sessions are closed with `token_revoked`. Tokens issued afterwards work.
/// → `{"user":"alice","revoked_at":"2026-01-01T00:00:00.123Z","sessions_closed":1}`.
pub async fn post_revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RevokeResponse>, ApiError> {
    let app = &app.inner;
    let request: RevokeRequest = app_request(app, &headers, &body)?;
    validate_nick(&request.user).map_err(|error| ApiError { status: StatusCode::BAD_REQUEST, error })?;
    let now = SystemTime::now();
    let at_ms = i64::try_from(unix_millis(now)).unwrap_or(i64::MAX);
    app.store
        .revoke_tokens(&fold(&request.user), at_ms)
        .await
        .map_err(|e| ApiError::store("revoking tokens failed", e))?;
    let sessions_closed = app.hub.revoke_app_user(&request.user);
    tracing::info!(user = %request.user, sessions_closed, "tokens revoked");
    Ok(Json(RevokeResponse {
        user: request.user,
        revoked_at: humantime::format_rfc3339_millis(now).to_string(),
        sessions_closed,
    }))
}

/// # GET /healthz
/// 200 `ok` when the store answers and has not failed a write; 503 otherwise (`store failed`
/// once a write failed: the server acknowledges nothing more and is about to exit).
pub async fn healthz(State(app): State<AppState>) -> Response {
    if app.inner.store.failure().is_some() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store failed: acknowledging nothing; restarting")
    } else if app.inner.store.healthy().await {
        plain(StatusCode::OK, "ok")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    }
}

/// Answers 408, and closes the connection, when a request has not produced its response
/// within `limit`, reading its body included: a body trickled in byte by byte cannot hold a
/// connection. A WebSocket upgrade answers at once, so sessions are not subject to it.
pub async fn request_timeout(
    State(limit): State<Option<Duration>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(limit) = limit else {
        return next.run(request).await;
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response =
                ApiError::new(StatusCode::REQUEST_TIMEOUT, ErrorCode::Timeout, "the request took too long")
                    .into_response();
            // What is left of the body is not worth reading.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            response
        }
    }
}
