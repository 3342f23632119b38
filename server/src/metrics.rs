//! `GET /metrics`: the server's figures in the Prometheus text format, for a scraper holding
//! `CHATTR_METRICS_TOKEN` (without one set, there are no metrics).
//!
//! Nothing here sits on the chat's paths: each part of the server counts what it does with a
//! plain counter of its own (the hub under its lock, the outboxes' budget, the connection gate,
//! the sessions' flood control), and a scrape reads them all into a registry made for it,
//! taking the hub's lock once (a pass over the sessions, to count the held ones). Only the
//! store's latency is a histogram, observed once per stored batch.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::auth::{bearer, secret_matches};
use crate::flood::Verdict;
use crate::{AppState, Inner};

/// What the transports count themselves.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Frames refused for flooding (the client is told to slow down).
    flood_refused: AtomicU64,
    /// Connections closed for flooding.
    flood_disconnects: AtomicU64,
}

impl Counters {
    /// Counts a flood control verdict.
    pub(crate) fn flood(&self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Allow => return,
            Verdict::Refuse => &self.flood_refused,
            Verdict::Disconnect => &self.flood_disconnects,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// # GET /metrics
/// The figures, for `Authorization: Bearer <CHATTR_METRICS_TOKEN>`; `401` without it, `404`
/// when no token is configured (metrics are off).
pub(crate) async fn scrape(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let inner = &app.inner;
    let Some(token) = inner.config.metrics_token.as_deref().filter(|t| !t.is_empty()) else {
        return (StatusCode::NOT_FOUND, "metrics are off: set CHATTR_METRICS_TOKEN").into_response();
    };
    let presented = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    if !presented.is_some_and(|p| secret_matches(token, p)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"chattr metrics\"")],
            "wrong or missing metrics token",
        )
            .into_response();
    }
    match render(inner) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be written");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be written").into_response()
        }
    }
}

/// Every figure, in the Prometheus text format.
pub(crate) fn render(inner: &Inner) -> Result<String, std::fmt::Error> {
    let chat = &inner.chat;
    let hub = chat.hub_figures();
    let stats = chat.stats();
    let mut r = Registry::with_prefix("chattr");

    gauge(
        &mut r,
        "connections",
        "WebSocket connections logged in (to this node)",
        hub.online.saturating_sub(hub.held),
    );
    gauge(&mut r, "sessions", "Sessions logged in (on this node), held ones included", hub.online);
    gauge(&mut r, "held_sessions", "Sessions whose connection dropped, held for a resume", hub.held);
    gauge(
        &mut r,
        "channels",
        "Channels that exist (have members, or are registered); every node of a cluster counts them all",
        hub.channels,
    );
    gauge(&mut r, "queued_bytes", "Bytes queued for clients over every connection", stats.queued_bytes);
    labelled(
        &mut r,
        "logins",
        "Logins, by kind (token, guest, resume)",
        "kind",
        chat.login_counts().by_kind(),
    );
    labelled(
        &mut r,
        "login_refusals",
        "Logins refused, by error code",
        "code",
        chat.login_counts().refused(),
    );
    counter(&mut r, "messages", "Chat messages stored (by this node) and delivered", hub.messages);
    counter(
        &mut r,
        "deliveries",
        "Events queued for connections (a message to a channel of 100 members is 100)",
        hub.events_queued,
    );
    counter(
        &mut r,
        "slow_consumer_closes",
        "Connections closed for not reading their events",
        chat.slow_consumers(),
    );
    let counters = &inner.counters;
    counter(
        &mut r,
        "flood_refusals",
        "Frames refused for flooding",
        counters.flood_refused.load(Ordering::Relaxed),
    );
    counter(
        &mut r,
        "flood_disconnects",
        "Connections closed for flooding",
        counters.flood_disconnects.load(Ordering::Relaxed),
    );
    labelled(
        &mut r,
        "connections_refused",
        "Connections refused by the per-address limits, by reason (too_many, too_fast)",
        "reason",
        inner.gate.refusals(),
    );
    counter(&mut r, "password_hashes", "Password hashes computed or checked", stats.password_hashes);
    counter(&mut r, "webhook_deliveries", "Webhook deliveries made", stats.webhooks_delivered);
    counter(
        &mut r,
        "webhook_failed_attempts",
        "Webhook attempts that failed",
        stats.webhooks_failed_attempts,
    );
    counter(
        &mut r,
        "webhook_dead_letters",
        "Webhook deliveries that failed every attempt",
        stats.webhooks_dead,
    );
    counter(
        &mut r,
        "webhook_dropped",
        "Webhook deliveries dropped because an endpoint was too far behind",
        stats.webhooks_dropped,
    );
    let times = chat.store_times();
    r.register(
        "store_batch_seconds",
        "Time to store a batch of chat messages (one transaction and disk sync)",
        times.seconds.clone(),
    );
    r.register("store_batch_messages", "Chat messages per stored batch", times.messages.clone());
    let up: Gauge = Gauge::default();
    up.set(i64::from(chat.store_failure().is_none()));
    r.register("store_up", "1 while the store takes writes, 0 once one failed", up);
    if let Some(cluster) = chat.cluster() {
        let f = cluster.figures();
        gauge(
            &mut r,
            "cluster_up",
            "1 while this node renews its lease in the cluster's Redis",
            usize::from(f.up),
        );
        counter(
            &mut r,
            "cluster_log_applied",
            "Operations of the cluster's log applied by this node",
            f.applied,
        );
        counter(
            &mut r,
            "cluster_log_appended",
            "Operations this node appended to the cluster's log",
            f.appended,
        );
        counter(
            &mut r,
            "cluster_log_append_failures",
            "Operations this node could not append (Redis unreachable)",
            f.append_failures,
        );
        r.register(
            "cluster_log_lag_seconds",
            "At this node's last lease renewal, how long the oldest operation of the cluster's log it had not applied had waited",
            ConstGauge::new(f.lag_ms as f64 / 1000.0),
        );
    }

    let mut text = String::new();
    prometheus_text::encode(&mut text, &r)?;
    Ok(text)
}

fn gauge(r: &mut Registry, name: &str, help: &str, value: usize) {
    r.register(name, help, ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)));
}

fn counter(r: &mut Registry, name: &str, help: &str, value: u64) {
    r.register(name, help, ConstCounter::new(value));
}

/// A counter per value of one label.
fn labelled(
    r: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'static str, u64)>,
) {
    let family =
        Family::<[(&'static str, &'static str); 1], prometheus_client::metrics::counter::Counter>::default();
    for (value, count) in values {
        family.get_or_create(&[(label, value)]).inc_by(count);
    }
    r.register(name, help, family);
}
