//! `chattr-bench`: puts chattrd under chat load and reports what it measured.
//!
//! Clients log in as guests and are split into channels of `--room-size`; in each channel
//! `--senders` of them send `--rate` messages a second for `--duration`. Every message carries
//! the instant it was sent, so each member records its delivery latency, and each sender how
//! long the server's echo of its own message (the acknowledgement) took. Afterwards every
//! member's count is checked against what was sent into its channel: nothing may be lost.
//!
//! With `--idle`, nobody sends: the clients connect, log in and join as fast as
//! `--connect-concurrency` lets them, then sit, and the report says how long that took and what
//! each connection costs the server in memory, and what it gave back once they left.

mod compare;
mod server;
mod socket;
mod wire;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{watch, Barrier};

use compare::{Point, Series, Verdict};
use server::{host_times, steal_between, usage_of, Spawned, Usage};
use socket::{Reader, Socket, Writer};
use wire::{Event, Protocol};

#[derive(Parser, Debug, Clone)]
#[command(name = "chattr-bench", version, about)]
struct Args {
    /// The chattrd to load (host:port, or several nodes of a cluster, comma-separated: client
    /// `i` connects to the `i`th modulo their number); ignored with --spawn. It must let guests in, have
    /// flood control raised above --rate (CHATTR_FLOOD_BURST, CHATTR_FLOOD_RATE), and let one
    /// address hold --clients connections (CHATTR_MAX_CONNS_PER_IP=0 CHATTR_CONN_RATE_PER_IP=0).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Start this chattrd binary for the run instead: free port, fresh store, flood control and
    /// per-address connection limits off.
    #[arg(long)]
    spawn: Option<PathBuf>,
    /// The spawned server's store: `disk` (surrealkv, fsync on every commit) or `mem`.
    #[arg(long, default_value = "disk", value_parser = ["disk", "mem"])]
    store: String,
    /// Connected clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Members per channel: the clients are split into channels of this many.
    #[arg(long, default_value_t = 100)]
    room_size: usize,
    /// How many members of each channel send.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages a second from each sender.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// How long the senders send.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// After sending stops, how long to wait for every message to arrive.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// With --spawn: give the server a message filter (an endpoint in this process that
    /// accepts every message after this long), to measure what the filter's round trip adds.
    #[arg(long, value_parser = humantime::parse_duration)]
    filter: Option<Duration>,
    /// Print one Markdown table row (see docs/benchmarks.md) instead of the report.
    #[arg(long)]
    markdown: bool,
    /// Connect, log in and join, then hold the connections without sending: the connect rate
    /// and the server's memory per connection (needs --spawn for the memory).
    #[arg(long)]
    idle: bool,
    /// How many clients connect and log in at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// The server's protocol: `chattr`, or `socketio` for the Socket.IO peer
    /// (tools/bench/peers/socketio; `--spawn` its `server.mjs` to start it with node).
    #[arg(long, value_enum, default_value = "chattr")]
    protocol: Protocol,
    /// The stepped mode: run once per rate (messages a second per sender), each on a fresh
    /// server (needs --spawn), until a step loses a message or its delivery p99 passes
    /// --p99-limit; prints a table row per step and the highest rate sustained.
    #[arg(long, value_delimiter = ',')]
    step_rates: Vec<f64>,
    /// The stepped mode's latency ceiling.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    p99_limit: Duration,
    /// Print the Markdown table's header (for --markdown rows) and exit.
    #[arg(long)]
    markdown_header: bool,
    /// The comparison: the stepped mode (--step-rates) on the --spawn chattrd with its disk
    /// store, then `mem`, then on the Socket.IO peer (--socketio), each step on a fresh server;
    /// prints what each sustained, and with --plot and --write draws and records it.
    #[arg(long, requires = "spawn")]
    compare: bool,
    /// The Socket.IO peer's script, for --compare.
    #[arg(long, default_value = "tools/bench/peers/socketio/server.mjs")]
    socketio: PathBuf,
    /// With --compare: draw p99 latency against deliveries a second into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// With --compare: write the tables (and the plot's link) into this Markdown file, between
    /// its `<!-- compare:begin -->` and `<!-- compare:end -->` lines.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Record the spawned server with `perf record` (call graphs by DWARF) while the senders
    /// send, into this file (scripts/profile.sh draws it as a flame graph).
    #[arg(long, requires = "spawn")]
    profile: Option<PathBuf>,
    /// Extra clients that, while the senders send, join a channel holding
    /// [`JOIN_HISTORY`] stored messages, wait for its history, and leave again, once every
    /// --join-every each: how long a join takes under the load (Chattr only).
    #[arg(long, default_value_t = 0)]
    joiners: usize,
    /// How often each joiner joins.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    join_every: Duration,
    /// One core each: the spawned server on CPU 0, this generator on CPU 1 (`taskset`).
    /// With --compare, every server is run shared first, then pinned.
    #[arg(long)]
    pin: bool,
    /// With --spawn: start a cluster of this many chattrd nodes instead of one, sharing a
    /// `redis-server` (Debian's, from the PATH) and a SurrealDB server (--surreal) that the
    /// tool starts too; the clients are spread over the nodes, so most deliveries cross nodes.
    /// The server's CPU and memory are the whole cluster's (nodes, Redis, SurrealDB). With
    /// `--store mem` each node has a store of its own in memory instead (no SurrealDB server):
    /// what the cluster's log costs, apart from a shared store's.
    #[arg(long, requires = "spawn")]
    cluster: Option<usize>,
    /// The SurrealDB server binary for --cluster (`tools/surreal-test-server`'s build).
    #[arg(long)]
    surreal: Option<PathBuf>,
}

/// The address client `i` connects to, of the comma-separated `addrs`.
fn pick(addrs: &str, i: usize) -> &str {
    let n = addrs.split(',').count().max(1);
    addrs.split(',').nth(i % n).unwrap_or(addrs)
}

/// The Markdown table's header, for the rows `--markdown` prints.
const MARKDOWN_HEADER: &str = "| clients | channels × members | senders × rate | store | sent/s | delivered/s | latency p50 | p99 | max | ack p99 | lost | server CPU | CPU per delivery | server memory | generator CPU |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Message counts and latencies (in microseconds), summed over all clients.
struct Tally {
    /// Messages from others reaching a member.
    delivery: Histogram<u64>,
    /// Senders' own messages echoed back by the server.
    ack: Histogram<u64>,
    sent: u64,
    /// Messages (others' and own echoes) that arrived.
    received: u64,
    /// Messages sent into the members' channels, which all should have arrived.
    expected: u64,
    errors: u64,
    /// Messages that arrived again, or before one their sender sent earlier.
    duplicates: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            delivery: histogram(),
            ack: histogram(),
            sent: 0,
            received: 0,
            expected: 0,
            errors: 0,
            duplicates: 0,
        }
    }

    #[allow(clippy::expect_used, reason = "every histogram is made by histogram(), with the same bounds")]
    fn add_latencies(&mut self, room: &Latencies) {
        self.delivery.add(&room.delivery).expect("same bounds");
        self.ack.add(&room.ack).expect("same bounds");
    }

    fn add_counts(&mut self, client: &Counts) {
        self.sent += client.sent;
        self.received += client.received;
        self.expected += client.expected;
        self.errors += client.errors;
        self.duplicates += client.duplicates;
    }

    /// Messages that never came (those that came twice are not counted as come).
    fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received.saturating_sub(self.duplicates))
    }
}

/// One client's message counts.
#[derive(Default)]
struct Counts {
    sent: u64,
    /// Messages (others' and own echoes) that arrived.
    received: u64,
    /// Messages sent into its channel, which all should have arrived.
    expected: u64,
    errors: u64,
    /// Messages that came twice, or out of their sender's order.
    duplicates: u64,
}

/// A channel's latencies, recorded by its members. Kept per channel, not per client: a
/// histogram is ~170 KiB, and one per client (two, with the echoes) made the generator's
/// working set gigabytes at 19,000 clients, and its every record a cache miss.
struct Latencies {
    delivery: Histogram<u64>,
    ack: Histogram<u64>,
}

/// What one client saw.
struct Outcome {
    login: Duration,
    counts: Counts,
    dropped: bool,
}

#[allow(clippy::expect_used, reason = "constant bounds, which are valid")]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Shared by every client of one channel.
struct Room {
    name: String,
    sent: AtomicU64,
    latencies: std::sync::Mutex<Latencies>,
}

/// Everything the clients coordinate on.
struct Run {
    args: Args,
    /// The instant every timestamp in a message counts from.
    epoch: Instant,
    /// All clients logged in and joined: sending starts.
    ready: Barrier,
    /// Senders still sending; the last one to finish flips `all_sent`.
    sending: AtomicUsize,
    all_sent: watch::Sender<bool>,
}

impl Run {
    /// One sender has stopped; the last one tells every reader that sending is over.
    fn sender_done(&self) {
        if self.sending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_sent.send_replace(true);
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if args.markdown_header {
        println!("{MARKDOWN_HEADER}");
        return std::process::ExitCode::SUCCESS;
    }
    if args.clients == 0
        || args.room_size == 0
        || args.rate <= 0.0
        || args.step_rates.iter().any(|r| *r <= 0.0)
    {
        eprintln!("chattr-bench: --clients, --room-size and --rate must be positive");
        return std::process::ExitCode::FAILURE;
    }
    args.senders = args.senders.min(args.room_size);
    if args.pin && !args.compare {
        if let Err(e) = pin_generator() {
            eprintln!("chattr-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if args.compare {
        return match compare_servers(&args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chattr-bench: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if !args.step_rates.is_empty() {
        return stepped(args).await;
    }
    let spawned = match &args.spawn {
        Some(binary) => match Spawned::start_for(&args, binary).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("chattr-bench: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let addr = spawned.as_ref().map_or(args.addr.clone(), |s| s.addr.clone());
    if args.idle {
        let result = idle(&args, &addr, spawned.as_ref()).await;
        if let Some(s) = spawned {
            s.stop().await;
        }
        return match result {
            Ok(report) => {
                println!("{report}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chattr-bench: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = run(args.clone(), &addr, spawned.as_ref()).await;
    if let Some(s) = spawned {
        s.stop().await;
    }
    match result {
        Ok(report) if report.tally.lost() == 0 && report.tally.duplicates == 0 && report.dropped == 0 => {
            println!("{}", if args.markdown { report.markdown_row() } else { report.text() });
            std::process::ExitCode::SUCCESS
        }
        Ok(report) => {
            println!("{}", report.text());
            eprintln!("chattr-bench: messages were lost or came twice, or clients dropped");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("chattr-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The stepped mode: one run per rate, each on a fresh server, until one is not sustained (a
/// message lost, a client dropped, delivery p99 over the limit, or the generator busier than
/// the server).
async fn stepped(args: Args) -> std::process::ExitCode {
    let Some(binary) = args.spawn.clone() else {
        eprintln!("chattr-bench: --step-rates starts a fresh server per step: it needs --spawn");
        return std::process::ExitCode::FAILURE;
    };
    println!("{MARKDOWN_HEADER}");
    let series = match steps(&args, &binary, String::new()).await {
        Ok(series) => series,
        Err(e) => {
            eprintln!("chattr-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let limit = humantime::format_duration(args.p99_limit);
    match series.steps.iter().rfind(|(_, v)| *v == Verdict::Sustained) {
        Some((point, _)) => println!(
            "\nsustained: {:.0} deliveries/s with p99 ≤ {limit} and nothing lost",
            point.delivered_per_second
        ),
        None => println!("\nno step was sustained (p99 ≤ {limit}, nothing lost)"),
    }
    std::process::ExitCode::SUCCESS
}

/// Runs `args.step_rates` in order against `binary`, a fresh server per step, printing each
/// step's row as it ends, until a step is not sustained (which is kept, as where it stopped).
async fn steps(args: &Args, binary: &std::path::Path, name: String) -> Result<Series, String> {
    let mut series = Series { name, pinned: args.pin, steps: Vec::new() };
    for &rate in &args.step_rates {
        let verdict = step(args, binary, rate, &mut series).await?;
        if verdict != Verdict::Sustained {
            break;
        }
    }
    Ok(series)
}

/// How many times a step that measured a busy host is run in all before the series stops there.
const HOST_BUSY_TRIES: usize = 3;

/// One step at `rate` per sender on a fresh server, its row printed and its point added to
/// `series`; its verdict. A step that fell short while the hypervisor took time for other
/// guests (steal) is run again, each try's row printed, the last one's kept.
async fn step(
    args: &Args,
    binary: &std::path::Path,
    rate: f64,
    series: &mut Series,
) -> Result<Verdict, String> {
    let mut tries = 0;
    loop {
        tries += 1;
        let step = Args { rate, ..args.clone() };
        let spawned = Spawned::start_for(&step, binary).await?;
        let addr = spawned.addr.clone();
        let result = run(step, &addr, Some(&spawned)).await;
        spawned.stop().await;
        let report = result?;
        println!("{}", report.markdown_row());
        let point = report.point();
        let verdict = Verdict::of(&point, args.p99_limit.as_secs_f64() * 1000.0);
        if verdict == Verdict::HostBusy && tries < HOST_BUSY_TRIES {
            eprintln!(
                "chattr-bench: {rate}/s fell short with {:.1}% of the machine's time stolen by its host; again",
                point.steal.unwrap_or_default()
            );
            continue;
        }
        series.steps.push((point, verdict));
        return Ok(verdict);
    }
}

/// The comparison: the steps on chattrd (disk, then memory) and on the Socket.IO peer, each
/// rate on the three in turn (shared cores, then pinned); prints the tables, and draws and
/// writes them where asked.
async fn compare_servers(args: &Args) -> Result<(), String> {
    let Some(chattrd) = args.spawn.clone() else { return Err("--compare needs --spawn <chattrd>".into()) };
    if args.step_rates.is_empty() {
        return Err("--compare needs --step-rates".into());
    }
    let servers = [
        ("chattrd, disk", "disk", Protocol::Chattr, &chattrd),
        ("chattrd, mem", "mem", Protocol::Chattr, &chattrd),
        ("Socket.IO 4.8", "disk", Protocol::Socketio, &args.socketio),
    ];
    println!("{MARKDOWN_HEADER}");
    let mut all = Vec::new();
    for pinned in [false, true].into_iter().filter(|p| !p || args.pin) {
        if pinned {
            pin_generator()?;
        }
        // Each rate on every server still going before the next rate: this host's speed drifts
        // (by 2–3× within an hour), and a drift between one server's steps and the next's
        // would favour one of them.
        let mut runs: Vec<(Args, &std::path::PathBuf, Series)> = servers
            .iter()
            .map(|(name, store, protocol, binary)| {
                let each = Args { store: (*store).into(), protocol: *protocol, pin: pinned, ..args.clone() };
                let name = if pinned { format!("{name}, one core each") } else { (*name).to_owned() };
                (each, *binary, Series { name, pinned, steps: Vec::new() })
            })
            .collect();
        for &rate in &args.step_rates {
            let mut any_going = false;
            for (each, binary, series) in &mut runs {
                if series.limit().is_some() {
                    continue;
                }
                any_going |= step(each, binary, rate, series).await? == Verdict::Sustained;
            }
            if !any_going {
                break;
            }
        }
        all.extend(runs.into_iter().map(|(_, _, series)| series));
    }
    let limit_ms = args.p99_limit.as_secs_f64() * 1000.0;
    let summary = compare::table(&all, limit_ms);
    let detail = compare::steps_table(&all, limit_ms);
    println!("\n{summary}\n{detail}");
    if let Some(path) = &args.plot {
        compare::plot(&all, limit_ms, path)?;
        println!("plot: {}", path.display());
    }
    if let Some(path) = &args.write {
        let machine = machine();
        let picture = args.plot.as_ref().map_or(String::new(), |plot| {
            let name = plot.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
            format!("\n![p99 delivery latency against deliveries a second]({name})\n")
        });
        let section = format!(
            "Measured {} by `scripts/compare.sh` on {machine}; {} clients in channels of {}, {} senders \
             per channel, {} per step, rates per sender {}/s, each rate run on the three servers in \
             turn; the generator shares the cores, or has one of its own where it says so.\n\n\
             {summary}{picture}\n<details><summary>Every step</summary>\n\n{detail}\n</details>\n",
            today(),
            args.clients,
            args.room_size,
            args.senders,
            humantime::format_duration(args.duration),
            args.step_rates.iter().map(f64::to_string).collect::<Vec<_>>().join(", "),
        );
        compare::write_into(path, &section)?;
        println!("written into {}", path.display());
    }
    Ok(())
}

/// Pins this process (every thread, and so the threads they start) to its CPU.
fn pin_generator() -> Result<(), String> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-cp", server::GENERATOR_CPU, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset failed ({status})"))
    }
}

/// The machine, as the tables describe it: CPUs and their model, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU");
    format!("{cpus} CPU(s), {model}")
}

/// Today's date (UTC), for the record.
fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().chars().take(10).collect()
}

async fn run(args: Args, addr: &str, spawned: Option<&Spawned>) -> Result<Report, String> {
    let rooms: Vec<Arc<Room>> = (0..args.clients.div_ceil(args.room_size))
        .map(|i| {
            Arc::new(Room {
                name: format!("#bench-{i}"),
                sent: AtomicU64::new(0),
                latencies: std::sync::Mutex::new(Latencies { delivery: histogram(), ack: histogram() }),
            })
        })
        .collect();
    let senders = (0..args.clients).filter(|i| i % args.room_size < args.senders).count();
    let (all_sent, _) = watch::channel(senders == 0);
    let run = Arc::new(Run {
        epoch: Instant::now(),
        ready: Barrier::new(args.clients + 1),
        sending: AtomicUsize::new(senders),
        all_sent,
        args: args.clone(),
    });

    let (logins, login_time) = crowd(&args, addr, false).await;
    let mut joiners = Vec::new();
    for i in 0..args.joiners {
        joiners.push(joiner_ready(args.protocol, addr, i).await?);
    }

    let mut tasks = Vec::new();
    for login in logins {
        let (i, ws, took) = login?;
        let room = rooms[i / args.room_size].clone();
        let sends = i % args.room_size < args.senders;
        tasks.push(tokio::spawn(client(run.clone(), room, i, ws, took, sends)));
    }
    run.ready.wait().await;
    let joiners: Vec<_> = joiners.into_iter().map(|j| tokio::spawn(joiner(run.clone(), j))).collect();
    let profiler = match (&args.profile, spawned.and_then(Spawned::pid)) {
        (Some(file), Some(pid)) => Some(profile(pid, file, args.duration)?),
        _ => None,
    };
    let before = spawned.and_then(Spawned::usage);
    let redis_before = match spawned {
        Some(s) => s.redis_commands().await,
        None => None,
    };
    let generator_before = usage_of("self");
    let host_before = host_times();
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.map_err(|e| format!("a client task failed: {e}"))??);
    }
    let elapsed = started.elapsed();
    let after = spawned.and_then(Spawned::usage);
    let generator = generator_before.zip(usage_of("self"));
    let steal = host_before.zip(host_times()).map(|(before, after)| steal_between(before, after));
    let redis_after = match spawned {
        Some(s) => s.redis_commands().await,
        None => None,
    };
    let mut joins = histogram();
    for j in joiners {
        joins.add(j.await.map_err(|e| format!("a joiner failed: {e}"))??).map_err(|e| e.to_string())?;
    }
    if let Some(mut perf) = profiler {
        let status = perf.wait().await.map_err(|e| format!("perf: {e}"))?;
        if !status.success() {
            return Err(format!("perf record failed ({status})"));
        }
    }
    let mut report = Report::new(&args, outcomes, login_time, elapsed, before.zip(after), generator);
    for room in &rooms {
        report.tally.add_latencies(&room.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    }
    report.joins = joins;
    report.redis = redis_before.zip(redis_after);
    report.steal = steal;
    Ok(report)
}

/// Messages stored in each joiner's channel before the run, for its joins to load.
const JOIN_HISTORY: usize = 50;

/// A joiner, logged in, with its channel's history stored and the channel left.
struct Joiner {
    index: usize,
    ws: Socket,
    nick: String,
    room: String,
}

/// Logs joiner `index` in and fills its channel with [`JOIN_HISTORY`] messages.
async fn joiner_ready(protocol: Protocol, addr: &str, index: usize) -> Result<Joiner, String> {
    if protocol != Protocol::Chattr {
        return Err("--joiners measures Chattr's joins (the Socket.IO peer keeps no history)".into());
    }
    let nick = format!("joiner{index}");
    let room = format!("#bench-history-{index}");
    let mut ws = login(protocol, pick(addr, index), &nick).await?;
    join_room(protocol, &mut ws, &room).await?;
    for k in 0..JOIN_HISTORY {
        ws.send_text(protocol.message_frame(&room, &format!("history {k}"))).await?;
    }
    let last = format!("history {}", JOIN_HISTORY - 1);
    expect(&mut ws, |e| e["type"] == "message" && e["text"] == last.as_str()).await?;
    let mut joiner = Joiner { index, ws, nick, room };
    part(&mut joiner).await?;
    Ok(joiner)
}

async fn part(j: &mut Joiner) -> Result<(), String> {
    send(&mut j.ws, json!({"type":"command","line":format!("/part {}", j.room)})).await?;
    expect(&mut j.ws, |e| {
        e["type"] == "parted" && e["channel"] == j.room.as_str() && e["nick"] == j.nick.as_str()
    })
    .await
    .map(|_| ())
}

/// Joins and leaves its channel every --join-every until the senders are done; answers how
/// long each join took, from the `/join` sent to the channel's history in. The joiners join at
/// spread points of the period, as the senders send, not all at once.
async fn joiner(run: Arc<Run>, mut j: Joiner) -> Result<Histogram<u64>, String> {
    let mut joins = histogram();
    let period = run.args.join_every;
    let first = tokio::time::Instant::now() + period.mul_f64(phase(j.index));
    let mut every = tokio::time::interval_at(first, period);
    let mut all_sent = run.all_sent.subscribe();
    loop {
        tokio::select! {
            _ = all_sent.wait_for(|done| *done) => return Ok(joins),
            _ = every.tick() => {}
        }
        let began = Instant::now();
        send(&mut j.ws, json!({"type":"command","line":format!("/join {}", j.room)})).await?;
        let history = expect(&mut j.ws, |e| e["type"] == "history" && e["target"] == j.room.as_str()).await?;
        joins.saturating_record(began.elapsed().as_micros() as u64);
        let got = history["messages"].as_array().map_or(0, Vec::len);
        if got < JOIN_HISTORY {
            return Err(format!("{} joined {} and got {got} messages of history", j.nick, j.room));
        }
        part(&mut j).await?;
    }
}

/// Starts `perf record` on process `pid` for `duration`, writing `file`.
fn profile(pid: u32, file: &std::path::Path, duration: Duration) -> Result<tokio::process::Child, String> {
    tokio::process::Command::new("perf")
        .args(["record", "--quiet", "-F", "499", "--call-graph", "dwarf,32768", "-p", &pid.to_string(), "-o"])
        .arg(file)
        .args(["--", "sleep", &duration.as_secs_f64().to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start perf (Debian: linux-perf): {e}"))
}

/// Logs `args.clients` guests in, `--connect-concurrency` at a time, as a crowd arriving would
/// (and, with `join`, each into its channel); answers them with how long each took, and how
/// long it all took.
async fn crowd(
    args: &Args,
    addr: &str,
    join: bool,
) -> (Vec<Result<(usize, Socket, Duration), String>>, Duration) {
    let started = Instant::now();
    let logins = stream::iter(0..args.clients)
        .map(|i| {
            let addr = pick(addr, i).to_owned();
            let room = format!("#bench-{}", i / args.room_size);
            let protocol = args.protocol;
            async move {
                let began = Instant::now();
                let mut ws = login(protocol, &addr, &format!("bench{i}"))
                    .await
                    .map_err(|e| format!("client {i}: {e}"))?;
                if join {
                    join_room(protocol, &mut ws, &room).await?;
                }
                Ok::<_, String>((i, ws, began.elapsed()))
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    (logins, started.elapsed())
}

/// The idle workload: the connect rate, and the server's memory per connection held and after
/// they all left.
async fn idle(args: &Args, addr: &str, spawned: Option<&Spawned>) -> Result<String, String> {
    let before = spawned.and_then(Spawned::usage);
    let (logins, took) = crowd(args, addr, true).await;
    let mut login = histogram();
    let mut sockets = Vec::with_capacity(logins.len());
    for result in logins {
        let (_, ws, each) = result?;
        login.saturating_record(each.as_micros() as u64);
        sockets.push(ws);
    }
    let held = spawned.and_then(Spawned::usage);
    let mut out = format!(
        "chattr-bench --idle: {} clients in channels of {}, {} connecting at once (store: {})
",
        args.clients,
        args.room_size.min(args.clients),
        args.connect_concurrency,
        match (args.protocol, spawned.is_some()) {
            (Protocol::Socketio, _) => "(Socket.IO)",
            (Protocol::Chattr, true) => args.store.as_str(),
            (Protocol::Chattr, false) => "(external)",
        },
    );
    out += &format!(
        "connect + login + join  {} in {:.2} s ({:.0}/s); each {}\n",
        args.clients,
        took.as_secs_f64(),
        args.clients as f64 / took.as_secs_f64(),
        percentiles(&login),
    );
    let held_line = |before: Usage, held: Usage| {
        let per = held.rss_kib.saturating_sub(before.rss_kib) as f64 / args.clients as f64;
        format!(
            "server memory  {:.1} MiB before, {:.1} MiB holding them: {per:.1} KiB per connection",
            before.rss_kib as f64 / 1024.0,
            held.rss_kib as f64 / 1024.0,
        )
    };
    if args.protocol == Protocol::Socketio {
        // The peer cannot say when everyone has gone (chattrd's `/list` does): what it held only.
        if let (Some(before), Some(held)) = (before, held) {
            out += &format!("{}\n", held_line(before, held));
        }
        return Ok(out);
    }
    // Everyone leaves (for good, not held for a resume), and the channels empty.
    for ws in &mut sockets {
        let _ = send(ws, json!({"type":"command","line":"/quit"})).await;
    }
    drop(sockets);
    everyone_left(addr).await?;
    if let (Some(spawned), Some(before), Some(held)) = (spawned, before, held) {
        let (left, after) = given_back(spawned, before, held).await;
        out += &format!(
            "{}; {:.1} MiB {:.1} s after they left\n",
            held_line(before, held),
            left.rss_kib as f64 / 1024.0,
            after.as_secs_f64()
        );
    }
    Ok(out)
}

/// After everyone left: the server's memory once it has given back nine tenths of what the
/// connections took, or, failing that, ten seconds later; and how long that took.
async fn given_back(server: &Spawned, before: Usage, held: Usage) -> (Usage, Duration) {
    let target = before.rss_kib + held.rss_kib.saturating_sub(before.rss_kib) / 10;
    let started = Instant::now();
    let mut last = held;
    while started.elapsed() < Duration::from_secs(10) {
        let Some(now) = server.usage() else { break };
        last = now;
        if now.rss_kib <= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (last, started.elapsed())
}

/// Waits until no benchmark channel is left (each empties as its last member leaves), asking
/// `/list` as a guest of its own.
async fn everyone_left(addr: &str) -> Result<(), String> {
    let mut probe = login(Protocol::Chattr, pick(addr, 0), "bench-probe").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        send(&mut probe, json!({"type":"command","line":"/list"})).await?;
        let list = expect(&mut probe, |e| e["type"] == "list").await?;
        let left = list["channels"].as_array().is_none_or(|c| {
            !c.iter().any(|c| c["channel"].as_str().is_some_and(|n| n.starts_with("#bench-")))
        });
        if left {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the clients' channels were still there a minute after they left".into())
}

/// Connects and logs in as the guest `nick`.
async fn login(protocol: Protocol, addr: &str, nick: &str) -> Result<Socket, String> {
    let mut ws = Socket::connect(addr, protocol.path()).await?;
    ws.send_text(protocol.login_frame(nick)).await?;
    await_event(protocol, &mut ws, |e| matches!(e, Event::Welcome)).await?;
    Ok(ws)
}

/// Joins `room` and waits until the server says so.
async fn join_room(protocol: Protocol, ws: &mut Socket, room: &str) -> Result<(), String> {
    ws.send_text(protocol.join_frame(room)).await?;
    await_event(protocol, ws, |e| matches!(e, Event::Joined(r) if r == room)).await
}

async fn send(ws: &mut Socket, frame: Value) -> Result<(), String> {
    ws.send_text(frame.to_string()).await
}

/// Reads until an event `wanted` accepts; an error or a close is a failure.
async fn await_event(
    protocol: Protocol,
    ws: &mut Socket,
    wanted: impl Fn(&Event) -> bool,
) -> Result<(), String> {
    let wait = async {
        while let Some(text) = ws.next_text().await {
            match protocol.read(text.as_str()) {
                Event::Error(why) => return Err(format!("the server refused: {why}")),
                event if wanted(&event) => return Ok(()),
                _ => {}
            }
        }
        Err("the connection closed".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.map_err(|_| "no answer in 30 s".to_owned())?
}

/// Reads until an event `wanted` accepts; an error event or a close is a failure.
async fn expect(ws: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let wait = async {
        while let Some(text) = ws.next_text().await {
            let event: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            if wanted(&event) {
                return Ok(event);
            }
            if event["type"] == "error" {
                return Err(format!("the server refused: {event}"));
            }
        }
        Err("the connection closed".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.map_err(|_| "no answer in 30 s".to_owned())?
}

/// One client: joins its channel, waits for everyone, sends (if a sender) while counting what
/// arrives, and keeps reading until its channel's messages are all in or the drain time is up.
async fn client(
    run: Arc<Run>,
    room: Arc<Room>,
    index: usize,
    mut ws: Socket,
    login: Duration,
    sends: bool,
) -> Result<Outcome, String> {
    let nick = format!("bench{index}");
    let channel = room.name.clone();
    let joined = join_room(run.args.protocol, &mut ws, &channel).await;
    // Everyone reaches the start line, even a client that failed, so nobody waits forever.
    run.ready.wait().await;
    if let Err(e) = joined {
        if sends {
            run.sender_done();
        }
        return Err(format!("{nick} could not join {channel}: {e}"));
    }

    let (reader, writer) = ws.split();
    let mut outcome = Outcome { login, counts: Counts::default(), dropped: false };
    let sending = async {
        if sends {
            send_messages(&run, &room, &nick, phase(index), writer).await
        } else {
            0
        }
    };
    let (sent, ()) = tokio::join!(sending, read(&run, &room, &nick, reader, &mut outcome));
    outcome.counts.sent = sent;
    outcome.counts.expected = room.sent.load(Ordering::SeqCst);
    Ok(outcome)
}

/// Where in the sending period client `index` sends, as a fraction of it: spread evenly
/// (the golden ratio's multiples modulo 1), so that the senders do not all send in the same
/// instant, a burst no real crowd makes, and which would measure the burst, not the rate.
fn phase(index: usize) -> f64 {
    (index as f64 * 0.618_033_988_749_895).fract()
}

/// Sends at the configured rate for the configured time, starting `phase` of a period late;
/// answers how many were sent.
async fn send_messages(run: &Run, room: &Room, nick: &str, phase: f64, writer: Writer) -> u64 {
    let period = Duration::from_secs_f64(1.0 / run.args.rate);
    let start = tokio::time::Instant::now() + period.mul_f64(phase);
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = start.into_std() + run.args.duration;
    let mut sent = 0;
    loop {
        ticks.tick().await;
        if Instant::now() >= stop {
            break;
        }
        let stamp = run.epoch.elapsed().as_micros();
        let frame = run.args.protocol.message_frame(&room.name, &format!("{stamp} {nick} {sent}"));
        if writer.send_text(frame).await.is_err() {
            break;
        }
        room.sent.fetch_add(1, Ordering::SeqCst);
        sent += 1;
    }
    run.sender_done();
    // The connection stays open for the reading half, which holds the writing half too.
    sent
}

/// Counts and times arriving messages until the channel's are all in, or the drain time
/// after the last sender stopped is up.
async fn read(run: &Run, room: &Room, nick: &str, mut reader: Reader, outcome: &mut Outcome) {
    let received = AtomicU64::new(0);
    let all_in = || received.load(Ordering::Relaxed) >= room.sent.load(Ordering::SeqCst);
    // Set (by `ended`, below) once every sender is done: only then is the channel's count of
    // messages sent final, so it is looked at first.
    let sending_over = AtomicBool::new(false);
    let mut unrecorded = Unrecorded::default();
    // A sender's messages must come once each, in order.
    let mut last_from = LastSeen::default();
    // One reading future for the whole run: a frame read halfway is lost if its future is
    // dropped, so nothing interrupts it but the end.
    let reading = async {
        while let Some(frame) = reader.next_text().await {
            match run.args.protocol.read(frame.as_str()) {
                Event::Message { from, text } => {
                    received.fetch_add(1, Ordering::Relaxed);
                    if let Some(seq) = text.rsplit(' ').next().and_then(|s| s.parse::<u64>().ok()) {
                        if !last_from.in_order(&from, seq) {
                            outcome.counts.duplicates += 1;
                        }
                    }
                    if let Some(stamp) = text.split(' ').next().and_then(|s| s.parse::<u64>().ok()) {
                        let latency = (run.epoch.elapsed().as_micros() as u64).saturating_sub(stamp);
                        unrecorded.push(room, from == nick, latency);
                    }
                }
                Event::Error(_) => outcome.counts.errors += 1,
                _ => {}
            }
            if sending_over.load(Ordering::SeqCst) && all_in() {
                return;
            }
        }
        outcome.dropped = true;
    };
    let ended = async {
        let _ = run.all_sent.subscribe().wait_for(|done| *done).await;
        sending_over.store(true, Ordering::SeqCst);
        if !all_in() {
            tokio::time::sleep(run.args.drain).await;
        }
    };
    tokio::select! {
        () = reading => {}
        () = ended => {}
    }
    unrecorded.record(room);
    outcome.counts.received = received.into_inner();
}

/// Each sender's last number seen by one client, keyed by the hash of the sender's nick
/// (FNV-1a): a channel has a handful of senders, so a short list scanned in place costs less
/// than a map keyed by the nick itself, whose probing and comparing of keys (each nick a heap
/// string of its own, mostly cache misses) were a tenth of the generator's samples
/// (docs/benchmarks.md).
#[derive(Default)]
struct LastSeen(Vec<(u64, u64)>);

impl LastSeen {
    /// Notes `seq` from `from`; whether it came after the last one seen from that sender.
    fn in_order(&mut self, from: &str, seq: u64) -> bool {
        let key = from
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, last)) if seq <= *last => false,
            Some((_, last)) => {
                *last = seq;
                true
            }
            None => {
                self.0.push((key, seq));
                true
            }
        }
    }
}

/// Latencies a client measured, added to its channel's histograms a batch at a time (64: half
/// a KiB held per client): taking the channel's lock for every delivery (a hundred members
/// reading on both cores) cost more than the recording itself.
#[derive(Default)]
struct Unrecorded {
    delivery: Vec<u64>,
    ack: Vec<u64>,
}

impl Unrecorded {
    const BATCH: usize = 64;

    fn push(&mut self, room: &Room, own: bool, latency: u64) {
        if own { &mut self.ack } else { &mut self.delivery }.push(latency);
        if self.delivery.len() + self.ack.len() >= Self::BATCH {
            self.record(room);
        }
    }

    fn record(&mut self, room: &Room) {
        let mut latencies = room.latencies.lock().unwrap_or_else(|e| e.into_inner());
        for latency in self.delivery.drain(..) {
            latencies.delivery.saturating_record(latency);
        }
        for latency in self.ack.drain(..) {
            latencies.ack.saturating_record(latency);
        }
    }
}

/// Everything measured, summed over the clients.
struct Report {
    args: Args,
    login_time: Duration,
    login: Histogram<u64>,
    tally: Tally,
    dropped: usize,
    elapsed: Duration,
    server: Option<(Usage, Usage)>,
    /// This process's own use, the load generator's.
    generator: Option<(Usage, Usage)>,
    /// The joiners' joins, from `/join` to the history (empty without --joiners).
    joins: Histogram<u64>,
    /// A cluster's Redis: commands it had run before the run and after it.
    redis: Option<(u64, u64)>,
    /// The share of the machine's CPU time (%) its hypervisor gave to other guests meanwhile.
    steal: Option<f64>,
}

impl Report {
    fn new(
        args: &Args,
        outcomes: Vec<Outcome>,
        login_time: Duration,
        elapsed: Duration,
        server: Option<(Usage, Usage)>,
        generator: Option<(Usage, Usage)>,
    ) -> Self {
        let mut report = Report {
            args: args.clone(),
            login_time,
            login: histogram(),
            tally: Tally::new(),
            dropped: 0,
            elapsed,
            server,
            generator,
            joins: histogram(),
            redis: None,
            steal: None,
        };
        for o in outcomes {
            report.login.saturating_record(o.login.as_micros() as u64);
            report.tally.add_counts(&o.counts);
            report.dropped += usize::from(o.dropped);
        }
        report
    }

    fn rooms(&self) -> usize {
        self.args.clients.div_ceil(self.args.room_size)
    }

    fn store(&self) -> String {
        match (self.args.protocol, &self.args.spawn, self.args.cluster) {
            (Protocol::Socketio, ..) => "(Socket.IO)".into(),
            (Protocol::Chattr, Some(_), Some(nodes)) if self.args.store == "mem" => {
                format!("{nodes} nodes, each in memory")
            }
            (Protocol::Chattr, Some(_), Some(nodes)) => format!("{nodes} nodes, SurrealDB server"),
            (Protocol::Chattr, Some(_), None) => self.args.store.clone(),
            (Protocol::Chattr, None, _) => "(external)".into(),
        }
    }

    fn per_second(&self, n: u64) -> f64 {
        n as f64 / self.args.duration.as_secs_f64()
    }

    fn server_usage(&self) -> Option<(f64, f64)> {
        let (before, after) = self.server?;
        let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64() / self.elapsed.as_secs_f64();
        Some((cpu * 100.0, after.peak_rss_kib as f64 / 1024.0))
    }

    /// CPU time per delivered message (µs), of the server and of this generator, over the run.
    fn cpu_per_delivery(&self, usage: Option<(Usage, Usage)>) -> Option<f64> {
        let (before, after) = usage?;
        let deliveries = self.tally.received.max(1) as f64;
        Some(after.cpu.saturating_sub(before.cpu).as_secs_f64() * 1e6 / deliveries)
    }

    /// The server's write system calls per delivered message over the run: below one when
    /// its writes carry several frames each.
    fn writes_per_delivery(&self) -> Option<f64> {
        let (before, after) = self.server?;
        let writes = after.writes?.saturating_sub(before.writes?);
        Some(writes as f64 / self.tally.received.max(1) as f64)
    }

    /// The generator's share of one core during the run.
    fn generator_cpu(&self) -> Option<f64> {
        let (before, after) = self.generator?;
        Some(after.cpu.saturating_sub(before.cpu).as_secs_f64() / self.elapsed.as_secs_f64() * 100.0)
    }

    fn text(&self) -> String {
        let mut out = format!(
            "chattr-bench: {} clients in {} channel(s) of {}, {} sender(s) each at {}/s for {} (store: {})\n",
            self.args.clients,
            self.rooms(),
            self.args.room_size.min(self.args.clients),
            self.args.senders,
            self.args.rate,
            humantime::format_duration(self.args.duration),
            self.store(),
        );
        out += &format!(
            "logins     {} in {:.2} s ({:.0}/s); each {}\n",
            self.args.clients,
            self.login_time.as_secs_f64(),
            self.args.clients as f64 / self.login_time.as_secs_f64(),
            percentiles(&self.login),
        );
        let t = &self.tally;
        out += &format!("sent       {} messages ({:.0}/s)\n", t.sent, self.per_second(t.sent));
        out += &format!(
            "delivered  {} of {} ({:.0}/s); lost {}, twice or out of order {}, errors {}, clients dropped {}\n",
            t.received,
            t.expected,
            self.per_second(t.received),
            t.lost(),
            t.duplicates,
            t.errors,
            self.dropped,
        );
        out += &format!("latency    {}\n", percentiles(&t.delivery));
        if let Some((before, after)) = self.redis {
            out += &format!(
                "redis      {} commands, {:.2} per message sent (the cluster's log, leases and reads)\n",
                after - before,
                (after - before) as f64 / t.sent.max(1) as f64
            );
        }
        out += &format!("ack        {}\n", percentiles(&t.ack));
        if self.args.joiners > 0 {
            out += &format!(
                "joins      {} by {} joiner(s) into channels with {JOIN_HISTORY} stored messages, meanwhile; \
                 each, to the history: {}\n",
                self.joins.len(),
                self.args.joiners,
                percentiles(&self.joins),
            );
        }
        if let Some((cpu, rss)) = self.server_usage() {
            let per = self.cpu_per_delivery(self.server).unwrap_or_default();
            let writes = self.writes_per_delivery().map(|w| format!(", {w:.2} writes")).unwrap_or_default();
            out += &format!(
                "server     {cpu:.0}% of one core during the run ({per:.1} µs{writes} per delivery), peak memory {rss:.0} MiB\n"
            );
        }
        if let (Some(cpu), Some(per)) = (self.generator_cpu(), self.cpu_per_delivery(self.generator)) {
            out += &format!("generator  {cpu:.0}% of one core ({per:.1} µs per delivery)\n");
        }
        if let Some(steal) = self.steal {
            out += &format!(
                "host       {steal:.1}% of the machine's CPU time went to other guests of its hypervisor (steal)\n"
            );
        }
        out
    }

    /// What the comparison keeps of this run.
    fn point(&self) -> Point {
        let t = &self.tally;
        Point {
            rate: self.args.rate,
            delivered_per_second: self.per_second(t.received),
            p50_ms: t.delivery.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: t.delivery.value_at_quantile(0.99) as f64 / 1000.0,
            lost: t.lost() + t.duplicates,
            dropped: self.dropped,
            server_cpu: self.server_usage().map(|(cpu, _)| cpu),
            cpu_per_delivery_us: self.cpu_per_delivery(self.server),
            peak_mib: self.server_usage().map(|(_, rss)| rss),
            generator_cpu: self.generator_cpu(),
            steal: self.steal,
        }
    }

    fn markdown_row(&self) -> String {
        let (cpu, rss) = self.server_usage().map_or(("–".into(), "–".into()), |(cpu, rss)| {
            (format!("{cpu:.0}%"), format!("{rss:.0} MiB"))
        });
        let t = &self.tally;
        let per = self.cpu_per_delivery(self.server).map_or("–".into(), |us| format!("{us:.1} µs"));
        let generator = self.generator_cpu().map_or("–".into(), |cpu| format!("{cpu:.0}%"));
        format!(
            "| {} | {}×{} | {}×{}/s | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.args.clients,
            self.rooms(),
            self.args.room_size.min(self.args.clients),
            self.args.senders,
            self.args.rate,
            self.store(),
            self.per_second(t.sent),
            self.per_second(t.received),
            ms(t.delivery.value_at_quantile(0.5)),
            ms(t.delivery.value_at_quantile(0.99)),
            ms(t.delivery.max()),
            ms(t.ack.value_at_quantile(0.99)),
            t.lost(),
            cpu,
            per,
            rss,
            generator,
        )
    }
}

fn ms(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

fn percentiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    )
}

#[cfg(test)]
mod tests {
    use super::{pick, LastSeen};

    #[test]
    fn a_sender_s_numbers_must_come_once_each_in_order() {
        let mut seen = LastSeen::default();
        assert!(seen.in_order("bench1", 0));
        assert!(seen.in_order("bench2", 5));
        assert!(seen.in_order("bench1", 1));
        assert!(!seen.in_order("bench1", 1), "twice");
        assert!(!seen.in_order("bench2", 4), "out of order");
        assert!(seen.in_order("bench12", 0), "another sender, whose nick starts the same");
        assert!(seen.in_order("bench2", 6));
    }

    #[test]
    fn clients_are_spread_over_a_cluster_s_nodes_in_turn() {
        let nodes = "a:1,b:2,c:3";
        let picked: Vec<&str> = (0..5).map(|i| pick(nodes, i)).collect();
        assert_eq!(picked, ["a:1", "b:2", "c:3", "a:1", "b:2"]);
        assert_eq!(pick("only:1", 7), "only:1");
    }
}
