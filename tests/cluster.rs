//! Several nodes as one server (`CHATTR_CLUSTER=redis://…`): three `chattrd` nodes on
//! loopback ports, sharing Debian's `redis-server` (started here on a port of its own) and a
//! SurrealDB server (`ws://`), with users spread over them.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use crate::common::{member, Client, TestServer, WAIT};
use crate::surreal_server::Surreal;

/// A `redis-server` on a free port, keeping nothing on disk, stopped when dropped.
pub(crate) struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    pub(crate) async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { child: None, port };
        redis.run().await;
        redis
    }

    /// Starts (or starts again) the server on its port; ready when it answers PING.
    async fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--port"])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (scripts/bootstrap.sh installs it)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.ping().await {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "redis-server not ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else { return false };
        let mut answer = [0u8; 7];
        s.write_all(b"PING\r\n").await.is_ok()
            && s.read_exact(&mut answer).await.is_ok()
            && &answer == b"+PONG\r\n"
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Redis, a SurrealDB server and nodes on them.
struct Cluster {
    redis: Redis,
    surreal: Surreal,
}

impl Cluster {
    async fn start() -> Self {
        Self { redis: Redis::start().await, surreal: Surreal::start().await }
    }

    /// A node (in this process), named `name`.
    async fn node(&self, name: &str) -> TestServer {
        self.node_with(name, |_| {}).await
    }

    /// A node with settings of its own besides the cluster's.
    async fn node_with(&self, name: &str, adjust: impl FnOnce(&mut chattr::Config)) -> TestServer {
        TestServer::start_config(self.config(name, adjust)).await
    }

    /// The settings of a node named `name`, adjusted.
    fn config(&self, name: &str, adjust: impl FnOnce(&mut chattr::Config)) -> chattr::Config {
        let mut c = crate::common::test_config();
        c.cluster = Some(self.redis.url());
        c.node_name = Some(name.to_owned());
        c.node_lease = Duration::from_secs(2);
        c.metrics_token = Some("cluster-metrics".into());
        c.resume_grace = Duration::from_secs(2);
        c.db = self.surreal.url.clone();
        c.db_user = Some("root".into());
        c.db_pass = Some("root-pass".into());
        adjust(&mut c);
        c
    }

    async fn nodes<const N: usize>(&self) -> [TestServer; N] {
        let mut nodes = Vec::new();
        for i in 0..N {
            nodes.push(self.node(&format!("node-{i}")).await);
        }
        nodes.try_into().map_err(drop).expect("N nodes")
    }
}

/// Events up to and including the first `kind`, skipping others.
async fn until(c: &mut Client, kind: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    loop {
        let event = c.next_event().await;
        if event["type"] == kind && pred(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn users_on_three_nodes_share_channels_and_private_messages() {
    let cluster = Cluster::start().await;
    let [a, b, c] = cluster.nodes().await;
    let health = reqwest::get(b.url("/healthz")).await.unwrap().text().await.unwrap();
    assert!(health.starts_with("ok\nnode: node-1 (slot "), "{health}");
    assert!(health.contains("cluster: node-0, node-1, node-2"), "{health}");

    let mut ann = a.guest("ann").await;
    let mut ben = b.guest("ben").await;
    let mut cat = c.guest("cat").await;
    ann.join("#three").await;
    let members = ben.join("#three").await;
    assert!(member(&members, "ann").is_some(), "ben on node 1 sees ann of node 0: {members}");
    until(&mut ann, "joined", |e| e["nick"] == "ben").await;
    let members = cat.join("#three").await;
    assert!(member(&members, "ann").is_some() && member(&members, "ben").is_some());
    until(&mut ann, "joined", |e| e["nick"] == "cat").await;
    until(&mut ben, "joined", |e| e["nick"] == "cat").await;

    ben.say("#three", "hello from node 1").await;
    for c in [&mut ann, &mut cat, &mut ben] {
        let m = until(c, "message", |_| true).await;
        assert_eq!((m["from"].as_str(), m["text"].as_str()), (Some("ben"), Some("hello from node 1")));
    }

    // A private message crosses nodes, and so does its reply.
    cat.say("ann", "psst").await;
    let m = until(&mut ann, "message", |_| true).await;
    assert_eq!(
        (m["from"].as_str(), m["target"].as_str(), m["text"].as_str()),
        (Some("cat"), Some("ann"), Some("psst"))
    );
    until(&mut cat, "message", |e| e["text"] == "psst").await;
    ann.say("cat", "hi").await;
    until(&mut cat, "message", |e| e["from"] == "ann" && e["text"] == "hi").await;

    // Nicks are the cluster's: ben's is taken on node 2 as well, and a change is seen on node 0.
    let mut again = Client::connect(&c).await;
    again.send(json!({"type":"auth","nick":"ben"})).await;
    again.expect_error("nick_in_use").await;
    ben.cmd("/nick benjamin").await;
    until(&mut ann, "nick_changed", |e| e["old"] == "ben" && e["new"] == "benjamin").await;
    cat.cmd("/whois benjamin").await;
    let whois = until(&mut cat, "whois", |_| true).await;
    assert_eq!(whois["nick"], "benjamin");

    // Ids are the cluster's: the messages' ids all differ, and history on any node has them all.
    ann.say("#three", "from node 0").await;
    cat.say("#three", "from node 2").await;
    for c in [&mut ann, &mut ben, &mut cat] {
        // Sent at once from two nodes: the log orders them, the same way for everyone.
        let first = until(c, "message", |_| true).await;
        let second = until(c, "message", |_| true).await;
        let mut texts = [first["text"].as_str().unwrap(), second["text"].as_str().unwrap()];
        texts.sort_unstable();
        assert_eq!(texts, ["from node 0", "from node 2"]);
    }
    ben.send(json!({"type":"history","target":"#three"})).await;
    let history = until(&mut ben, "history", |_| true).await;
    let texts: Vec<&str> =
        history["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    // History is in id order; two messages sent in the same instant on two nodes may come
    // live in the other order (docs/scaling.md).
    assert_eq!(texts.len(), 3);
    assert_eq!(texts[0], "hello from node 1");
    let mut ids: Vec<u64> =
        history["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);

    // Each node reports its part: its own sessions and the messages it stored (so sums over
    // the nodes are the cluster's), the channels (all of them), its lease held, the log's
    // operations it applied and appended.
    let metrics = metrics_of(&c).await;
    let figure = |name: &str| figure(&metrics, name);
    assert_eq!(figure("chattr_sessions "), 1.0, "cat alone is on node 2: {metrics}");
    assert_eq!(figure("chattr_connections "), 1.0, "{metrics}");
    assert_eq!(figure("chattr_messages_total "), 2.0, "cat's two: {metrics}");
    assert_eq!(figure("chattr_channels "), 1.0, "{metrics}");
    assert_eq!(figure("chattr_cluster_up "), 1.0);
    assert!(figure("chattr_cluster_log_lag_seconds ") >= 0.0, "{metrics}");
    assert!(figure("chattr_cluster_log_applied_total ") >= 10.0, "{metrics}");
    assert!(figure("chattr_cluster_log_appended_total ") >= 3.0, "{metrics}");
    assert_eq!(figure("chattr_cluster_log_append_failures_total "), 0.0);

    // Quitting on one node is seen on the others, and frees the nick everywhere.
    cat.cmd("/quit bye").await;
    until(&mut ann, "quit", |e| e["nick"] == "cat").await;
    let _cat_again = a.guest("cat").await;
}

#[tokio::test]
async fn two_nodes_never_give_one_nick_to_two_sessions() {
    let cluster = Cluster::start().await;
    let [a, b] = cluster.nodes().await;
    for round in 0..20 {
        let nick = format!("racer{round}");
        let (mut one, mut two) = tokio::join!(Client::connect(&a), Client::connect(&b));
        tokio::join!(
            one.send(json!({"type":"auth","nick":nick})),
            two.send(json!({"type":"auth","nick":nick}))
        );
        let (first, second) = tokio::join!(one.next_event(), two.next_event());
        let mut kinds = [first["type"].as_str().unwrap(), second["type"].as_str().unwrap()];
        kinds.sort_unstable();
        assert_eq!(kinds, ["error", "welcome"], "round {round}: {first} / {second}");
        let refused = if first["type"] == "error" { &first } else { &second };
        assert_eq!(refused["code"], "nick_in_use");
    }

    // An app user's second login, on the other node, replaces the first.
    let token = a.token("dana").await;
    let mut first = Client::connect(&a).await;
    first.send(json!({"type":"auth","token":token})).await;
    first.expect("welcome").await;
    let token = b.token("dana").await;
    let mut second = Client::connect(&b).await;
    second.send(json!({"type":"auth","token":token})).await;
    assert_eq!(second.expect("welcome").await["nick"], "dana");
    let (_, close) = first.events_until_close().await;
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("session_replaced"));
}

#[tokio::test]
async fn moderation_on_one_node_holds_on_the_others_and_races_end_alike() {
    let cluster = Cluster::start().await;
    let [a, b, c] = cluster.nodes().await;
    let mut ann = a.guest("ann").await;
    let mut ben = b.guest("ben").await;
    let mut cat = c.guest("cat").await;
    ann.join("#mod").await;
    ben.join("#mod").await;
    cat.join("#mod").await;
    ann.cmd("/op #mod ben").await;
    until(&mut cat, "mode_changed", |e| e["modes"] == "+o" && e["args"][0] == "ben").await;

    // Two operators on two nodes flip the same mode at once, many times: every node ends with
    // the same modes.
    for _ in 0..10 {
        tokio::join!(ann.cmd("/mode #mod +m"), ben.cmd("/mode #mod -m"));
    }
    // Each op's commands are applied in the order sent: once a node has shown both ops' last
    // change, it has applied all of theirs (a read is answered from the node's copy).
    ann.cmd("/mode #mod +p").await;
    ben.cmd("/mode #mod +s").await;
    let mut finals = Vec::new();
    for c in [&mut ann, &mut ben, &mut cat] {
        let mut markers = Vec::new();
        while markers.len() < 2 {
            let e = until(c, "mode_changed", |e| e["modes"] == "+p" || e["modes"] == "+s").await;
            markers.push(e["modes"].clone());
        }
        c.cmd("/names #mod").await;
        finals.push(until(c, "members", |_| true).await["modes"].clone());
    }
    assert!(finals.iter().all(|m| *m == finals[0]), "{finals:?}");

    // A kick racing a message: the message reaches both others or neither.
    tokio::join!(ben.cmd("/kick #mod cat racing"), cat.say("#mod", "last words"));
    ann.say("#mod", "after the kick").await;
    let mut saw = Vec::new();
    for c in [&mut ann, &mut ben] {
        let mut got = false;
        loop {
            let e = c.next_event().await;
            if e["type"] == "message" && e["text"] == "last words" {
                got = true;
            }
            if e["type"] == "message" && e["text"] == "after the kick" {
                break;
            }
        }
        saw.push(got);
    }
    assert_eq!(saw[0], saw[1], "ann and ben saw the race differently");

    // A ban set on node 0 keeps cat (node 2) out.
    ann.cmd("/ban #mod cat").await;
    until(&mut ann, "banned", |e| e["nick"] == "cat").await;
    cat.cmd("/join #mod").await;
    until(&mut cat, "error", |e| e["code"] == "banned").await;
}

#[tokio::test]
async fn a_killed_node_s_users_leave_within_the_lease_and_the_others_chat_on() {
    let cluster = Cluster::start().await;
    let dir = crate::process::tempdir();
    let env = [
        ("CHATTR_CLUSTER", cluster.redis.url()),
        ("CHATTR_DB", cluster.surreal.url.clone()),
        ("CHATTR_DB_USER", "root".into()),
        ("CHATTR_DB_PASS", "root-pass".into()),
        ("CHATTR_NODE_LEASE", "2s".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut env = env.clone();
        let name = format!("proc-{i}");
        env.push(("CHATTR_NODE_NAME", &name));
        nodes.push(
            crate::process::Process::start_with(&dir.join(format!("n{i}")), &env)
                .await
                .expect("a node starts"),
        );
    }
    let mut ann = crate::process::connect(&nodes[0].addr, "ann").await;
    let mut ben = crate::process::connect(&nodes[1].addr, "ben").await;
    let mut cat = crate::process::connect(&nodes[2].addr, "cat").await;
    for c in [&mut ann, &mut ben, &mut cat] {
        c.join("#k").await;
    }
    until(&mut ann, "joined", |e| e["nick"] == "cat").await;
    cat.say("#k", "acknowledged before the end").await;
    until(&mut cat, "message", |e| e["text"] == "acknowledged before the end").await;

    nodes[2].kill().await;
    let killed = tokio::time::Instant::now();
    let quit = until(&mut ann, "quit", |e| e["nick"] == "cat").await;
    let took = killed.elapsed();
    // The bound: the lease runs out (2 s after the last renewal), then the key must stay
    // missing for another lease, seen at the checks (a third of a lease apart): 5.3 s.
    assert!(took < Duration::from_millis(5_500), "cat left after {took:?}, past the bound of 2⅔ leases");
    assert_eq!(quit["reason"], "their server went away");
    until(&mut ben, "quit", |e| e["nick"] == "cat").await;

    // The others chat on; cat's nick is free again; what cat was acknowledged is kept.
    ben.say("#k", "still here").await;
    until(&mut ann, "message", |e| e["text"] == "still here").await;
    let mut cat_again = crate::process::connect(&nodes[0].addr, "cat").await;
    cat_again.cmd("/join #k").await;
    let history = until(&mut cat_again, "history", |_| true).await;
    assert!(history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["text"] == "acknowledged before the end"));
}

#[tokio::test]
async fn potato_celery_and_the_app_s_api_act_across_nodes() {
    const PW: &str = "a-long-enough-password";
    let cluster = Cluster::start().await;
    let [a, b, c] = cluster.nodes().await;

    // Registered on node 0: the nick is taken on node 1.
    let mut ann = a.guest("ann").await;
    ann.register(PW).await;
    let mut other = b.guest("someone").await;
    other.cmd("/nick ann").await;
    until(&mut other, "error", |e| e["code"] == "nick_in_use").await;

    // Ghosting from node 1 ends the session on node 0; identifying there takes the nick.
    let mut again = b.guest("ann-new").await;
    again.cmd(&format!("/potato disconnect ann {PW}")).await;
    let (_, close) = ann.events_until_close().await;
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("ghosted"));
    assert_eq!(again.notice("Potato").await, "ann was disconnected");
    let events = again.identify("ann", PW).await;
    assert!(events.iter().any(|e| e["type"] == "nick_changed" && e["new"] == "ann"), "{events:?}");
    again.nick = "ann".into();

    // Identifying on node 2 as an account someone uses on node 1 moves them off its nick.
    let mut third = c.guest("ann-third").await;
    third.identify("ann", PW).await;
    until(&mut again, "nick_changed", |e| e["old"] == "ann").await;
    third.cmd("/quit").await;

    // Celery on node 1 gives op to someone on node 2, for everyone to see.
    let mut bob = c.guest("bob").await;
    bob.register(PW).await;
    again.join("#reg").await;
    bob.join("#reg").await;
    again.cmd("/celery register #reg").await;
    until(&mut bob, "registration", |e| e["founder"] == "potato:ann").await;
    again.cmd("/celery op #reg bob").await;
    until(&mut bob, "mode_changed", |e| e["modes"] == "+o" && e["args"][0] == "bob").await;

    // The app's API on node 0 kicks bob (node 2) out of #reg, seen on node 1 too.
    let (status, _) = a
        .post_api(
            "/api/channels/reg/kick",
            Some(&format!("Bearer {}", crate::common::SECRET)),
            &json!({"nick":"bob","reason":"by the app"}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    until(&mut bob, "kicked", |e| e["nick"] == "bob").await;
    until(&mut again, "kicked", |e| e["nick"] == "bob").await;
}

#[tokio::test]
async fn the_app_hears_of_each_event_once_from_the_node_it_happened_on() {
    let (url, mut received) = crate::webhooks::endpoint(0, None).await;
    let cluster = Cluster::start().await;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let url = url.clone();
        nodes.push(cluster.node_with(&format!("hooked-{i}"), |c| c.webhook_urls = vec![url]).await);
    }
    let mut ann = nodes[0].guest("ann").await;
    let _ben = nodes[1].guest("ben").await;
    ann.join("#hooks").await;
    ann.say("#hooks", "heard once").await;
    until(&mut ann, "message", |e| e["text"] == "heard once").await;
    // Each node's deliveries go out in order: once a login on each node has been heard of,
    // everything before it has been.
    let mut sentinels = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        sentinels.push(node.guest(&format!("sentinel{i}")).await);
    }
    let mut events = Vec::new();
    while !(0..3).all(|i| events.iter().any(|e: &serde_json::Value| e["nick"] == format!("sentinel{i}"))) {
        events.push(crate::webhooks::next_event(&mut received).await);
    }
    let count = |kind: &str, key: &str, value: &str| {
        events.iter().filter(|e| e["event"] == kind && e[key] == value).count()
    };
    assert_eq!(count("connect", "nick", "ann"), 1, "{events:?}");
    assert_eq!(count("connect", "nick", "ben"), 1, "{events:?}");
    assert_eq!(count("join", "nick", "ann"), 1, "{events:?}");
    assert_eq!(count("message", "text", "heard once"), 1, "{events:?}");
}

#[tokio::test]
async fn a_node_that_joins_later_knows_who_is_online_and_what_the_channels_are() {
    let cluster = Cluster::start().await;
    let first = cluster.node("early").await;
    let mut ann = first.guest("ann").await;
    let mut ben = first.guest("ben").await;
    ann.join("#late").await;
    ben.join("#late").await;
    ann.cmd("/topic #late set before the newcomer").await;
    ann.cmd("/mode #late +m").await;
    ann.cmd("/voice #late ben").await;
    ann.cmd("/ban #late mallory!*@*").await;
    ann.cmd("/invite ben #late").await;
    until(&mut ben, "banned", |_| true).await;
    // An invite waiting to be used is part of the state handed over.
    let mut dan = first.guest("dan").await;
    ann.cmd("/invite dan #late").await;
    until(&mut dan, "invited", |e| e["channel"] == "#late").await;

    let second = cluster.node("late").await;
    let mut cat = second.guest("cat").await;
    let members = cat.join("#late").await;
    assert_eq!(member(&members, "ann").map(|m| m["op"].clone()), Some(json!(true)), "{members}");
    assert_eq!(member(&members, "ben").map(|m| m["voice"].clone()), Some(json!(true)), "{members}");
    assert!(members["modes"].as_str().unwrap().contains('m'), "{members}");
    cat.cmd("/topic #late").await;
    assert_eq!(until(&mut cat, "topic", |_| true).await["topic"], "set before the newcomer");
    let mut taken = Client::connect(&second).await;
    taken.send(json!({"type":"auth","nick":"ann"})).await;
    taken.expect_error("nick_in_use").await;
    let mut mallory = second.guest("mallory").await;
    mallory.cmd("/join #late").await;
    until(&mut mallory, "error", |e| e["code"] == "banned").await;

    // And the log goes on from there, both ways.
    until(&mut ann, "joined", |e| e["nick"] == "cat").await;
    ben.say("#late", "voiced, so heard").await;
    until(&mut cat, "message", |e| e["text"] == "voiced, so heard").await;
    cat.cmd("/quit").await;
    until(&mut ann, "quit", |e| e["nick"] == "cat").await;
}

#[tokio::test]
async fn redis_restarted_mid_chat_the_nodes_resynchronise_and_chat_goes_on() {
    let mut cluster = Cluster::start().await;
    let [a, b, c] = cluster.nodes().await;
    let mut ann = a.guest("ann").await;
    let mut ben = b.guest("ben").await;
    let mut cat = c.guest("cat").await;
    for c in [&mut ann, &mut ben, &mut cat] {
        c.join("#r").await;
    }
    until(&mut ann, "joined", |e| e["nick"] == "cat").await;
    ben.say("#r", "before").await;
    until(&mut cat, "message", |e| e["text"] == "before").await;

    // Redis goes away: nothing is acknowledged meanwhile.
    cluster.redis.child.take().unwrap().kill().await.unwrap();
    ann.say("#r", "while redis is down").await;
    let refused = until(&mut ann, "error", |_| true).await;
    assert!(refused["message"].as_str().unwrap().contains("cluster"), "{refused}");
    // What only looks is answered from the node's copy all the same.
    ben.cmd("/names #r").await;
    assert_eq!(until(&mut ben, "members", |_| true).await["members"].as_array().map(Vec::len), Some(3));

    // It comes back empty: the nodes notice, one hands its state to the others, and each
    // session is shown where it stands (a welcome, then its channels).
    cluster.redis.run().await;
    for c in [&mut ann, &mut ben, &mut cat] {
        let welcome = until(c, "welcome", |_| true).await;
        assert_eq!(welcome["channels"], json!(["#r"]), "{}: {welcome}", c.nick);
    }
    ann.say("#r", "after the restart").await;
    for c in [&mut ben, &mut cat, &mut ann] {
        until(c, "message", |e| e["text"] == "after the restart").await;
    }
    let mut lists = Vec::new();
    for c in [&mut ann, &mut ben, &mut cat] {
        c.cmd("/names #r").await;
        let members = until(c, "members", |_| true).await;
        let mut nicks: Vec<String> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["nick"].as_str().unwrap().to_owned())
            .collect();
        nicks.sort();
        lists.push(nicks);
    }
    assert!(lists.iter().all(|l| *l == ["ann", "ben", "cat"]), "{lists:?}");
    // Each node reports itself healthy again once it has renewed its lease.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health = reqwest::get(c.url("/healthz")).await.unwrap().text().await.unwrap();
        if health.contains("cluster: node-0, node-1, node-2") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_session_dropped_on_one_node_is_resumed_on_another_and_ends_after_the_grace() {
    let cluster = Cluster::start().await;
    let [a, b, c] = cluster.nodes().await;
    let mut ann = Client::connect(&a).await;
    ann.send(json!({"type":"auth","nick":"ann"})).await;
    let secret = ann.expect("welcome").await["resume"].as_str().unwrap().to_owned();
    ann.nick = "ann".into();
    let mut ben = b.guest("ben").await;
    ann.join("#res").await;
    ben.join("#res").await;
    ann.cmd("/op #res ben").await;
    until(&mut ben, "mode_changed", |e| e["args"][0] == "ben").await;

    // ann's connection to node 0 drops; nobody sees her quit, and she comes back on node 1.
    ann.close().await;
    let mut back = Client::connect(&b).await;
    back.send(json!({"type":"auth","nick":"ann","resume":secret})).await;
    let welcome = back.expect("welcome").await;
    assert_eq!(
        (welcome["resumed"].as_bool(), welcome["nick"].as_str()),
        (Some(true), Some("ann")),
        "{welcome}"
    );
    assert_eq!(welcome["channels"], json!(["#res"]));
    let members = until(&mut back, "members", |_| true).await;
    assert_eq!(member(&members, "ann").map(|m| m["op"].clone()), Some(json!(true)), "still op: {members}");
    back.nick = "ann".into();
    ben.say("#res", "welcome back").await;
    until(&mut back, "message", |e| e["text"] == "welcome back").await;
    let seen = until(&mut ben, "message", |e| e["text"] == "welcome back").await;
    assert_eq!(seen["from"], "ben");

    // Taken over from node 2 while open on node 1: that connection is replaced.
    let mut again = Client::connect(&c).await;
    again.send(json!({"type":"auth","nick":"ann","resume":secret})).await;
    assert_eq!(again.expect("welcome").await["resumed"], true);
    let (_, close) = back.events_until_close().await;
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("session_replaced"));
    again.nick = "ann".into();
    again.say("#res", "from node 2").await;
    until(&mut ben, "message", |e| e["text"] == "from node 2" && e["from"] == "ann").await;

    // Dropped and not resumed within the grace: the session ends, for everyone.
    again.close().await;
    let quit = until(&mut ben, "quit", |e| e["nick"] == "ann").await;
    assert_eq!(quit["reason"], "connection closed");
}

/// What `node`'s `/metrics` says.
async fn metrics_of(node: &TestServer) -> String {
    let metrics = reqwest::Client::new().get(node.url("/metrics")).bearer_auth("cluster-metrics");
    metrics.send().await.unwrap().text().await.unwrap()
}

/// The figure of the series `name` (its name and a space) in `metrics`.
fn figure(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

#[tokio::test]
async fn a_node_that_shuts_down_tells_the_others_at_once() {
    let cluster = Cluster::start().await;
    // Leases far longer than the test waits: only the stopping node's word can end its users.
    let long = |c: &mut chattr::Config| {
        c.node_lease = Duration::from_secs(120);
        c.resume_grace = Duration::from_secs(120);
    };
    let stays = cluster.node_with("stays", long).await;
    let mut stops = cluster.node_with("stops", long).await;
    let mut ann = stays.guest("ann").await;
    let mut bob = stops.guest("bob").await;
    let mut cy = stops.guest("cy").await;
    ann.join("#s").await;
    bob.join("#s").await;
    cy.join("#s").await;
    until(&mut ann, "joined", |e| e["nick"] == "cy").await;
    // cy's connection drops: the stopping node holds the session for a resume.
    cy.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while figure(&metrics_of(&stops).await, "chattr_held_sessions ") != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "cy's session was never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = reqwest::get(stays.url("/healthz")).await.unwrap().text().await.unwrap();
    assert!(health.contains("cluster: stays, stops"), "{health}");

    stops.stop().await.unwrap();
    let mut quits = Vec::new();
    while quits.len() < 2 {
        let quit = until(&mut ann, "quit", |_| true).await;
        quits.push((quit["nick"].as_str().unwrap().to_owned(), quit["reason"].as_str().unwrap().to_owned()));
    }
    quits.sort();
    assert_eq!(quits[0].0, "bob", "{quits:?}");
    assert_eq!(quits[1], ("cy".into(), "their server shut down".into()), "the held session ends too");
    // Its lease is given back: the others no longer count it, and its users' nicks are free.
    let health = reqwest::get(stays.url("/healthz")).await.unwrap().text().await.unwrap();
    assert!(health.contains("cluster: stays\n") || health.ends_with("cluster: stays"), "{health}");
    let mut bob_again = stays.guest("bob").await;
    bob_again.join("#s").await;
}

#[tokio::test]
async fn a_node_whose_settings_differ_from_the_running_clusters_does_not_join() {
    let cluster = Cluster::start().await;
    let mut first = cluster.node("first").await;
    let other = cluster.config("other", |c| {
        c.history_on_join = 7;
        c.opers = vec!["potato:mallory".into()];
    });
    let Err(refused) = chattr::AppState::new(other).await else {
        panic!("a node with other rules joined the cluster")
    };
    let refused = refused.to_string();
    assert!(refused.contains("history_on_join: here \"7\""), "{refused}");
    assert!(refused.contains("opers: here \"potato:mallory\""), "{refused}");
    // The same settings join; once no node runs, the next to start sets the cluster's.
    let mut second = cluster.node("second").await;
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    let third = cluster.node_with("third", |c| c.history_on_join = 7).await;
    let health = reqwest::get(third.url("/healthz")).await.unwrap().text().await.unwrap();
    assert!(health.starts_with("ok\nnode: third"), "{health}");
}

#[tokio::test]
async fn stats_count_the_node_s_own_connections_and_the_whole_chat_s_sessions() {
    let cluster = Cluster::start().await;
    // Long enough a grace that ann's held session outlasts the test.
    let settings = |c: &mut chattr::Config| {
        c.opers = vec!["app:admin".into()];
        c.resume_grace = Duration::from_secs(120);
    };
    let a = cluster.node_with("node-0", settings).await;
    let b = cluster.node_with("node-1", settings).await;
    let mut admin = a.user("admin").await;
    assert_eq!(admin.expect("oper_status").await["oper"], true);
    admin.join("#count").await;
    let mut on_b = Vec::new();
    for nick in ["bob", "cy"] {
        let mut guest = b.guest(nick).await;
        guest.join("#count").await;
        // Node 0 has applied the join: it knows the session.
        until(&mut admin, "joined", |e| e["nick"] == nick).await;
        on_b.push(guest);
    }
    let mut ann = Client::connect(&a).await;
    ann.send(json!({"type":"auth","nick":"ann"})).await;
    ann.expect("welcome").await;
    ann.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while figure(&metrics_of(&a).await, "chattr_held_sessions") < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "ann's session is not held on node 0");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Node 0 counts admin's connection alone (ann's is gone, her session held; bob's and cy's
    // are node 1's), and the chat's four sessions.
    admin.cmd("/stats").await;
    let stats = admin.expect("stats").await;
    assert_eq!((stats["connections"].as_u64(), stats["sessions"].as_u64()), (Some(1), Some(4)), "{stats}");
    assert_eq!((stats["channels"].as_u64(), stats["opers"].as_u64()), (Some(1), Some(1)), "{stats}");
}
