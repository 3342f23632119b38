//! The core's rules without a socket or a store: every channel command is run through
//! [`Hub::apply`] (and messages through [`Hub::prepare_message`] and [`Hub::deliver`]) as the
//! session runs them, against guests whose outboxes are plain in-memory queues, and the test
//! reads back what each party was sent.
//!
//! The fixture is one channel, `#room`, with an operator (oscar), a voiced member (victor), a
//! plain member (mia), a member banned while inside (bob) and a member others act on (tara);
//! nora and ivy are online but outside it. Every test starts from a fresh fixture.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use super::*;

const ROOM: &str = "#room";

fn settings() -> HubSettings {
    HubSettings {
        limits: Limits {
            max_text_bytes: 4000,
            max_frame_bytes: 16384,
            burst: 10,
            per_second: 2,
            allowance: None,
        },
        max_channels: 20,
        history_on_join: 10,
        nick_grace: Duration::from_secs(60),
        ops_see_real_host: false,
        resume_grace: Duration::ZERO,
        default_channels: Vec::new(),
        max_held_per_address: 0,
        opers: Vec::new(),
    }
}

struct User {
    nick: &'static str,
    conn: ConnId,
    rx: OutboxQueue,
}

struct Net {
    hub: Arc<Hub>,
    users: Vec<User>,
}

impl Net {
    fn new() -> Self {
        Self { hub: Hub::new(settings(), Cloaker::new([7; 32])), users: Vec::new() }
    }

    /// Logs a guest in from an address of its own (bans on an online nick name its cloak) and
    /// checks that its first event is its `welcome`.
    fn connect(&mut self, nick: &'static str) {
        let n = u8::try_from(self.users.len() + 1).unwrap();
        let (outbox, rx) = Outbox::new(1000, SendBudget::new(1 << 20, 1 << 30));
        let identity =
            Identity { nick: nick.into(), account: None, ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)) };
        let attached =
            self.hub.connect(identity, outbox, self.hub.fresh_session()).expect("a free guest nick logs in");
        self.users.push(User { nick, conn: attached.conn, rx });
        assert_eq!(self.kinds(nick), ["welcome"]);
    }

    fn user(&mut self, nick: &str) -> &mut User {
        self.users.iter_mut().find(|u| u.nick == nick).unwrap_or_else(|| panic!("no user {nick}"))
    }

    fn conn(&mut self, nick: &str) -> ConnId {
        self.user(nick).conn
    }

    /// Runs a command as the session does: a join of a channel nobody is in asks for its
    /// history first, which is empty here. Answers the error code of a refusal.
    fn run(&mut self, nick: &str, command: Command) -> std::result::Result<(), ErrorCode> {
        let conn = self.conn(nick);
        let mut history = None;
        for _ in 0..3 {
            match self.hub.apply(conn, command.clone(), history.take()).map_err(|e| e.code)? {
                Effect::Done => return Ok(()),
                Effect::NeedHistory(_) => history = Some(Vec::new()),
                Effect::Save(key, _) => panic!("no channel is registered here, yet {key} was saved"),
            }
        }
        panic!("{command:?} kept asking for history");
    }

    /// Sends a message to a channel or a nick: checked and numbered, then (the store being
    /// taken as having kept it) delivered.
    fn say(&mut self, nick: &str, target: &str, text: &str) -> std::result::Result<(), ErrorCode> {
        self.say_txn(nick, target, text, None)
    }

    fn say_txn(
        &mut self,
        nick: &str,
        target: &str,
        text: &str,
        txn: Option<&str>,
    ) -> std::result::Result<(), ErrorCode> {
        let conn = self.conn(nick);
        match self.hub.prepare_message(conn, target, text, false, txn).map_err(|e| e.code)? {
            Prepared::New(message) => self.hub.deliver(&[message]),
            Prepared::Repeat => {}
        }
        Ok(())
    }

    /// The text of everything queued for `nick` since the last look.
    fn texts(&mut self, nick: &str) -> Vec<String> {
        let user = self.user(nick);
        std::iter::from_fn(|| user.rx.try_recv()).map(|e| e.json().as_str().to_owned()).collect()
    }

    /// Everything queued for `nick` since the last look, decoded.
    fn json(&mut self, nick: &str) -> Vec<Value> {
        self.texts(nick).iter().map(|text| serde_json::from_str(text).expect("events are JSON")).collect()
    }

    /// Read from their text: an event is read with its `type` first, as it is written (a
    /// `Value` would sort its keys).
    fn events(&mut self, nick: &str) -> Vec<ServerEvent> {
        self.texts(nick).iter().map(|text| serde_json::from_str(text).expect("a server event")).collect()
    }

    /// The `type`s of the events queued for `nick`.
    fn kinds(&mut self, nick: &str) -> Vec<String> {
        self.json(nick)
            .iter()
            .map(|v| v["type"].as_str().expect("every event has a type").to_owned())
            .collect()
    }

    fn drain(&mut self) {
        for user in &mut self.users {
            while user.rx.try_recv().is_some() {}
        }
    }

    /// Whether `nick` is in the channel, as the channel's member list says.
    fn is_member(&mut self, nick: &str, channel: &str) -> bool {
        let conn = self.conn(nick);
        let st = self.hub.lock();
        st.channels.get(&fold(channel)).is_some_and(|ch| ch.members.contains_key(&conn))
    }
}

/// The channel members of the fixture, and the two users outside it.
const MEMBERS: [&str; 5] = ["oscar", "victor", "mia", "bob", "tara"];
const OUTSIDERS: [&str; 2] = ["nora", "ivy"];

fn room() -> Net {
    let mut net = Net::new();
    for nick in MEMBERS.iter().chain(&OUTSIDERS) {
        net.connect(nick);
    }
    for nick in MEMBERS {
        net.run(nick, join(ROOM)).unwrap();
    }
    net.run("oscar", voice("victor")).unwrap();
    net.run("oscar", ban("bob!*@*")).unwrap();
    // A ban nobody is under, for `/unban` to lift.
    net.run("oscar", ban("zed!*@*")).unwrap();
    net.drain();
    net
}

fn join(channel: &str) -> Command {
    Command::Join { channel: channel.into(), key: None }
}

fn join_key(key: &str) -> Command {
    Command::Join { channel: ROOM.into(), key: Some(key.into()) }
}

fn part() -> Command {
    Command::Part { channel: ROOM.into(), reason: Some("bye".into()) }
}

fn topic(text: &str) -> Command {
    Command::Topic { channel: ROOM.into(), topic: Some(text.into()) }
}

fn kick(nick: &str) -> Command {
    Command::Kick { channel: ROOM.into(), nick: nick.into(), reason: Some("out".into()) }
}

fn ban(mask: &str) -> Command {
    Command::Ban { channel: ROOM.into(), mask: mask.into() }
}

fn unban(mask: &str) -> Command {
    Command::Unban { channel: ROOM.into(), mask: mask.into() }
}

fn op(nick: &str) -> Command {
    Command::Op { channel: ROOM.into(), nick: nick.into() }
}

fn deop(nick: &str) -> Command {
    Command::Deop { channel: ROOM.into(), nick: nick.into() }
}

fn voice(nick: &str) -> Command {
    Command::Voice { channel: ROOM.into(), nick: nick.into() }
}

fn devoice(nick: &str) -> Command {
    Command::Devoice { channel: ROOM.into(), nick: nick.into() }
}

fn mode(modes: &str, args: &[&str]) -> Command {
    Command::Mode {
        channel: ROOM.into(),
        modes: Some(modes.into()),
        args: args.iter().map(|&a| a.to_owned()).collect(),
    }
}

fn invite(nick: &str) -> Command {
    Command::Invite { nick: nick.into(), channel: ROOM.into() }
}

/// Who acts, by their standing in `#room`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Op,
    Voiced,
    Member,
    NonMember,
    Banned,
}

const ROLES: [Role; 5] = [Role::Op, Role::Voiced, Role::Member, Role::NonMember, Role::Banned];

impl Role {
    fn nick(self) -> &'static str {
        match self {
            Role::Op => "oscar",
            Role::Voiced => "victor",
            Role::Member => "mia",
            Role::NonMember => "nora",
            Role::Banned => "bob",
        }
    }
}

type Outcome = std::result::Result<(), ErrorCode>;

/// What an operator-only command answers each role: only the operator may, members are not
/// operators, and someone outside is not in the channel at all.
fn ops_only(role: Role) -> Outcome {
    match role {
        Role::Op => Ok(()),
        Role::Voiced | Role::Member | Role::Banned => Err(ErrorCode::NotOp),
        Role::NonMember => Err(ErrorCode::NotOnChannel),
    }
}

/// The commands only operators may use, each on a fresh fixture, with the nick of a member
/// it changes (so a refused one can be seen to have changed nothing).
fn op_commands() -> Vec<(&'static str, Command)> {
    vec![
        ("kick", kick("tara")),
        ("ban", ban("tara")),
        ("unban", unban("zed!*@*")),
        ("op", op("tara")),
        ("deop", deop("oscar")),
        ("voice", voice("tara")),
        ("devoice", devoice("victor")),
        ("mode +m", mode("+m", &[])),
        ("mode +i", mode("+i", &[])),
        ("mode +k", mode("+k", &["sesame"])),
        ("mode +l", mode("+l", &["10"])),
        ("mode -t", mode("-t", &[])),
        ("mode +s", mode("+s", &[])),
        ("mode +p", mode("+p", &[])),
        ("mode +o", mode("+o", &["tara"])),
        ("mode +v", mode("+v", &["tara"])),
        ("mode +b", mode("+b", &["tara"])),
        ("mode -b", mode("-b", &["zed!*@*"])),
    ]
}

#[test]
fn operator_commands_are_for_operators_and_a_refusal_sends_and_changes_nothing() {
    for (name, command) in op_commands() {
        for role in ROLES {
            let mut net = room();
            let before = net.hub.lock().channels[&fold(ROOM)].clone();
            let got = net.run(role.nick(), command.clone());
            assert_eq!(got, ops_only(role), "{name} by {role:?}");
            let everyone: Vec<&str> = MEMBERS.iter().chain(&OUTSIDERS).copied().collect();
            if got.is_err() {
                let after = net.hub.lock().channels[&fold(ROOM)].clone();
                assert_eq!(after.members, before.members, "{name} by {role:?} changed roles");
                assert_eq!(after.modes, before.modes, "{name} by {role:?} changed modes");
                assert_eq!(after.bans.len(), before.bans.len(), "{name} by {role:?} changed bans");
                for nick in everyone {
                    assert_eq!(net.kinds(nick), Vec::<String>::new(), "{name} by {role:?}: {nick} was told");
                }
            } else {
                // An operator's change is announced to every member, and to nobody outside.
                let expected = match name {
                    "kick" => "kicked",
                    "ban" | "mode +b" => "banned",
                    "unban" | "mode -b" => "unbanned",
                    _ => "mode_changed",
                };
                for nick in MEMBERS {
                    assert_eq!(net.kinds(nick), [expected], "{name}: {nick}");
                }
                for nick in OUTSIDERS {
                    assert_eq!(net.kinds(nick), Vec::<String>::new(), "{name}: {nick} is outside");
                }
            }
        }
    }
}

#[test]
fn member_commands_matrix() {
    // (what, mode set first by the operator, command, outcome per role in ROLES order)
    use ErrorCode::*;
    let ok = Ok(());
    let table: Vec<(&str, Option<Command>, Command, [Outcome; 5])> = vec![
        ("topic under +t", None, topic("hi"), [ok, Err(NotOp), Err(NotOp), Err(NotOnChannel), Err(NotOp)]),
        ("topic under -t", Some(mode("-t", &[])), topic("hi"), [ok, ok, ok, Err(NotOnChannel), ok]),
        ("invite under -i", None, invite("ivy"), [ok, ok, ok, Err(NotOnChannel), ok]),
        (
            "invite under +i",
            Some(mode("+i", &[])),
            invite("ivy"),
            [ok, Err(NotOp), Err(NotOp), Err(NotOnChannel), Err(NotOp)],
        ),
        ("part", None, part(), [ok, ok, ok, Err(NotOnChannel), ok]),
        (
            "join",
            None,
            join(ROOM),
            [Err(AlreadyOnChannel), Err(AlreadyOnChannel), Err(AlreadyOnChannel), ok, Err(AlreadyOnChannel)],
        ),
        ("topic query", None, Command::Topic { channel: ROOM.into(), topic: None }, [ok; 5]),
        ("names", None, Command::Names { channel: ROOM.into() }, [ok; 5]),
        ("mode query", None, Command::Mode { channel: ROOM.into(), modes: None, args: Vec::new() }, [ok; 5]),
        ("ban list", None, mode("+b", &[]), [ok; 5]),
        (
            "-b without a mask",
            None,
            mode("-b", &[]),
            [Err(BadArguments), Err(NotOp), Err(NotOp), Err(NotOnChannel), Err(NotOp)],
        ),
    ];
    for (what, setup, command, outcomes) in table {
        for (role, expected) in ROLES.into_iter().zip(outcomes) {
            let mut net = room();
            if let Some(setup) = setup.clone() {
                net.run("oscar", setup).unwrap();
            }
            assert_eq!(net.run(role.nick(), command.clone()), expected, "{what} by {role:?}");
        }
    }
}

#[test]
fn who_may_speak_in_a_channel() {
    use ErrorCode::*;
    let ok = Ok(());
    // (channel moderated?, outcome per role in ROLES order)
    let table: [(bool, [Outcome; 5]); 2] = [
        (false, [ok, ok, ok, Err(NotOnChannel), Err(Banned)]),
        (true, [ok, ok, Err(CannotSend), Err(NotOnChannel), Err(Banned)]),
    ];
    for (moderated, outcomes) in table {
        for (role, expected) in ROLES.into_iter().zip(outcomes) {
            let mut net = room();
            if moderated {
                net.run("oscar", mode("+m", &[])).unwrap();
                net.drain();
            }
            let got = net.say(role.nick(), ROOM, "hello");
            assert_eq!(got, expected, "+m {moderated}: {role:?}");
            for nick in MEMBERS.iter().chain(&OUTSIDERS).copied() {
                let told = got.is_ok() && MEMBERS.contains(&nick);
                let want: &[&str] = if told { &["message"] } else { &[] };
                assert_eq!(net.kinds(nick), want, "+m {moderated}: {role:?} spoke, {nick} heard");
            }
        }
    }
}

/// What, the operator's setup, whether nora is invited first, the key she gives, the outcome.
type JoinCase = (&'static str, Vec<Command>, bool, Option<&'static str>, Outcome);

#[test]
fn join_refusals_by_mode_and_invite() {
    use ErrorCode::*;
    let table: Vec<JoinCase> = vec![
        ("open", vec![], false, None, Ok(())),
        ("banned", vec![ban("nora")], false, None, Err(Banned)),
        ("banned by mask", vec![ban("nor*")], false, None, Err(Banned)),
        ("banned and invited", vec![ban("nora")], true, None, Err(Banned)),
        ("+i", vec![mode("+i", &[])], false, None, Err(InviteOnly)),
        ("+i invited", vec![mode("+i", &[])], true, None, Ok(())),
        ("+k no key", vec![mode("+k", &["sesame"])], false, None, Err(BadKey)),
        ("+k wrong key", vec![mode("+k", &["sesame"])], false, Some("open"), Err(BadKey)),
        ("+k right key", vec![mode("+k", &["sesame"])], false, Some("sesame"), Ok(())),
        ("+k invited", vec![mode("+k", &["sesame"])], true, None, Ok(())),
        ("+l full", vec![mode("+l", &["5"])], false, None, Err(ChannelFull)),
        ("+l full and invited", vec![mode("+l", &["5"])], true, None, Err(ChannelFull)),
        ("+l room left", vec![mode("+l", &["6"])], false, None, Ok(())),
        ("+ik with key, no invite", vec![mode("+ik", &["sesame"])], false, Some("sesame"), Err(InviteOnly)),
        ("-l lifts the limit", vec![mode("+l", &["5"]), mode("-l", &[])], false, None, Ok(())),
        ("-k lifts the key", vec![mode("+k", &["sesame"]), mode("-k", &[])], false, None, Ok(())),
        ("unbanned", vec![ban("nora"), unban("nora")], false, None, Ok(())),
    ];
    for (what, setup, invited, key, expected) in table {
        let mut net = room();
        for command in setup {
            net.run("oscar", command).unwrap_or_else(|e| panic!("{what}: setup refused with {e:?}"));
        }
        if invited {
            net.run("oscar", invite("nora")).unwrap();
        }
        net.drain();
        let command = key.map_or_else(|| join(ROOM), join_key);
        assert_eq!(net.run("nora", command), expected, "{what}");
        assert_eq!(net.is_member("nora", ROOM), expected.is_ok(), "{what}");
        if expected.is_err() {
            assert_eq!(net.kinds("nora"), Vec::<String>::new(), "{what}: a refused joiner is sent nothing");
            assert_eq!(net.kinds("oscar"), Vec::<String>::new(), "{what}: members see no join");
        }
    }
}

#[test]
fn an_invite_is_used_up_by_joining() {
    let mut net = room();
    net.run("oscar", mode("+i", &[])).unwrap();
    net.run("oscar", invite("nora")).unwrap();
    net.run("nora", join(ROOM)).unwrap();
    net.run("nora", part()).unwrap();
    assert_eq!(net.run("nora", join(ROOM)), Err(ErrorCode::InviteOnly));
}

#[test]
fn joining_tells_the_channel_and_sends_the_joiner_its_state() {
    let mut net = room();
    net.run("nora", join(ROOM)).unwrap();
    assert_eq!(net.kinds("nora"), ["joined", "members", "registration", "history"]);
    for nick in MEMBERS {
        let events = net.events(nick);
        assert!(
            matches!(&events[..], [ServerEvent::Joined { channel, nick, .. }] if channel == ROOM && nick == "nora"),
            "{nick}: {events:?}"
        );
    }
    assert_eq!(net.kinds("ivy"), Vec::<String>::new());

    // A topic, once set, comes first.
    net.run("oscar", topic("welcome")).unwrap();
    net.drain();
    net.run("ivy", join(ROOM)).unwrap();
    assert_eq!(net.kinds("ivy"), ["joined", "topic", "members", "registration", "history"]);
}

#[test]
fn the_first_joiner_of_a_new_channel_is_its_operator_and_the_next_is_not() {
    let mut net = Net::new();
    net.connect("ann");
    net.connect("ben");
    net.run("ann", join("#new")).unwrap();
    let events = net.events("ann");
    let members = events.iter().find_map(|e| match e {
        ServerEvent::Members { members, modes, .. } => Some((members.clone(), modes.clone())),
        _ => None,
    });
    let (members, modes) = members.expect("the joiner gets the member list");
    assert_eq!(modes, "+t", "a new channel is +t");
    assert_eq!(members.len(), 1);
    assert!(members[0].op && members[0].nick == "ann");
    net.run("ben", join("#new")).unwrap();
    assert_eq!(
        net.run("ben", Command::Kick { channel: "#new".into(), nick: "ann".into(), reason: None }),
        Err(ErrorCode::NotOp)
    );
    // The channel goes when its last member leaves; whoever comes next makes it anew.
    for nick in ["ann", "ben"] {
        net.run(nick, Command::Part { channel: "#new".into(), reason: None }).unwrap();
    }
    assert_eq!(net.run("ann", Command::Names { channel: "#new".into() }), Err(ErrorCode::NoSuchChannel));
    net.run("ben", join("#new")).unwrap();
    net.run("ann", join("#new")).unwrap();
    assert_eq!(
        net.run("ann", Command::Kick { channel: "#new".into(), nick: "ben".into(), reason: None }),
        Err(ErrorCode::NotOp)
    );
}

#[test]
fn parting_tells_every_member_including_the_one_leaving() {
    let mut net = room();
    net.run("mia", part()).unwrap();
    let expected =
        ServerEvent::Parted { channel: ROOM.into(), nick: "mia".into(), reason: Some("bye".into()) };
    for nick in MEMBERS {
        assert_eq!(net.events(nick), std::slice::from_ref(&expected), "{nick}");
    }
    assert_eq!(net.kinds("nora"), Vec::<String>::new());
    assert!(!net.is_member("mia", ROOM));
    assert_eq!(net.say("mia", ROOM, "still here?"), Err(ErrorCode::NotOnChannel));
}

#[test]
fn a_topic_goes_to_every_member_and_an_empty_one_clears_it() {
    let mut net = room();
    net.run("oscar", topic("rust only")).unwrap();
    for nick in MEMBERS {
        let events = net.events(nick);
        assert!(
            matches!(&events[..], [ServerEvent::Topic { topic: Some(t), set_by: Some(by), set_at: Some(_), .. }]
                if t == "rust only" && by == "oscar"),
            "{nick}: {events:?}"
        );
    }
    assert_eq!(net.kinds("nora"), Vec::<String>::new());
    net.run("oscar", topic("")).unwrap();
    let cleared =
        ServerEvent::Topic { channel: ROOM.into(), topic: None, set_by: Some("oscar".into()), set_at: None };
    assert_eq!(net.events("mia"), [cleared]);
    // Anyone may read the topic of a public channel; only the asker is told.
    net.run("nora", Command::Topic { channel: ROOM.into(), topic: None }).unwrap();
    assert_eq!(net.kinds("nora"), ["topic"]);
    assert_eq!(net.kinds("mia"), Vec::<String>::new());
}

#[test]
fn a_kicked_member_is_told_and_is_out_but_may_come_back() {
    let mut net = room();
    net.run("oscar", kick("tara")).unwrap();
    let expected = ServerEvent::Kicked {
        channel: ROOM.into(),
        nick: "tara".into(),
        by: "oscar".into(),
        reason: Some("out".into()),
    };
    for nick in MEMBERS {
        assert_eq!(net.events(nick), std::slice::from_ref(&expected), "{nick}");
    }
    assert!(!net.is_member("tara", ROOM));
    assert_eq!(net.say("tara", ROOM, "hey"), Err(ErrorCode::NotOnChannel));
    assert_eq!(net.run("oscar", kick("tara")), Err(ErrorCode::UserNotOnChannel));
    assert_eq!(net.run("oscar", kick("ghost")), Err(ErrorCode::NoSuchNick));
    net.run("tara", join(ROOM)).unwrap();
}

#[test]
fn banning_an_online_nick_bans_their_cloak_and_unbanning_them_lifts_it() {
    let mut net = room();
    net.run("oscar", ban("tara")).unwrap();
    let events = net.events("mia");
    let [ServerEvent::Banned { mask, by, nick, .. }] = &events[..] else { panic!("{events:?}") };
    assert!(mask.starts_with("*!*@") && !mask.contains("10.0.0"), "the cloak, not the address: {mask}");
    assert_eq!((by.as_str(), nick.as_deref()), ("oscar", Some("tara")));
    assert_eq!(net.kinds("tara"), ["banned"], "the banned member is told too");
    assert_eq!(net.kinds("nora"), Vec::<String>::new());
    // Still inside, but silenced; gone, and kept out.
    assert!(net.is_member("tara", ROOM));
    assert_eq!(net.say("tara", ROOM, "hm"), Err(ErrorCode::Banned));
    net.run("tara", part()).unwrap();
    assert_eq!(net.run("tara", join(ROOM)), Err(ErrorCode::Banned));
    // The same mask again changes nothing and says nothing.
    net.drain();
    net.run("oscar", ban(mask)).unwrap();
    assert_eq!(net.kinds("oscar"), Vec::<String>::new());

    net.run("oscar", unban("tara")).unwrap();
    let lifted = ServerEvent::Unbanned { channel: ROOM.into(), mask: mask.clone(), by: "oscar".into() };
    assert_eq!(net.events("mia"), [lifted]);
    net.run("tara", join(ROOM)).unwrap();
    assert_eq!(net.run("oscar", unban("tara")), Err(ErrorCode::NoSuchBan));
}

#[test]
fn the_ban_list_and_bad_masks() {
    let mut net = room();
    net.run("nora", Command::Bans { channel: ROOM.into() }).unwrap();
    let events = net.events("nora");
    let [ServerEvent::BanList { bans, .. }] = &events[..] else { panic!("{events:?}") };
    let masks: Vec<&str> = bans.iter().map(|b| b.mask.as_str()).collect();
    assert_eq!(masks, ["bob!*@*", "zed!*@*"]);
    assert_eq!(net.kinds("oscar"), Vec::<String>::new(), "only the asker gets the list");
    assert_eq!(net.run("oscar", ban("a b")), Err(ErrorCode::BadArguments));
    assert_eq!(net.run("oscar", ban(&"x".repeat(101))), Err(ErrorCode::BadArguments));
}

#[test]
fn role_changes_are_announced_once_and_take_effect() {
    let mut net = room();
    net.run("oscar", op("tara")).unwrap();
    let opped = ServerEvent::ModeChanged {
        channel: ROOM.into(),
        by: "oscar".into(),
        modes: "+o".into(),
        args: vec!["tara".into()],
    };
    for nick in MEMBERS {
        assert_eq!(net.events(nick), std::slice::from_ref(&opped), "{nick}");
    }
    assert_eq!(net.kinds("nora"), Vec::<String>::new());
    // Already an operator: nothing to announce.
    net.run("oscar", op("tara")).unwrap();
    assert_eq!(net.kinds("mia"), Vec::<String>::new());
    // The new operator may act; the old one, deopped, may not.
    net.run("tara", deop("oscar")).unwrap();
    assert_eq!(net.run("oscar", kick("mia")), Err(ErrorCode::NotOp));
    net.run("tara", kick("mia")).unwrap();

    // Voice lets a member speak under +m; devoice takes it back.
    let mut net = room();
    net.run("oscar", mode("+m", &[])).unwrap();
    assert_eq!(net.say("mia", ROOM, "a"), Err(ErrorCode::CannotSend));
    net.run("oscar", voice("mia")).unwrap();
    net.say("mia", ROOM, "b").unwrap();
    net.run("oscar", devoice("mia")).unwrap();
    assert_eq!(net.say("mia", ROOM, "c"), Err(ErrorCode::CannotSend));
    assert_eq!(net.run("oscar", voice("nora")), Err(ErrorCode::UserNotOnChannel));
    assert_eq!(net.run("oscar", voice("ghost")), Err(ErrorCode::NoSuchNick));
}

#[test]
fn flag_modes_are_announced_when_they_change() {
    let mut net = room();
    net.run("oscar", mode("+mi", &[])).unwrap();
    let changed = |modes: &str, args: &[&str]| ServerEvent::ModeChanged {
        channel: ROOM.into(),
        by: "oscar".into(),
        modes: modes.into(),
        args: args.iter().map(|&a| a.to_owned()).collect(),
    };
    for nick in MEMBERS {
        assert_eq!(net.events(nick), [changed("+m+i", &[])], "{nick}");
    }
    assert_eq!(net.kinds("nora"), Vec::<String>::new());
    // Set already: nothing to say.
    net.run("oscar", mode("+m", &[])).unwrap();
    assert_eq!(net.kinds("mia"), Vec::<String>::new());
    // Only what changed is named.
    net.run("oscar", mode("+ms", &[])).unwrap();
    assert_eq!(net.events("mia"), [changed("+s", &[])]);
    net.run("oscar", mode("+kl", &["sesame", "10"])).unwrap();
    assert_eq!(net.events("mia"), [changed("+k+l", &["sesame", "10"])]);
    // The member list shows the modes, but not the key.
    net.run("mia", Command::Names { channel: ROOM.into() }).unwrap();
    let events = net.events("mia");
    let [ServerEvent::Members { modes, .. }] = &events[..] else { panic!("{events:?}") };
    assert!(!modes.contains("sesame"), "{modes}");
    assert!(modes.contains('l') && modes.contains("10"), "{modes}");
}

#[test]
fn a_mode_change_is_all_or_nothing() {
    let mut net = room();
    // The +o part fails: the +m before it is undone, and nobody hears of either.
    assert_eq!(net.run("oscar", mode("+mo", &["ghost"])), Err(ErrorCode::NoSuchNick));
    assert_eq!(net.run("oscar", mode("+mv", &["nora"])), Err(ErrorCode::UserNotOnChannel));
    assert_eq!(net.run("oscar", mode("+m-b", &["nobody!*@*"])), Err(ErrorCode::NoSuchBan));
    for nick in MEMBERS {
        assert_eq!(net.kinds(nick), Vec::<String>::new(), "{nick}");
    }
    net.say("mia", ROOM, "not moderated").unwrap();
}

#[test]
fn malformed_modes_are_refused() {
    use ErrorCode::BadArguments;
    let mut net = room();
    for (modes, args) in [
        ("+z", vec![]),
        ("+", vec![]),
        ("+k", vec![]),
        ("+k", vec!["has space"]),
        ("+k", vec!["a,b"]),
        ("+k", vec![&*"k".repeat(33)]),
        ("+l", vec![]),
        ("+l", vec!["0"]),
        ("+l", vec!["ten"]),
        ("+o", vec![]),
    ] {
        assert_eq!(net.run("oscar", mode(modes, &args)), Err(BadArguments), "{modes} {args:?}");
    }
    assert_eq!(net.kinds("mia"), Vec::<String>::new());
}

#[test]
fn an_invite_tells_the_inviter_and_the_invitee_only() {
    let mut net = room();
    net.run("mia", invite("ivy")).unwrap();
    let expected = ServerEvent::Invited { channel: ROOM.into(), nick: "ivy".into(), by: "mia".into() };
    assert_eq!(net.events("mia"), std::slice::from_ref(&expected));
    assert_eq!(net.events("ivy"), [expected]);
    for nick in ["oscar", "victor", "bob", "tara", "nora"] {
        assert_eq!(net.kinds(nick), Vec::<String>::new(), "{nick}");
    }
    assert_eq!(net.run("oscar", invite("tara")), Err(ErrorCode::AlreadyOnChannel));
    assert_eq!(net.run("oscar", invite("ghost")), Err(ErrorCode::NoSuchNick));
}

#[test]
fn a_channel_message_reaches_the_other_members_and_echoes_to_the_sender() {
    let mut net = room();
    net.say_txn("mia", ROOM, "hello", Some("t1")).unwrap();
    let echo = net.events("mia");
    let [ServerEvent::Message(echo)] = &echo[..] else { panic!("{echo:?}") };
    assert_eq!((echo.from.as_str(), echo.target.as_str(), echo.text.as_str()), ("mia", ROOM, "hello"));
    assert_eq!(echo.txn.as_deref(), Some("t1"), "the sender's echo carries its transaction id");
    for nick in ["oscar", "victor", "bob", "tara"] {
        let events = net.events(nick);
        let [ServerEvent::Message(m)] = &events[..] else { panic!("{nick}: {events:?}") };
        assert_eq!((m.id, m.txn.as_deref()), (echo.id, None), "{nick}");
    }
    for nick in OUTSIDERS {
        assert_eq!(net.kinds(nick), Vec::<String>::new(), "{nick}");
    }
    // A resent transaction is echoed again, to the sender alone, and not delivered twice.
    net.say_txn("mia", ROOM, "hello", Some("t1")).unwrap();
    let again = net.events("mia");
    assert!(matches!(&again[..], [ServerEvent::Message(m)] if m.id == echo.id), "{again:?}");
    assert_eq!(net.kinds("oscar"), Vec::<String>::new());
    // A joiner's history holds what was said.
    net.run("nora", join(ROOM)).unwrap();
    let history = net.events("nora").into_iter().find_map(|e| match e {
        ServerEvent::History { messages, .. } => Some(messages),
        _ => None,
    });
    assert_eq!(history.expect("history on join").iter().map(|m| m.id).collect::<Vec<_>>(), [echo.id]);
}

#[test]
fn messages_to_missing_channels_and_nicks() {
    let mut net = room();
    assert_eq!(net.say("mia", "#nowhere", "x"), Err(ErrorCode::NoSuchChannel));
    assert_eq!(net.say("mia", "ghost", "x"), Err(ErrorCode::NoSuchNick));
    net.say("nora", "mia", "psst").unwrap();
    assert_eq!(net.kinds("mia"), ["message"]);
    assert_eq!(net.kinds("nora"), ["message"]);
    assert_eq!(net.kinds("oscar"), Vec::<String>::new());
}

#[test]
fn commands_the_session_handles_are_refused_by_the_core() {
    let mut net = room();
    let msg = Command::Msg { target: ROOM.into(), text: "x".into() };
    assert_eq!(net.run("oscar", msg), Err(ErrorCode::Internal));
}

#[test]
fn limits_on_joining_channels() {
    let mut net = Net::new();
    net.connect("ann");
    for i in 0..20 {
        net.run("ann", join(&format!("#c{i}"))).unwrap();
    }
    assert_eq!(net.run("ann", join("#one-too-many")), Err(ErrorCode::TooManyChannels));
    assert_eq!(net.run("ann", join("no-hash")), Err(ErrorCode::InvalidChannel));
}

#[test]
fn a_mode_change_is_refused_for_its_first_failing_part_and_changes_nothing() {
    let mut net = room();
    let long = "x".repeat(101);
    for (modes, args, code) in [
        ("-b+o", vec!["nosuch!*@*", "ghost"], ErrorCode::NoSuchBan),
        ("+o-b", vec!["ghost", "nosuch!*@*"], ErrorCode::NoSuchNick),
        ("+ob", vec!["nora", long.as_str()], ErrorCode::UserNotOnChannel),
        ("+bo", vec![long.as_str(), "nora"], ErrorCode::BadArguments),
        // Deopping yourself first leaves you no right to the parts after it.
        ("-o+o", vec!["oscar", "ghost"], ErrorCode::NotOp),
        ("-o+b", vec!["oscar", long.as_str()], ErrorCode::NotOp),
    ] {
        assert_eq!(net.run("oscar", mode(modes, &args)), Err(code), "{modes} {args:?}");
    }
    assert_eq!(net.kinds("mia"), Vec::<String>::new(), "nothing was applied or announced");
    assert_eq!(net.run("oscar", mode("+m", &[])), Ok(()), "oscar is still op");
}

#[test]
fn refusals_name_the_nick_as_the_command_typed_it() {
    let mut net = room();
    let oscar = net.conn("oscar");
    for command in [kick("NORA"), Command::Op { channel: ROOM.into(), nick: "NORA".into() }] {
        let refused = net.hub.apply(oscar, command, None).err().unwrap();
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (ErrorCode::UserNotOnChannel, "NORA is not in #room")
        );
    }
    let invite = Command::Invite { nick: "MIA".into(), channel: ROOM.into() };
    assert_eq!(net.hub.apply(oscar, invite, None).err().unwrap().message, "MIA is already in #room");
}

#[test]
fn key_and_limit_are_announced_only_when_they_change_like_flags() {
    let mut net = room();
    net.run("oscar", mode("-k", &[])).unwrap();
    net.run("oscar", mode("-l", &[])).unwrap();
    assert_eq!(net.kinds("mia"), Vec::<String>::new());
    net.run("oscar", mode("+kl", &["sesame", "5"])).unwrap();
    assert_eq!(net.kinds("mia"), ["mode_changed"]);
    net.run("oscar", mode("+kl", &["sesame", "5"])).unwrap();
    net.run("oscar", mode("+mm", &[])).unwrap();
    assert_eq!(net.kinds("mia"), ["mode_changed"], "+m once; the same key and limit again are no change");
    net.run("oscar", mode("-k+l", &["6"])).unwrap();
    assert_eq!(net.kinds("mia"), ["mode_changed"]);
}

#[test]
fn a_banned_member_renamed_by_the_server_leaves_the_channel_that_banned_the_old_nick() {
    let mut net = room();
    let bob = net.conn("bob");
    net.hub.lock().evict(bob, "bob is someone else's nick");
    let seen = net.events("mia");
    let kicked = |e: &ServerEvent| matches!(e, ServerEvent::Kicked { nick, by, .. } if nick.starts_with("Guest-") && by == "Potato");
    assert!(matches!(&seen[..], [ServerEvent::NickChanged { .. }, k] if kicked(k)), "{seen:?}");
    assert!(net.events("bob").iter().any(kicked));
    assert_eq!(net.say("bob", ROOM, "x"), Err(ErrorCode::NotOnChannel));
    // A member under no ban keeps their channels when renamed.
    net.drain();
    let mia = net.conn("mia");
    net.hub.lock().evict(mia, "mia is someone else's nick");
    assert_eq!(net.kinds("oscar"), ["nick_changed"]);
}

#[test]
fn a_banned_member_cannot_shed_the_ban_by_changing_nick() {
    let mut net = room();
    assert_eq!(net.say("bob", ROOM, "x"), Err(ErrorCode::Banned));
    assert_eq!(net.run("bob", Command::Nick { nick: "bobby".into() }), Err(ErrorCode::Banned));
    assert_eq!(net.say("bob", ROOM, "x"), Err(ErrorCode::Banned));
    // Elsewhere a new nick is fine.
    assert_eq!(net.run("mia", Command::Nick { nick: "mia2".into() }), Ok(()));
}

/// A message stored while its channel was empty but delivered only after someone joined it
/// (the join loaded the channel with its stored history, which had the message) reaches
/// nobody twice, and later joiners' history has it once.
#[test]
fn a_message_stored_before_a_join_and_delivered_after_it_is_seen_once() {
    let mut net = Net::new();
    net.connect("nora");
    net.connect("ivy");
    let message = net.hub.prepare_bot_message("newsbot", "#quiet", "stored, not yet delivered").unwrap();
    let id = message.stored.message.id;
    // nora joins the empty channel: what the store answers already has the message.
    let nora = net.conn("nora");
    let mut history = None;
    loop {
        match net.hub.apply(nora, join("#quiet"), history.take()).expect("nora joins") {
            Effect::Done => break,
            Effect::NeedHistory(_) => history = Some(vec![message.stored.message.clone()]),
            Effect::Save(..) => panic!("nothing is registered"),
        }
    }
    net.hub.deliver(&[message]);
    net.run("ivy", join("#quiet")).unwrap();

    let seen = |events: &[Value]| -> usize {
        let live = events.iter().filter(|e| e["type"] == "message" && e["id"] == id).count();
        let in_history = events
            .iter()
            .filter(|e| e["type"] == "history")
            .flat_map(|e| e["messages"].as_array().cloned().unwrap_or_default())
            .filter(|m| m["id"] == id)
            .count();
        live + in_history
    };
    let nora_saw = net.json("nora");
    assert_eq!(seen(&nora_saw), 1, "{nora_saw:?}");
    let ivy_saw = net.json("ivy");
    assert_eq!(seen(&ivy_saw), 1, "{ivy_saw:?}");
}
