//! HTTP endpoints besides the UI: the token API for app servers, the legacy pychattr routes,
//! and the health check. Secret-bearing endpoints send no CORS headers at all: they are for
//! servers, never for browsers.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use app::protocol::names::validate_nick;
use app::protocol::{ChatMessage, ErrorCode, ProtocolError, ServerEvent};

use crate::auth::bearer;
use crate::auth::token::TokenSigner;
use crate::chat::APP_NAME;
use crate::service::{
    valid_legacy_token, ChannelMembers, ChannelOverview, ChannelSettings, CreatedChannel, Moderated, Presence,
};
use crate::{AppState, Inner};

/// An HTTP error: a status and a client-safe [`ProtocolError`], rendered as the same JSON
/// `error` object the WebSocket uses. Internal details go to the log, never to the client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: ProtocolError,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, error: ProtocolError::new(code, message) }
    }
}

/// A refusal from the chat service, with the HTTP status its code means.
impl From<ProtocolError> for ApiError {
    fn from(error: ProtocolError) -> Self {
        let status = match error.code {
            ErrorCode::AccessDenied => StatusCode::UNAUTHORIZED,
            ErrorCode::NoSuchNick
            | ErrorCode::NoSuchChannel
            | ErrorCode::NoSuchBan
            | ErrorCode::NoSuchAccount => StatusCode::NOT_FOUND,
            ErrorCode::NickReserved | ErrorCode::NickInUse | ErrorCode::ChannelRegistered => {
                StatusCode::CONFLICT
            }
            ErrorCode::TokensDisabled | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
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
pub(crate) struct TokenRequest {
    user: String,
    /// Optional shorter lifetime, in seconds; the configured TTL is the maximum.
    #[serde(default)]
    ttl_secs: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    pub token: String,
    pub expires_at: String,
}

/// Checks the shared secret, in constant time.
fn check_secret(app: &Inner, presented: Option<&str>) -> Result<(), ApiError> {
    let Some(tokens) = app.chat.tokens() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TokensDisabled,
            "token login is disabled: set CHATTR_SHARED_SECRET on the chat server",
        ));
    };
    match presented {
        Some(p) if tokens.secret_matches(p) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AccessDenied,
            "wrong or missing shared secret",
        )),
    }
}

/// A user name as the request gives it: a bad one is the request's fault (400), whatever its
/// code (a service's name is `nick_reserved`, as a look-alike of an existing user is, but that
/// one is a conflict: 409).
fn check_user(user: &str) -> Result<(), ApiError> {
    validate_nick(user).map_err(|error| ApiError { status: StatusCode::BAD_REQUEST, error })
}

/// The body of a server-to-server request.
trait AppRequest: DeserializeOwned {
    /// A body that would do, for refusals.
    const EXAMPLE: &'static str;
}

impl AppRequest for TokenRequest {
    const EXAMPLE: &'static str = r#"{"user":"alice"}"#;
}

impl AppRequest for RevokeRequest {
    const EXAMPLE: &'static str = r#"{"user":"alice"}"#;
}

impl AppRequest for ChannelSettings {
    const EXAMPLE: &'static str = r##"{"channel":"#support","topic":"Ask us anything","ops":["alice"]}"##;
}

impl AppRequest for KickRequest {
    const EXAMPLE: &'static str = r#"{"nick":"mallory","reason":"spam","by":"modbot"}"#;
}

impl AppRequest for BanRequest {
    const EXAMPLE: &'static str = r#"{"mask":"mallory!*@*","by":"modbot"}"#;
}

impl AppRequest for TopicRequest {
    const EXAMPLE: &'static str = r#"{"topic":"Release day","by":"modbot"}"#;
}

impl AppRequest for NoticeRequest {
    const EXAMPLE: &'static str = r##"{"target":"#lobby","text":"Maintenance at 18:00","from":"ops"}"##;
}

impl AppRequest for MessageRequest {
    const EXAMPLE: &'static str = r##"{"target":"#lobby","text":"hello","from":"helper"}"##;
}

/// The checks every server-to-server JSON endpoint starts with: the shared secret in the
/// `Authorization` header, then a body that parses as the request.
fn app_request<T: AppRequest>(app: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    check_secret(app, bearer(auth))?;
    let example = T::EXAMPLE;
    let bad = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadArguments,
            format!("the body must be JSON like {example}: {e}"),
        )
    };
    // An object, not just anything serde could map onto the struct (such as `["alice"]`);
    // parsed straight into the request, so a key given twice is refused, not silently merged.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let why = format!("the body must be a JSON object like {example}");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadArguments, why));
    }
    serde_json::from_slice(body).map_err(bad)
}

/// # POST /api/token
/// `Authorization: Bearer <shared secret>`, body `{"user":"alice"}` (optionally `"ttl_secs"`)
/// → `{"token":"…","expires_at":"2026-01-01T00:00:00Z"}`.
pub(crate) async fn post_token(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    let app = &app.inner;
    let request: TokenRequest = app_request(app, &headers, &body)?;
    let max = app.config.token_ttl;
    let ttl = request.ttl_secs.map_or(max, |s| Duration::from_secs(s).min(max));
    if ttl.is_zero() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadArguments,
            "ttl_secs must be positive",
        ));
    }
    check_user(&request.user)?;
    let issued = app.chat.issue_token(&request.user, Some(ttl)).await?;
    let expires_at = humantime::format_rfc3339_seconds(issued.expires_at).to_string();
    Ok(Json(TokenResponse { token: issued.token, expires_at }))
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.into()).into_response()
}

/// # GET /gettoken/{user}/{token}/{secret}
/// The pychattr route: `nil` as the token generates one; any other token is bound to the user
/// and stored (it survives restarts). Answers the token as plain text, or
/// `Error: Access Denied` (403) for a wrong secret.
pub(crate) async fn get_legacy_token(
    State(app): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((user, token, secret))) = path else {
        return plain(StatusCode::BAD_REQUEST, "Error: the path does not decode to UTF-8 text");
    };
    let chat = &app.inner.chat;
    match chat.tokens() {
        Some(tokens) if tokens.secret_matches(&secret) => {}
        Some(_) => return plain(StatusCode::FORBIDDEN, "Error: Access Denied"),
        None => return plain(StatusCode::SERVICE_UNAVAILABLE, "Error: token login is disabled"),
    }
    let refuse = |e: ApiError| plain(e.status, format!("Error: {}", e.error.message));
    if token != "nil" && (!valid_legacy_token(&token) || TokenSigner::is_signed_token(&token)) {
        return plain(
            StatusCode::BAD_REQUEST,
            "Error: a token is 16 to 256 characters of A-Z a-z 0-9 - _ . ~",
        );
    }
    if let Err(e) = check_user(&user) {
        return refuse(e);
    }
    let issued = if token == "nil" {
        chat.issue_token(&user, None).await.map(|issued| issued.token)
    } else {
        chat.bind_legacy_token(&user, &token).await.map(|()| token)
    };
    match issued {
        Ok(token) => plain(StatusCode::OK, token),
        Err(e) => refuse(e.into()),
    }
}

/// # GET /getuser/{token}
/// The user a token logs in as, as plain text; `Not Found` (404) for unknown, expired, revoked
/// or forged tokens.
pub(crate) async fn get_legacy_user(
    State(app): State<AppState>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(token)) = token else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    if !TokenSigner::is_signed_token(&token) && !valid_legacy_token(&token) {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    match app.inner.chat.token_user(&token).await {
        Ok(login) => plain(StatusCode::OK, login.user),
        Err(e) if matches!(e.code, ErrorCode::Internal | ErrorCode::Unavailable) => {
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Error: internal error")
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "Not Found"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageRequest {
    /// A channel, or the nick of someone online.
    target: String,
    text: String,
    /// The bot the message is from; without it, the server itself (`Chattr`).
    from: Option<String>,
}

/// # POST /api/messages
/// `Authorization: Bearer <shared secret>`, body `{"target":"#chan" | "nick","text":"…","from":"bot"}`:
/// posts a message as the app's bot `from` (or, without `from`, as the server itself,
/// `Chattr`), stored and delivered like any message (marked `"bot":true`) → the message as
/// stored: `{"id":…,"ts":…,"from":"bot","target":"#chan","text":"…","bot":true}`.
pub(crate) async fn post_message(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ChatMessage>, ApiError> {
    let app = &app.inner;
    let request: MessageRequest = app_request(app, &headers, &body)?;
    let from = request.from.as_deref().unwrap_or(APP_NAME);
    let posted = app.chat.post_bot_message(from, &request.target, &request.text).await?;
    Ok(Json(posted))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    user: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct RevokeResponse {
    pub user: String,
    pub revoked_at: String,
    pub sessions_closed: usize,
}

/// # POST /api/revoke
/// `Authorization: Bearer <shared secret>`, body `{"user":"alice"}`: every token issued to the
/// user until now stops working (signed tokens are refused, legacy tokens deleted) and the
/// user's open sessions are closed with `token_revoked`. Tokens issued afterwards work.
/// → `{"user":"alice","revoked_at":"2026-01-01T00:00:00.123Z","sessions_closed":1}`.
pub(crate) async fn post_revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RevokeResponse>, ApiError> {
    let app = &app.inner;
    let request: RevokeRequest = app_request(app, &headers, &body)?;
    check_user(&request.user)?;
    let revoked = app.chat.revoke_tokens(&request.user).await?;
    Ok(Json(RevokeResponse {
        user: request.user,
        revoked_at: humantime::format_rfc3339_millis(revoked.at).to_string(),
        sessions_closed: revoked.sessions_closed,
    }))
}

/// The shared secret of a server-to-server request with no body.
fn app_get(app: &Inner, headers: &HeaderMap) -> Result<(), ApiError> {
    check_secret(app, bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())))
}

/// A channel named in a path: `%23rust`, or `rust` for short.
fn channel_segment(segment: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Ok(Path(name)) = segment else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidChannel,
            "the channel is not UTF-8 text",
        ));
    };
    Ok(if name.starts_with('#') { name } else { format!("#{name}") })
}

/// # POST /api/channels
/// `{"channel":"#support","topic":"Ask us anything","moderated":false,"ops":["alice"]}` (and
/// `invite_only`, `topic_ops_only`, `secret`, `private`, `key`, `limit`, `founder`, `by`): sets
/// up a channel with these settings, registered so it lasts while empty and across restarts
/// (`409 channel_registered` if it is already). → `201` and the channel as it stands.
pub(crate) async fn post_channel(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedChannel>), ApiError> {
    let app = &app.inner;
    let settings: ChannelSettings = app_request(app, &headers, &body)?;
    Ok((StatusCode::CREATED, Json(app.chat.app_create_channel(settings).await?)))
}

/// # GET /api/backup
/// The whole store as a SurrealQL dump, read in one transaction while the chat goes on, for
/// `Authorization: Bearer <backup token>`: the token this server wrote into its data directory
/// (`chattrd backup <file>` reads it there). Not the shared secret: a dump holds password hashes,
/// stored tokens and the cloaking key. Embedded on-disk stores only (`404` otherwise); one
/// backup at a time (`429`).
pub(crate) async fn get_backup(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let inner = &app.inner;
    let Some(token) = inner.backup_token.as_deref() else {
        let why = "live backups are for the embedded on-disk store (CHATTR_DB=surrealkv://…)";
        return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::Unavailable, why));
    };
    let presented = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    if !presented.is_some_and(|p| crate::auth::secret_matches(token, p)) {
        let why =
            format!("wrong or missing backup token (in the data directory, {})", crate::backup::TOKEN_FILE);
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::AccessDenied, why));
    }
    let Ok(turn) = inner.backups.clone().try_acquire_owned() else {
        let why = "a backup is being taken already; try again once it is done";
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, why));
    };
    let dump = inner.chat.export().await.map_err(|e| {
        tracing::error!(error = %e, "a backup could not be started");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the store cannot make a backup now",
        )
    })?;
    // A failure half-way ends the body early, which the client sees as an error: it keeps no
    // partial file. The turn is given back when the body is done or dropped.
    let body = axum::body::Body::from_stream(dump.inspect(move |chunk| {
        let _turn = &turn;
        if let Err(e) = chunk {
            tracing::error!(error = %e, "a backup failed while it was being sent");
        }
    }));
    Ok(([(header::CONTENT_TYPE, "application/sql; charset=utf-8")], body).into_response())
}

/// # GET /api/channels
/// Every channel with anyone in it, the fullest first (secret ones too; the app sees all).
pub(crate) async fn get_channels(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<ChannelOverview>>, ApiError> {
    app_get(&app.inner, &headers)?;
    Ok(Json(app.inner.chat.channels()))
}

/// # GET /api/channels/{channel}/members
pub(crate) async fn get_channel_members(
    State(app): State<AppState>,
    headers: HeaderMap,
    channel: Result<Path<String>, PathRejection>,
) -> Result<Json<ChannelMembers>, ApiError> {
    app_get(&app.inner, &headers)?;
    Ok(Json(app.inner.chat.channel_members(&channel_segment(channel)?)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct HistoryPage {
    channel: String,
    messages: Vec<ChatMessage>,
    more: bool,
}

/// # GET /api/channels/{channel}/history?before=<id>&limit=<n>
/// A page of the channel's stored history (up to 100, 50 by default), oldest first.
pub(crate) async fn get_channel_history(
    State(app): State<AppState>,
    headers: HeaderMap,
    channel: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    app_get(&app.inner, &headers)?;
    let channel = channel_segment(channel)?;
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadArguments, e.body_text()))?;
    let (messages, more) = app.inner.chat.channel_history(&channel, query.before, query.limit).await?;
    Ok(Json(HistoryPage { channel, messages, more }))
}

/// # GET /api/users
/// Everyone online, by nick.
pub(crate) async fn get_users(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<Presence>>, ApiError> {
    app_get(&app.inner, &headers)?;
    Ok(Json(app.inner.chat.online_users()))
}

/// # GET /api/users/{nick}
/// Whether someone is online, and how: 404 `no_such_nick` when they are not.
pub(crate) async fn get_user(
    State(app): State<AppState>,
    headers: HeaderMap,
    nick: Result<Path<String>, PathRejection>,
) -> Result<Json<Presence>, ApiError> {
    app_get(&app.inner, &headers)?;
    let Ok(Path(nick)) = nick else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidNick,
            "the nick is not UTF-8 text",
        ));
    };
    Ok(Json(app.inner.chat.presence(&nick)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KickRequest {
    nick: String,
    reason: Option<String>,
    by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BanRequest {
    /// A mask (`nick!user@host` with wildcards) or the nick of someone online.
    mask: String,
    by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicRequest {
    topic: String,
    by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoticeRequest {
    target: String,
    text: String,
    from: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Reached {
    reached: usize,
}

/// What every moderation route does: the secret, the body, the channel named in the path,
/// then `act` with them and the name the app acts under (`Chattr` when it names none).
async fn moderate<R: AppRequest>(
    app: &AppState,
    headers: &HeaderMap,
    channel: Result<Path<String>, PathRejection>,
    body: &[u8],
    act: impl AsyncFnOnce(&crate::service::ChatService, String, R) -> Result<Moderated, ProtocolError>,
) -> Result<Json<Moderated>, ApiError> {
    let app = &app.inner;
    let request: R = app_request(app, headers, body)?;
    let channel = channel_segment(channel)?;
    Ok(Json(act(&app.chat, channel, request).await?))
}

/// # POST /api/channels/{channel}/kick
/// `{"nick":"mallory","reason":"spam","by":"modbot"}`: the app puts someone out (it has an
/// operator's rights; `by` is the name shown, `Chattr` by default).
pub(crate) async fn post_kick(
    State(app): State<AppState>,
    headers: HeaderMap,
    channel: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Moderated>, ApiError> {
    moderate(&app, &headers, channel, &body, async |chat, channel, r: KickRequest| {
        chat.app_kick(&channel, &r.nick, r.reason, r.by.as_deref().unwrap_or(APP_NAME)).await
    })
    .await
}

/// # POST /api/channels/{channel}/bans
/// `{"mask":"mallory!*@*","by":"modbot"}` (or the nick of someone online): adds a ban.
pub(crate) async fn post_ban(
    State(app): State<AppState>,
    headers: HeaderMap,
    channel: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Moderated>, ApiError> {
    moderate(&app, &headers, channel, &body, async |chat, channel, r: BanRequest| {
        chat.app_ban(&channel, &r.mask, r.by.as_deref().unwrap_or(APP_NAME)).await
    })
    .await
}

/// # POST /api/channels/{channel}/unban
/// `{"mask":"mallory!*@*"}` (or the nick of someone online): lifts the bans it names.
pub(crate) async fn post_unban(
    State(app): State<AppState>,
    headers: HeaderMap,
    channel: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Moderated>, ApiError> {
    moderate(&app, &headers, channel, &body, async |chat, channel, r: BanRequest| {
        chat.app_unban(&channel, &r.mask, r.by.as_deref().unwrap_or(APP_NAME)).await
    })
    .await
}

/// # POST /api/channels/{channel}/topic
/// `{"topic":"Release day","by":"modbot"}`; an empty topic clears it.
pub(crate) async fn post_topic(
    State(app): State<AppState>,
    headers: HeaderMap,
    channel: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Moderated>, ApiError> {
    moderate(&app, &headers, channel, &body, async |chat, channel, r: TopicRequest| {
        chat.app_topic(&channel, r.topic, r.by.as_deref().unwrap_or(APP_NAME)).await
    })
    .await
}

/// # POST /api/notices
/// `{"target":"#lobby" | "nick","text":"…","from":"ops"}` → `{"reached":12}`.
pub(crate) async fn post_notice(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Reached>, ApiError> {
    let app = &app.inner;
    let request: NoticeRequest = app_request(app, &headers, &body)?;
    let from = request.from.as_deref().unwrap_or(APP_NAME);
    let reached = app.chat.app_notice(&request.target, &request.text, from).await?;
    Ok(Json(Reached { reached }))
}

/// # GET /api/openapi.json
/// The HTTP API as an OpenAPI 3.1 document (docs/openapi.json, compiled in).
pub(crate) async fn openapi() -> Response {
    let document = include_str!("../../docs/openapi.json");
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

/// # GET /healthz
/// 200 `ok` when the store answers and has not failed a write; 503 otherwise (`store failed`
/// once a write failed: the server acknowledges nothing more and is about to exit). A node of
/// a cluster adds its name and slot and the nodes alive, one line each, and answers 503
/// (`cluster unreachable`) while it cannot renew its lease in Redis.
pub(crate) async fn healthz(State(app): State<AppState>) -> Response {
    let chat = &app.inner.chat;
    if chat.store_failure().is_some() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "store failed: acknowledging nothing; restarting");
    }
    if !chat.store_healthy().await {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
    }
    let Some(cluster) = chat.cluster() else { return plain(StatusCode::OK, "ok") };
    let (name, slot, up) = cluster.describe();
    if !up {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "cluster unreachable");
    }
    let members = cluster.members().await.join(", ");
    plain(StatusCode::OK, format!("ok\nnode: {name} (slot {slot})\ncluster: {members}\n"))
}

/// Answers 408, and closes the connection, when a request has not produced its response
/// within `limit`, reading its body included: a body trickled in byte by byte cannot hold a
/// connection. A WebSocket upgrade answers at once, so sessions are not subject to it.
pub(crate) async fn request_timeout(
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
