//! Every setting of `chattrd`, as command-line flags that each also read an environment
//! variable (`chattrd --help` lists them all with their defaults).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

pub use crate::proxy::ProxyHeader;

/// Who may see a user's real address in `/whois`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RealHostTo {
    /// Only the user themself.
    #[value(name = "self")]
    OnlySelf,
    /// The user and the operators of any channel the user is in.
    ChannelOps,
}

/// Chattr: a realtime chat server that web applications plug into.
#[derive(Debug, Clone, Parser)]
#[command(name = "chattrd", version, about, long_about = None)]
pub struct Config {
    /// What to do instead of serving, if anything.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on for HTTP and WebSocket connections. Without it, `LEPTOS_SITE_ADDR`
    /// (cargo-leptos's `site-addr`, which it gives the server it runs), else 127.0.0.1:3000.
    #[arg(long, env = "CHATTR_ADDR", default_value = default_addr())]
    pub addr: SocketAddr,

    /// Where data lives: `surrealkv://<dir>` (embedded, on disk), `mem://` (embedded, gone at
    /// exit; for tests) or `ws://host:port` (a SurrealDB server).
    #[arg(long, env = "CHATTR_DB", default_value = "surrealkv://./data")]
    pub db: String,

    /// Root user for a SurrealDB server (`ws://`); embedded stores need none.
    #[arg(long, env = "CHATTR_DB_USER", requires = "db_pass")]
    pub db_user: Option<String>,

    /// Password of `CHATTR_DB_USER`.
    #[arg(long, env = "CHATTR_DB_PASS", hide_env_values = true, requires = "db_user")]
    pub db_pass: Option<String>,

    /// Makes this server one node of a cluster: `redis://host:port` (or `rediss://`), the Redis
    /// (or Valkey) server the nodes share their log of changes through. Unset: a single node,
    /// and no Redis is touched. Nodes of one cluster share their store (`CHATTR_DB=ws://…`).
    #[arg(long, env = "CHATTR_CLUSTER")]
    pub cluster: Option<String>,

    /// This node's name in the cluster, shown by `/healthz` and in the logs; the host name and
    /// port when unset.
    #[arg(long, env = "CHATTR_NODE_NAME")]
    pub node_name: Option<String>,

    /// How long a node that stopped answering keeps its users in the cluster: past it, the
    /// other nodes take them out of their channels and free their nicks.
    #[arg(long, env = "CHATTR_NODE_LEASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub node_lease: std::time::Duration,

    /// Shared secret that app servers use to ask for login tokens. Without one, the token
    /// endpoints answer 503 and only guests can log in.
    #[arg(long, env = "CHATTR_SHARED_SECRET", hide_env_values = true)]
    pub shared_secret: Option<String>,

    /// Comma-separated channels the UI offers a newcomer to join with one click (announced in
    /// `welcome`); empty offers none.
    #[arg(long, env = "CHATTR_DEFAULT_CHANNELS", value_delimiter = ',', default_value = "#lobby", value_parser = channel_name)]
    pub default_channels: Vec<String>,

    /// Comma-separated origins (e.g. `https://app.example`) allowed to open the WebSocket and
    /// to call the browser-facing HTTP endpoints. The server's own origin is always allowed.
    #[arg(long, env = "CHATTR_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Comma-separated URLs that receive every event as a signed JSON `POST` (webhooks). They
    /// are signed with the shared secret, which they need.
    #[arg(long, env = "CHATTR_WEBHOOK_URLS", value_delimiter = ',')]
    pub webhook_urls: Vec<String>,

    /// How long one webhook delivery may take before it counts as failed.
    #[arg(long, env = "CHATTR_WEBHOOK_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// Attempts of one delivery before it becomes a dead letter.
    #[arg(long, env = "CHATTR_WEBHOOK_ATTEMPTS", default_value_t = 8)]
    pub webhook_attempts: u32,

    /// The wait after a webhook's first failed attempt; each next wait is twice as long.
    #[arg(long, env = "CHATTR_WEBHOOK_BACKOFF", default_value = "1s", value_parser = humantime::parse_duration)]
    pub webhook_backoff: Duration,

    /// A URL the app answers with a verdict on every user's message before it is stored and
    /// delivered: accept, reject (with a reason for the sender) or rewrite.
    #[arg(long, env = "CHATTR_MESSAGE_FILTER_URL")]
    pub message_filter_url: Option<String>,

    /// How long a message waits for the filter's verdict.
    #[arg(long, env = "CHATTR_MESSAGE_FILTER_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub message_filter_timeout: Duration,

    /// What happens to a message when the filter does not answer (in time, or sensibly):
    /// `open` sends it, `closed` refuses it (`busy`).
    #[arg(long, env = "CHATTR_MESSAGE_FILTER_FAIL", default_value = "open", value_parser = ["open", "closed"])]
    pub message_filter_fail: String,

    /// Whether casual users may log in with just a nick (`true`/`false`).
    #[arg(long, env = "CHATTR_GUESTS", default_value_t = true, action = ArgAction::Set)]
    pub guests: bool,

    /// How long a generated login token is valid; also how far ahead the `exp` of a JWT an
    /// app signs may lie.
    #[arg(long, env = "CHATTR_TOKEN_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// The `aud` a JWT signed by an app must carry; unset, `aud` is not checked.
    #[arg(long, env = "CHATTR_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The `iss` a JWT signed by an app must carry; unset, `iss` is not checked.
    #[arg(long, env = "CHATTR_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Largest WebSocket frame or message a client may send, in bytes.
    #[arg(long, env = "CHATTR_MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    pub max_frame_bytes: usize,

    /// Longest chat message text, in bytes.
    #[arg(long, env = "CHATTR_MAX_TEXT_BYTES", default_value_t = 4000)]
    pub max_text_bytes: usize,

    /// Events queued for one connection before it counts as a slow consumer and is dropped.
    #[arg(long, env = "CHATTR_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,

    /// Bytes queued for one connection before it counts as a slow consumer and is dropped.
    #[arg(long, env = "CHATTR_SEND_QUEUE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub send_queue_bytes: usize,

    /// Bytes queued over all connections past which connections holding more than their
    /// share are dropped as slow consumers.
    #[arg(long, env = "CHATTR_SEND_BUDGET_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub send_budget_bytes: usize,

    /// Frames a client may send in a burst before rate limiting starts.
    #[arg(long, env = "CHATTR_FLOOD_BURST", default_value_t = 10)]
    pub flood_burst: u32,

    /// Frames per second a client may send once its burst is spent.
    #[arg(long, env = "CHATTR_FLOOD_RATE", default_value_t = 2)]
    pub flood_rate: u32,

    /// Refused frames within ten seconds after which a flooding client is disconnected.
    #[arg(long, env = "CHATTR_FLOOD_STRIKES", default_value_t = 20)]
    pub flood_strikes: u32,

    /// Time a new connection has to send its `auth` frame.
    #[arg(long, env = "CHATTR_AUTH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub auth_timeout: Duration,

    /// How often the server pings each connection.
    #[arg(long, env = "CHATTR_PING_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// How long after a ping a silent connection is dropped.
    #[arg(long, env = "CHATTR_PING_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ping_timeout: Duration,

    /// Drop a connection that sends no message, command or ping for this long; `0s` never does.
    #[arg(long, env = "CHATTR_IDLE_TIMEOUT", default_value = "0s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// On shutdown, how long to wait for connections to close before exiting anyway.
    #[arg(long, env = "CHATTR_SHUTDOWN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Time a client has to send a request's head (its line and headers), counted from when the
    /// connection opens or its previous response was sent; a slower one is disconnected. `0s`
    /// never does.
    #[arg(long, env = "CHATTR_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Time an HTTP request may take until its response starts, reading the request body
    /// included; then it is answered 408 and the connection closed. WebSockets, once upgraded,
    /// are not subject to it. `0s` means no limit.
    #[arg(long, env = "CHATTR_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Time an HTTP response may go without writing a byte because the client takes none (its
    /// socket full: a client that stopped reading, or pipelines requests and never reads the
    /// answers); then the connection is closed. Between two writes, not for the whole response,
    /// like nginx's `send_timeout`. WebSockets, once upgraded, are not subject to it.
    /// `chattrd backup` gives up on a running server that sends nothing for as long. `0s`
    /// means no limit.
    #[arg(long, env = "CHATTR_SEND_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub send_timeout: Duration,

    /// Close an HTTP connection on which nothing was sent or received for this long, once no
    /// request is in progress. `0s` never does. (The header timeout counts the wait for a next
    /// request too, so this matters when it is the shorter.)
    #[arg(long, env = "CHATTR_KEEPALIVE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,

    /// Connections one address may hold open at once (IPv6: one /64); more are closed at once.
    /// `0` means no limit. Behind a reverse proxy, name it in `CHATTR_TRUSTED_PROXIES` so that
    /// clients are counted rather than the proxy.
    #[arg(long, env = "CHATTR_MAX_CONNS_PER_IP", default_value_t = 32)]
    pub max_conns_per_ip: u32,

    /// New connections one address (IPv6: one /64) may open per second once its burst is
    /// spent; more are closed at once. `0` means no limit.
    #[arg(long, env = "CHATTR_CONN_RATE_PER_IP", default_value_t = 5)]
    pub conn_rate_per_ip: u32,

    /// New connections one address (IPv6: one /64) may open in a burst.
    #[arg(long, env = "CHATTR_CONN_BURST_PER_IP", default_value_t = 20)]
    pub conn_burst_per_ip: u32,

    /// Connections open at once, in all; further ones wait in the kernel's queue until one
    /// closes. `0` takes the open-file limit less 256 descriptors kept for the store.
    #[arg(long, env = "CHATTR_MAX_CONNS", default_value_t = 0)]
    pub max_conns: usize,

    /// Channels one user may be in at once.
    #[arg(long, env = "CHATTR_MAX_CHANNELS", default_value_t = 100)]
    pub max_channels: usize,

    /// Stored messages a user gets when joining a channel, before live traffic; `0` sends none.
    #[arg(long, env = "CHATTR_HISTORY_ON_JOIN", default_value_t = 50)]
    pub history_on_join: usize,

    /// Delete stored messages older than this (e.g. `90d`); `0s` keeps them forever.
    #[arg(long, env = "CHATTR_HISTORY_MAX_AGE", default_value = "0s", value_parser = humantime::parse_duration)]
    pub history_max_age: Duration,

    /// How long a session whose connection dropped is held for the client to resume it (a
    /// reload, a network change): its nick, channels and roles stay and nobody sees it quit.
    /// `0s` ends sessions when their connection does.
    #[arg(long, env = "CHATTR_RESUME_GRACE", default_value = "120s", value_parser = humantime::parse_duration)]
    pub resume_grace: Duration,

    /// Time someone on a nick registered with Potato has to identify before being renamed.
    #[arg(long, env = "CHATTR_NICK_GRACE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub nick_grace: Duration,

    /// Potato registrations one address (an IPv4 address or an IPv6 /64) may make per hour;
    /// `0` means no limit (behind a reverse proxy, name it in `CHATTR_TRUSTED_PROXIES`, or every
    /// client has the proxy's address).
    #[arg(long, env = "CHATTR_REGISTRATIONS_PER_ADDRESS", default_value_t = 10)]
    pub registrations_per_address: usize,

    /// Potato password attempts one address may make per minute, whatever the accounts; `0`
    /// means no limit (per connection and per account from one address, 3 a minute, always).
    #[arg(long, env = "CHATTR_PASSWORD_ATTEMPTS_PER_ADDRESS", default_value_t = 10)]
    pub password_attempts_per_address: usize,

    /// Comma-separated addresses or CIDR networks of reverse proxies (e.g. `127.0.0.1,10.0.0.0/8`).
    /// Only for a connection from one of them is the client's address taken from the proxy's
    /// header (the rightmost address in it that is not a trusted proxy); from anywhere else
    /// those headers are ignored. Connection limits then count the client, not the proxy.
    #[arg(long, env = "CHATTR_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::proxy::parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Which header the trusted proxies name the client in: `auto` (`X-Forwarded-For` when
    /// present, else `Forwarded`), `x-forwarded-for` or `forwarded`. Set the one your proxy
    /// writes: the other may be a client's forgery that the proxy passed through.
    #[arg(long, env = "CHATTR_PROXY_HEADER", value_enum, default_value_t = ProxyHeader::Auto)]
    pub proxy_header: ProxyHeader,

    /// A PEM file with the TLS certificate chain (leaf first): chattrd then speaks HTTPS and
    /// WSS itself, without a reverse proxy. Read again, with the key, on SIGHUP.
    #[arg(long, env = "CHATTR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// A PEM file with the private key of `CHATTR_TLS_CERT`.
    #[arg(long, env = "CHATTR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Comma-separated accounts that are server operators while identified:
    /// `potato:<nick>` (registered with Potato) or `app:<user>` (logged in by an app). They may
    /// `/kill`, `/kline`, `/gnotice`, read `/stats` and `/audit`, and see real addresses.
    #[arg(long, env = "CHATTR_OPERS", value_delimiter = ',', value_parser = oper_account)]
    pub opers: Vec<String>,

    /// Who sees a user's real address in `/whois`: `self` (only the user) or `channel-ops`
    /// (also the operators of a channel the user is in).
    #[arg(long, env = "CHATTR_WHOIS_REAL_HOST", value_enum, default_value_t = RealHostTo::OnlySelf)]
    pub whois_real_host: RealHostTo,

    /// Where the built UI (wasm, js, css, assets) is served from.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// The token a Prometheus scraper presents (`Authorization: Bearer <token>`) to read
    /// `GET /metrics`. Unset, there are no metrics (`404`).
    #[arg(long, env = "CHATTR_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Log filter, e.g. `info` or `chattr=debug,info`.
    #[arg(long, env = "CHATTR_LOG", default_value = "info")]
    pub log: String,

    /// How log lines are written: `text` (for people) or `json` (one object a line). With
    /// `chattr=debug` in `CHATTR_LOG`, a connection's lines carry its span: its number, the
    /// client's address and, once logged in, its session.
    #[arg(long, env = "CHATTR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// What `chattrd` can do besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Writes a backup of the store (`CHATTR_DB`) to FILE: a SurrealQL dump, read in one
    /// transaction. Asks the running chattrd for it (at `CHATTR_ADDR`, with the backup token it
    /// wrote into its data directory) when one holds the store, else reads the store itself.
    Backup {
        /// Where to write it (`FILE.partial` until it is whole).
        file: PathBuf,
    },
    /// Loads a backup into the store `CHATTR_DB` names, which must be empty (a new data
    /// directory) and not in use; then start chattrd on it.
    Restore {
        /// A file `chattrd backup` wrote.
        file: PathBuf,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Settings for tests and embedding: in-memory store, port 0, defaults elsewhere.
    pub fn for_tests() -> Self {
        let mut config = Config::parse_from(["chattrd"]);
        config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.db = "mem://".into();
        config
    }
}

/// The address when neither `--addr` nor `CHATTR_ADDR` names one: `LEPTOS_SITE_ADDR`, which
/// cargo-leptos sets to its `site-addr` for the server it runs (`cargo leptos watch`), and where
/// it points the browser and waits for the server before reloading the page; else
/// 127.0.0.1:3000, the `site-addr` in Cargo.toml. (One that does not parse is refused like a bad
/// `CHATTR_ADDR`, when it is used.)
fn default_addr() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| default_addr_from(std::env::var("LEPTOS_SITE_ADDR").ok()))
}

fn default_addr_from(leptos_site_addr: Option<String>) -> String {
    leptos_site_addr.filter(|a| !a.trim().is_empty()).unwrap_or_else(|| "127.0.0.1:3000".to_owned())
}

/// An operator's account as configured: `potato:<nick>` or `app:<user>`.
fn oper_account(s: &str) -> Result<String, String> {
    let s = s.trim();
    match s.split_once(':') {
        Some(("potato" | "app", name)) if app::protocol::names::validate_nick(name).is_ok() => {
            Ok(s.to_owned())
        }
        _ => Err(format!("`{s}` is not an account: write potato:<nick> or app:<user>")),
    }
}

/// A channel name as the protocol allows it (spaces around it ignored; empty for none).
fn channel_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if !name.is_empty() {
        app::protocol::names::validate_channel(name).map_err(|e| e.message)?;
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    /// `Config` as parsed from `args` with `LEPTOS_SITE_ADDR` as given and no `CHATTR_ADDR`.
    fn parse(leptos_site_addr: Option<&str>, args: &[&str]) -> Result<Config, clap::Error> {
        let default: &'static str = default_addr_from(leptos_site_addr.map(str::to_owned)).leak();
        let mut matches = Config::command()
            .mut_arg("addr", |a| a.env(None::<&str>).default_value(default))
            .try_get_matches_from(std::iter::once("chattrd").chain(args.iter().copied()))?;
        Config::from_arg_matches_mut(&mut matches)
    }

    #[test]
    fn without_an_address_of_its_own_chattrd_listens_on_cargo_leptos_site_addr() {
        let addr = |leptos_site_addr, args| parse(leptos_site_addr, args).map(|c| c.addr.to_string());
        assert_eq!(addr(Some("127.0.0.1:3100"), &[]).unwrap(), "127.0.0.1:3100");
        assert_eq!(addr(None, &[]).unwrap(), "127.0.0.1:3000");
        assert_eq!(addr(Some(""), &[]).unwrap(), "127.0.0.1:3000");
        // Its own setting wins, and a site address that is no address is refused once it is used.
        assert_eq!(addr(Some("127.0.0.1:3100"), &["--addr", "0.0.0.0:8080"]).unwrap(), "0.0.0.0:8080");
        assert_eq!(addr(Some("nonsense"), &["--addr", "0.0.0.0:8080"]).unwrap(), "0.0.0.0:8080");
        let refused = addr(Some("nonsense"), &[]).unwrap_err().to_string();
        assert!(refused.contains("nonsense"), "{refused}");
    }
}
