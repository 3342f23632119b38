//! `chattrd`, Chattr's server: HTTP routes, WebSocket sessions, the chat core and the store.
//!
//! [`serve`] opens the store and binds nothing: it serves on a listener the caller made, so
//! tests run the real server on `127.0.0.1:0`.

// The serve API: the settings, the application layer a transport drives, and the store (which
// tools that read or write a data directory open). Everything else is the server's own.
pub mod backup;
pub mod config;
pub mod service;
pub mod store;

pub(crate) mod admission;
pub(crate) mod assets;
pub(crate) mod auth;
pub(crate) mod chat;
pub(crate) mod cluster;
pub(crate) mod filter;
pub(crate) mod flood;
pub(crate) mod http;
pub(crate) mod listener;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod proxy;
pub(crate) mod security;
pub(crate) mod session;
pub(crate) mod tls;
pub(crate) mod webhooks;
pub(crate) mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::ErrorCode;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath};
use axum::http::{HeaderValue, Method, Request};
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use chat::Close;
pub use config::Config;
use security::SecurityHeaders;
pub use service::ChatService;
use store::StoreError;

/// Everything a request handler or session needs.
pub struct Inner {
    pub config: Config,
    /// The chat's use cases; the routes and sessions are its transports.
    pub chat: ChatService,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every WebSocket session, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Reverse proxies whose word on the client's address is taken.
    pub(crate) proxies: proxy::TrustedProxies,
    /// Connections per client address.
    pub(crate) gate: admission::Gate,
    /// What the transports count, for `/metrics`.
    pub(crate) counters: metrics::Counters,
    /// What `GET /api/backup` takes, written into the data directory (embedded stores only).
    pub(crate) backup_token: Option<String>,
    /// One backup at a time.
    pub(crate) backups: Arc<tokio::sync::Semaphore>,
}

impl Inner {
    pub(crate) fn new(config: Config, chat: ChatService) -> Self {
        let proxies = proxy::TrustedProxies::of(&config);
        let gate = admission::Gate::new(admission::Limits::of(&config));
        Self {
            config,
            chat,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            proxies,
            gate,
            counters: metrics::Counters::default(),
            backup_token: None,
            backups: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

/// The axum state: the shared server, the built UI and its Leptos options.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
    pub(crate) site: Arc<assets::Site>,
    pub leptos: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stopped because the store failed a write ({0}); start again so that its recovery runs")]
    StoreFailed(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl AppState {
    /// Opens the store and builds the chat core.
    pub async fn new(config: Config) -> Result<Self, ServeError> {
        let chat = ChatService::open(&config).await?;
        let output_name = std::env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| "chattr".into());
        let site = assets::Site::find(&config.site_root, &output_name);
        let leptos = site.leptos_options(&output_name, config.addr);
        let mut inner = Inner::new(config, chat);
        inner.backup_token = backup::issue_token(&inner.config.db).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot write the backup token: `chattrd backup` cannot ask this server");
            None
        });
        Ok(Self { inner: Arc::new(inner), site: Arc::new(site), leptos })
    }
}

/// All routes. Logs name the route template, never the URI: legacy routes carry secrets and
/// tokens in their paths.
pub fn router(state: AppState) -> Router {
    let config = &state.inner.config;
    let origins: Vec<HeaderValue> = config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim().trim_end_matches('/')).ok())
        .collect();
    // Browser-facing, secret-free endpoints answer CORS for the allowed origins.
    let browser_facing = Router::new()
        .route("/healthz", get(http::healthz))
        .route("/getuser/{token}", get(http::get_legacy_user))
        .layer(CorsLayer::new().allow_origin(AllowOrigin::list(origins)).allow_methods([Method::GET]));
    // Server-to-server endpoints: no CORS layer, so browsers on other origins are refused.
    let server_to_server = Router::new()
        .route("/api/token", post(http::post_token))
        .route("/api/revoke", post(http::post_revoke))
        .route("/api/messages", post(http::post_message))
        .route("/api/channels", get(http::get_channels).post(http::post_channel))
        .route("/api/channels/{channel}/members", get(http::get_channel_members))
        .route("/api/channels/{channel}/history", get(http::get_channel_history))
        .route("/api/channels/{channel}/kick", post(http::post_kick))
        .route("/api/channels/{channel}/bans", post(http::post_ban))
        .route("/api/channels/{channel}/unban", post(http::post_unban))
        .route("/api/channels/{channel}/topic", post(http::post_topic))
        .route("/api/notices", post(http::post_notice))
        .route("/api/users", get(http::get_users))
        .route("/api/users/{nick}", get(http::get_user))
        .route("/api/openapi.json", get(http::openapi))
        .route("/api/backup", get(http::get_backup))
        .route("/metrics", get(metrics::scrape))
        .route("/gettoken/{user}/{token}/{secret}", get(http::get_legacy_token));
    let routes = generate_route_list(app::Root);
    // `cargo leptos watch` runs chattrd with LEPTOS_WATCH set: its pages then carry a script that
    // reloads them from a socket on the reload port, which the policy must let them reach.
    let live_reload = std::env::var_os("LEPTOS_WATCH")
        .is_some()
        .then(|| u16::try_from(state.leptos.reload_port).ok())
        .flatten();
    let headers = SecurityHeaders::new(&config.allowed_origins, live_reload);
    // Every rendered page carries its render's nonce policy.
    let shell = {
        let (headers, leptos) = (headers.clone(), state.leptos.clone());
        move || {
            headers.attach_page_policy();
            app::shell(leptos.clone())
        }
    };
    let request_timeout = Some(config.request_timeout).filter(|t| !t.is_zero());
    Router::new()
        .merge(browser_facing)
        .merge(server_to_server)
        .route("/ws", get(session::upgrade))
        .leptos_routes(&state, routes, shell)
        .fallback(assets::files)
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(middleware::from_fn(assets::revalidate_pages))
        .layer(middleware::from_fn_with_state(request_timeout, http::request_timeout))
        .layer(middleware::from_fn_with_state(headers, security::add_headers))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let route = req.extensions().get::<MatchedPath>().map_or("<static>", MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), route)
        }))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then closes every session (close code
/// 1001), waits up to the configured grace for them, and closes the store.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (db, grace) = (config.db.clone(), config.shutdown_grace);
    let state = AppState::new(config).await?;
    let served = serve_state(state, listener, shutdown).await;
    // Every handle on the store is gone now; let the embedded engine finish closing, and its
    // tasks end, so it is dropped inside the runtime rather than as the process exits (which
    // would leave its log unclosed and make it log errors).
    if !store::wait_closed(&db, grace).await {
        tracing::warn!("the store did not close within the shutdown grace period");
    }
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while metrics.num_alive_tasks() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served
}

/// [`serve`] for an already built state.
pub async fn serve_state(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let inner = state.inner.clone();
    // Before anything says it listens: a certificate that does not load stops the start.
    let tls = match (&inner.config.tls_cert, &inner.config.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = tls::Tls::load(cert, key).map_err(|e| ServeError::Config(format!("TLS: {e}")))?;
            tracing::info!(cert = %cert.display(), "speaking TLS (HTTPS and WSS); SIGHUP reads the certificate again");
            Some(tls)
        }
        _ => None,
    };
    tracing::info!(addr = %listener.local_addr()?, "chattrd listening");
    let token = inner.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    // A failed store write means nothing more can be acknowledged: every session is closed
    // at once (the UI reconnects later), `/healthz` says so for the shutdown grace, so load
    // balancers see it, and then the server stops with an error so its supervisor restarts it
    // and the store's recovery runs before anything is written again.
    {
        let inner = inner.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = inner.shutdown.cancelled() => {}
                _ = inner.chat.store_failed() => {
                    inner.chat.close_all(Close::error(ErrorCode::Unavailable));
                    tokio::time::sleep(inner.config.shutdown_grace).await;
                    inner.shutdown.cancel();
                }
            }
        });
    }
    // Upgraded WebSockets are out of hyper's hands, so they are closed here, not by the
    // listener. Answers when shutdown began.
    let closer = {
        let inner = inner.clone();
        async move {
            inner.shutdown.cancelled().await;
            inner.chat.close_all(Close::error(ErrorCode::ShuttingDown));
            Instant::now()
        }
    };
    if !inner.config.history_max_age.is_zero() {
        // The first pruning is done before serving, so nobody ever sees expired messages.
        inner.chat.prune_history(inner.config.history_max_age).await;
        tokio::spawn(prune_history(inner.clone()));
    }
    tokio::spawn(memory::give_back_after_departures(inner.clone()));
    let mut settings = listener::Settings::from_config(&inner.config);
    if let Some(tls) = &tls {
        tokio::spawn(reload_tls_on_sighup(tls.clone(), inner.shutdown.clone()));
        settings.tls = Some(tls.clone());
    }
    let served =
        listener::serve(listener, router(state), settings, inner.gate.clone(), inner.shutdown.clone());
    let ((), stopping) = tokio::join!(served, closer);
    inner.sessions.close();
    let grace_left = inner.config.shutdown_grace.saturating_sub(stopping.elapsed());
    if tokio::time::timeout(grace_left, inner.sessions.wait()).await.is_err() {
        tracing::warn!("some sessions did not close within the shutdown grace period");
    }
    // The other nodes of a cluster see this one's users quit now, not when its lease runs out.
    if let Some(cluster) = inner.chat.cluster() {
        cluster.leave().await;
    }
    // After the sessions: their last events (disconnects) are queued for the webhooks too.
    inner.chat.stop_webhooks().await;
    if let Some(why) = inner.chat.store_failure() {
        return Err(ServeError::StoreFailed(why.to_owned()));
    }
    tracing::info!("chattrd stopped");
    Ok(())
}

/// Reads the TLS certificate and key again on every SIGHUP (a renewal), keeping the one in use
/// when they do not load.
async fn reload_tls_on_sighup(tls: Arc<tls::Tls>, shutdown: CancellationToken) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP: the TLS certificate is read at start only");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hangups.recv() => match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the one in use"),
            },
        }
    }
}

/// Deletes expired messages every hour.
async fn prune_history(inner: Arc<Inner>) {
    let hour = Duration::from_secs(3600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = every.tick() => inner.chat.prune_history(inner.config.history_max_age).await,
        }
    }
}
