//! Slash commands: the [`Command`] enum and its parser, shared by the server (which applies
//! commands) and the UI (which completes and checks them as the user types).
//!
//! A line is `/name arg arg… [rest of line]`. Where a command takes a channel first, the
//! channel may be left out and the context — the channel the user is looking at — is used.

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, ProtocolError};
use super::names::is_channel;

/// A parsed slash command. Imperative names; the server answers with past-tense events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Join {
        channel: String,
        key: Option<String>,
    },
    Part {
        channel: String,
        reason: Option<String>,
    },
    Msg {
        target: String,
        text: String,
    },
    Me {
        target: String,
        text: String,
    },
    Nick {
        nick: String,
    },
    /// `topic: None` asks for the topic; `Some("")` clears it.
    Topic {
        channel: String,
        topic: Option<String>,
    },
    Kick {
        channel: String,
        nick: String,
        reason: Option<String>,
    },
    Ban {
        channel: String,
        mask: String,
    },
    Unban {
        channel: String,
        mask: String,
    },
    /// Asks for a channel's bans (also `/mode #channel +b` with no mask).
    Bans {
        channel: String,
    },
    Op {
        channel: String,
        nick: String,
    },
    Deop {
        channel: String,
        nick: String,
    },
    Voice {
        channel: String,
        nick: String,
    },
    Devoice {
        channel: String,
        nick: String,
    },
    /// `modes: None` asks for the channel's modes.
    Mode {
        channel: String,
        modes: Option<String>,
        args: Vec<String>,
    },
    Invite {
        nick: String,
        channel: String,
    },
    /// `message: None` marks you as back.
    Away {
        message: Option<String>,
    },
    Whois {
        nick: String,
    },
    List,
    Names {
        channel: String,
    },
    Quit {
        reason: Option<String>,
    },
    /// `/potato …`, or `/msg Potato …`: the nickname service.
    Potato {
        request: PotatoRequest,
    },
    /// `/celery …`, or `/msg Celery …`: the channel service.
    Celery {
        request: CeleryRequest,
    },
}

/// A password as typed. Its `Debug` form hides it, so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A request to Potato, the nickname service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PotatoRequest {
    /// Registers your current nick (`nick`, when given, must be it).
    Register {
        nick: Option<String>,
        password: Password,
        email: String,
    },
    /// Logs you into an account (your current nick's when `nick` is left out).
    Identify {
        nick: Option<String>,
        password: Password,
    },
    /// Disconnects whoever is using your registered nick.
    Disconnect {
        nick: String,
        password: Password,
    },
    /// About an account (your own when `nick` is left out).
    Info {
        nick: Option<String>,
    },
    /// Changes your account's password.
    Passwd {
        old: Password,
        new: Password,
    },
    /// Deletes your account.
    Drop {
        password: Password,
    },
    Help,
}

/// A request to Celery, the channel service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CeleryRequest {
    /// Registers a channel you are an operator of; you become its founder.
    Register {
        channel: String,
    },
    /// Adds an account to the channel's op list.
    Op {
        channel: String,
        account: String,
    },
    /// Removes an account from the op list.
    Deop {
        channel: String,
        account: String,
    },
    /// Lets an account on the op list change the op list too (founder only).
    Trust {
        channel: String,
        account: String,
    },
    /// Takes that right away again (founder only).
    Untrust {
        channel: String,
        account: String,
    },
    /// About a registered channel.
    Info {
        channel: String,
    },
    /// Unregisters a channel (founder only).
    Drop {
        channel: String,
    },
    Help,
}

/// Usage and help of one service subcommand.
pub type SubcommandHelp = (&'static str, &'static str, &'static str);

/// Potato's subcommands: name, usage, help.
pub const POTATO_COMMANDS: &[SubcommandHelp] = &[
    ("register", "/potato register [nick] <password> <email>", "Register the nick you are using"),
    ("identify", "/potato identify [nick] <password>", "Log into your account (and take its nick)"),
    ("disconnect", "/potato disconnect <nick> <password>", "Disconnect whoever is using your nick"),
    ("info", "/potato info [nick]", "Show an account"),
    ("passwd", "/potato passwd <old password> <new password>", "Change your password"),
    ("drop", "/potato drop <password>", "Delete your account"),
    ("help", "/potato help", "List Potato's commands"),
];

/// Celery's subcommands: name, usage, help.
pub const CELERY_COMMANDS: &[SubcommandHelp] = &[
    ("register", "/celery register [#channel]", "Register a channel you are op in; you become its founder"),
    ("op", "/celery op [#channel] <account>", "Add an account to the channel's op list"),
    ("deop", "/celery deop [#channel] <account>", "Remove an account from the op list"),
    ("trust", "/celery trust [#channel] <account>", "Let a listed op change the op list (founder)"),
    ("untrust", "/celery untrust [#channel] <account>", "Take that right away (founder)"),
    ("info", "/celery info [#channel]", "Show a registered channel"),
    ("drop", "/celery drop [#channel]", "Unregister a channel (founder)"),
    ("help", "/celery help", "List Celery's commands"),
];

/// Usage and a one-line help for one command, for error messages and UI completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHelp {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
}

/// Every command the parser knows, in the order the UI lists them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "join",
        usage: "/join #channel [key]",
        help: "Join a channel (created if empty; you become its op)",
    },
    CommandHelp { name: "part", usage: "/part [#channel] [reason]", help: "Leave a channel" },
    CommandHelp {
        name: "msg",
        usage: "/msg <nick|#channel> <text>",
        help: "Send a private message or a message to a channel",
    },
    CommandHelp { name: "me", usage: "/me <action>", help: "Describe an action in the current conversation" },
    CommandHelp { name: "nick", usage: "/nick <new nick>", help: "Change your nick" },
    CommandHelp {
        name: "topic",
        usage: "/topic [#channel] [text | -]",
        help: "Show or set the topic; '-' clears it",
    },
    CommandHelp {
        name: "kick",
        usage: "/kick [#channel] <nick> [reason]",
        help: "Remove someone from a channel (ops)",
    },
    CommandHelp {
        name: "ban",
        usage: "/ban [#channel] <nick|mask>",
        help: "Ban a nick or a nick!user@host mask (ops)",
    },
    CommandHelp { name: "unban", usage: "/unban [#channel] <nick|mask>", help: "Lift a ban (ops)" },
    CommandHelp { name: "bans", usage: "/bans [#channel]", help: "List a channel's bans" },
    CommandHelp { name: "op", usage: "/op [#channel] <nick>", help: "Make someone a channel operator (ops)" },
    CommandHelp { name: "deop", usage: "/deop [#channel] <nick>", help: "Take operator status away (ops)" },
    CommandHelp {
        name: "voice",
        usage: "/voice [#channel] <nick>",
        help: "Let someone speak in a moderated channel (ops)",
    },
    CommandHelp { name: "devoice", usage: "/devoice [#channel] <nick>", help: "Take voice away (ops)" },
    CommandHelp {
        name: "mode",
        usage: "/mode [#channel] [(+|-)modes] [args…]",
        help: "Show or change modes: m i t k l o v b (ops)",
    },
    CommandHelp { name: "invite", usage: "/invite <nick> [#channel]", help: "Invite someone to a channel" },
    CommandHelp {
        name: "away",
        usage: "/away [message]",
        help: "Mark yourself away, or back without a message",
    },
    CommandHelp { name: "whois", usage: "/whois <nick>", help: "Show who someone is" },
    CommandHelp { name: "list", usage: "/list", help: "List channels" },
    CommandHelp { name: "names", usage: "/names [#channel]", help: "List a channel's members" },
    CommandHelp { name: "quit", usage: "/quit [reason]", help: "Disconnect" },
    CommandHelp {
        name: "potato",
        usage: "/potato <register|identify|disconnect|info|passwd|drop|help> …",
        help: "Potato, the nickname service: register and identify your nick",
    },
    CommandHelp {
        name: "celery",
        usage: "/celery <register|op|deop|trust|untrust|info|drop|help> [#channel] …",
        help: "Celery, the channel service: register a channel and keep its ops",
    },
];

/// Other spellings the parser accepts.
const ALIASES: &[(&str, &str)] =
    &[("j", "join"), ("leave", "part"), ("query", "msg"), ("w", "whois"), ("ns", "potato"), ("cs", "celery")];

/// The nicks of the services, as they sign their replies.
pub const POTATO: &str = "Potato";
pub const CELERY: &str = "Celery";

/// The help entry for a command name (or alias), case-insensitively.
pub fn help_for(name: &str) -> Option<&'static CommandHelp> {
    let name = name.to_ascii_lowercase();
    let name = ALIASES.iter().find(|(a, _)| *a == name).map_or(name.as_str(), |(_, n)| n);
    COMMANDS.iter().find(|c| c.name == name)
}

/// The words of a command line, with the rest of the line available at any point.
struct Args<'a> {
    rest: &'a str,
}

impl<'a> Args<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start();
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        let (word, rest) = s.split_at(end);
        self.rest = rest;
        Some(word)
    }

    /// The next word if it names a channel, without consuming anything otherwise.
    fn next_channel(&mut self) -> Option<&'a str> {
        let save = self.rest;
        match self.next() {
            Some(w) if is_channel(w) => Some(w),
            _ => {
                self.rest = save;
                None
            }
        }
    }

    /// Everything left, trimmed; `None` when nothing is left.
    fn remainder(&mut self) -> Option<&'a str> {
        let s = self.rest.trim();
        self.rest = "";
        (!s.is_empty()).then_some(s)
    }
}

impl Command {
    /// Parses a slash command line. `context` is the conversation the user is looking at: a
    /// channel (`#rust`) or a nick; it fills in a left-out channel or `/me`'s target.
    pub fn parse(line: &str, context: Option<&str>) -> Result<Command, ProtocolError> {
        let line = line.trim();
        let Some(body) = line.strip_prefix('/') else {
            return Err(ProtocolError::new(ErrorCode::UnknownCommand, "a command starts with '/'"));
        };
        let mut args = Args { rest: body };
        let name = args.next().unwrap_or("");
        let help = help_for(name).ok_or_else(|| {
            let shown: String = name.chars().take(32).collect();
            ProtocolError::new(ErrorCode::UnknownCommand, format!("unknown command /{shown}"))
        })?;
        let usage = || ProtocolError::new(ErrorCode::BadArguments, format!("usage: {}", help.usage));
        let context_channel = context.filter(|c| is_channel(c));
        // The channel given first, or the one in context.
        let channel = |args: &mut Args| -> Result<String, ProtocolError> {
            args.next_channel().or(context_channel).map(str::to_owned).ok_or_else(usage)
        };
        let owned = |s: &str| s.to_owned();
        // Commands with a fixed number of words refuse anything after them.
        let end = |args: &mut Args| if args.remainder().is_some() { Err(usage()) } else { Ok(()) };

        let cmd = match help.name {
            "join" => {
                let channel = args.next().ok_or_else(usage)?.to_owned();
                let key = args.next().map(owned);
                end(&mut args)?;
                Command::Join { channel, key }
            }
            "part" => Command::Part { channel: channel(&mut args)?, reason: args.remainder().map(owned) },
            "msg" => {
                let target = args.next().ok_or_else(usage)?.to_owned();
                let text = args.remainder().ok_or_else(usage)?.to_owned();
                Command::Msg { target, text }
            }
            "me" => {
                let target = context.ok_or_else(usage)?.to_owned();
                Command::Me { target, text: args.remainder().ok_or_else(usage)?.to_owned() }
            }
            "nick" => {
                let nick = args.next().ok_or_else(usage)?.to_owned();
                end(&mut args)?;
                Command::Nick { nick }
            }
            "topic" => {
                let channel = channel(&mut args)?;
                let topic = args.remainder().map(|t| if t == "-" { String::new() } else { t.to_owned() });
                Command::Topic { channel, topic }
            }
            "kick" => {
                let channel = channel(&mut args)?;
                let nick = args.next().ok_or_else(usage)?.to_owned();
                Command::Kick { channel, nick, reason: args.remainder().map(owned) }
            }
            "ban" | "unban" | "op" | "deop" | "voice" | "devoice" => {
                let channel = channel(&mut args)?;
                let who = args.next().ok_or_else(usage)?.to_owned();
                end(&mut args)?;
                match help.name {
                    "ban" => Command::Ban { channel, mask: who },
                    "unban" => Command::Unban { channel, mask: who },
                    "op" => Command::Op { channel, nick: who },
                    "deop" => Command::Deop { channel, nick: who },
                    "voice" => Command::Voice { channel, nick: who },
                    _ => Command::Devoice { channel, nick: who },
                }
            }
            "mode" => {
                let channel = channel(&mut args)?;
                let modes = args.next().map(owned);
                if modes.as_deref().is_some_and(|m| !m.starts_with(['+', '-'])) {
                    return Err(usage());
                }
                let mut rest = Vec::new();
                while let Some(a) = args.next() {
                    rest.push(a.to_owned());
                }
                Command::Mode { channel, modes, args: rest }
            }
            "invite" => {
                let nick = args.next().ok_or_else(usage)?.to_owned();
                let channel = channel(&mut args)?;
                end(&mut args)?;
                Command::Invite { nick, channel }
            }
            "away" => Command::Away { message: args.remainder().map(owned) },
            "whois" => {
                let nick = args.next().ok_or_else(usage)?.to_owned();
                end(&mut args)?;
                Command::Whois { nick }
            }
            "list" => {
                end(&mut args)?;
                Command::List
            }
            "names" => {
                let channel = channel(&mut args)?;
                end(&mut args)?;
                Command::Names { channel }
            }
            "bans" => {
                let channel = channel(&mut args)?;
                end(&mut args)?;
                Command::Bans { channel }
            }
            "quit" => Command::Quit { reason: args.remainder().map(owned) },
            "potato" => Command::Potato { request: parse_potato(&mut args)? },
            "celery" => Command::Celery { request: parse_celery(&mut args, context_channel)? },
            other => {
                return Err(ProtocolError::new(
                    ErrorCode::UnknownCommand,
                    format!("unknown command /{other}"),
                ))
            }
        };
        Ok(cmd)
    }
}

impl Command {
    /// `/msg Potato text` and `/msg Celery text` are service commands: the command they stand
    /// for, or `None` when `target` is not a service.
    pub fn for_service(
        target: &str,
        text: &str,
        context: Option<&str>,
    ) -> Option<Result<Command, ProtocolError>> {
        let service = [POTATO, CELERY].into_iter().find(|s| s.eq_ignore_ascii_case(target))?;
        Some(Command::parse(&format!("/{} {text}", service.to_ascii_lowercase()), context))
    }
}

fn words<'a>(args: &mut Args<'a>) -> Vec<&'a str> {
    std::iter::from_fn(|| args.next()).collect()
}

/// The words left, where a word that starts with `"` runs to the next `"` that is not escaped
/// (inside, a backslash takes the next character as it is: `\"`, `\\`): how a typed
/// `/potato` line carries a password with spaces. A quote anywhere else is an ordinary
/// character, so unquoted passwords read as they always did.
fn quoted_words(args: &mut Args) -> Result<Vec<String>, ProtocolError> {
    let bad = |why: &str| ProtocolError::new(ErrorCode::BadArguments, why.to_owned());
    let mut words = Vec::new();
    let mut rest = std::mem::take(&mut args.rest).trim_start();
    while !rest.is_empty() {
        if let Some(body) = rest.strip_prefix('"') {
            let mut word = String::new();
            let mut chars = body.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => word.extend(chars.next().map(|(_, escaped)| escaped)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => word.push(c),
                }
            }
            let end = end.ok_or_else(|| bad("a quoted word needs its closing quote"))?;
            rest = &body[end..];
            if rest.starts_with(|c: char| !c.is_whitespace()) {
                return Err(bad("a closing quote must end its word"));
            }
            words.push(word);
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    Ok(words)
}

fn sub_usage(table: &[SubcommandHelp], sub: &str) -> ProtocolError {
    let usage = table.iter().find(|(name, ..)| *name == sub).map_or("", |(_, usage, _)| usage);
    ProtocolError::new(ErrorCode::BadArguments, format!("usage: {usage}"))
}

fn unknown_sub(service: &str, table: &[SubcommandHelp], sub: &str) -> ProtocolError {
    let names: Vec<&str> = table.iter().map(|(name, ..)| *name).collect();
    let shown: String = sub.chars().take(32).collect();
    ProtocolError::new(
        ErrorCode::UnknownCommand,
        format!("{service} has no command {shown:?}; try: {}", names.join(", ")),
    )
}

fn parse_potato(args: &mut Args) -> Result<PotatoRequest, ProtocolError> {
    let sub = args.next().unwrap_or("help").to_ascii_lowercase();
    let sub = if sub == "ghost" { "disconnect".to_owned() } else { sub };
    let w = quoted_words(args)?;
    let usage = || sub_usage(POTATO_COMMANDS, &sub);
    let pw = |s: &String| Password(s.clone());
    let request = match (sub.as_str(), w.as_slice()) {
        ("register", [password, email]) => {
            PotatoRequest::Register { nick: None, password: pw(password), email: email.clone() }
        }
        ("register", [nick, password, email]) => {
            PotatoRequest::Register { nick: Some(nick.clone()), password: pw(password), email: email.clone() }
        }
        ("identify", [password]) => PotatoRequest::Identify { nick: None, password: pw(password) },
        ("identify", [nick, password]) => {
            PotatoRequest::Identify { nick: Some(nick.clone()), password: pw(password) }
        }
        ("disconnect", [nick, password]) => {
            PotatoRequest::Disconnect { nick: nick.clone(), password: pw(password) }
        }
        ("info", []) => PotatoRequest::Info { nick: None },
        ("info", [nick]) => PotatoRequest::Info { nick: Some(nick.clone()) },
        ("passwd", [old, new]) => PotatoRequest::Passwd { old: pw(old), new: pw(new) },
        ("drop", [password]) => PotatoRequest::Drop { password: pw(password) },
        ("help", []) => PotatoRequest::Help,
        (name, _) if POTATO_COMMANDS.iter().any(|(n, ..)| *n == name) => return Err(usage()),
        (name, _) => return Err(unknown_sub(POTATO, POTATO_COMMANDS, name)),
    };
    Ok(request)
}

fn parse_celery(args: &mut Args, context_channel: Option<&str>) -> Result<CeleryRequest, ProtocolError> {
    let sub = args.next().unwrap_or("help").to_ascii_lowercase();
    if sub == "help" {
        return if args.remainder().is_some() {
            Err(sub_usage(CELERY_COMMANDS, "help"))
        } else {
            Ok(CeleryRequest::Help)
        };
    }
    if !CELERY_COMMANDS.iter().any(|(n, ..)| *n == sub) {
        return Err(unknown_sub(CELERY, CELERY_COMMANDS, &sub));
    }
    let usage = || sub_usage(CELERY_COMMANDS, &sub);
    let channel = args.next_channel().or(context_channel).map(str::to_owned).ok_or_else(usage)?;
    let w = words(args);
    let request = match (sub.as_str(), w.as_slice()) {
        ("register", []) => CeleryRequest::Register { channel },
        ("info", []) => CeleryRequest::Info { channel },
        ("drop", []) => CeleryRequest::Drop { channel },
        ("op", [account]) => CeleryRequest::Op { channel, account: (*account).to_owned() },
        ("deop", [account]) => CeleryRequest::Deop { channel, account: (*account).to_owned() },
        ("trust", [account]) => CeleryRequest::Trust { channel, account: (*account).to_owned() },
        ("untrust", [account]) => CeleryRequest::Untrust { channel, account: (*account).to_owned() },
        _ => return Err(usage()),
    };
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, ProtocolError> {
        Command::parse(line, None)
    }

    #[test]
    fn every_listed_command_parses_with_its_usage_example() {
        let lines = [
            ("/join #rust", Command::Join { channel: "#rust".into(), key: None }),
            ("/join #rust sekrit", Command::Join { channel: "#rust".into(), key: Some("sekrit".into()) }),
            ("/j #rust", Command::Join { channel: "#rust".into(), key: None }),
            (
                "/part #rust bye all",
                Command::Part { channel: "#rust".into(), reason: Some("bye all".into()) },
            ),
            ("/msg bob hi  there", Command::Msg { target: "bob".into(), text: "hi  there".into() }),
            ("/nick alice2", Command::Nick { nick: "alice2".into() }),
            ("/topic #rust", Command::Topic { channel: "#rust".into(), topic: None }),
            (
                "/topic #rust Rust talk",
                Command::Topic { channel: "#rust".into(), topic: Some("Rust talk".into()) },
            ),
            ("/topic #rust -", Command::Topic { channel: "#rust".into(), topic: Some(String::new()) }),
            (
                "/kick #rust bob spam",
                Command::Kick { channel: "#rust".into(), nick: "bob".into(), reason: Some("spam".into()) },
            ),
            ("/ban #rust bob", Command::Ban { channel: "#rust".into(), mask: "bob".into() }),
            ("/unban #rust *!*@x", Command::Unban { channel: "#rust".into(), mask: "*!*@x".into() }),
            ("/bans #rust", Command::Bans { channel: "#rust".into() }),
            ("/op #rust bob", Command::Op { channel: "#rust".into(), nick: "bob".into() }),
            ("/deop #rust bob", Command::Deop { channel: "#rust".into(), nick: "bob".into() }),
            ("/voice #rust bob", Command::Voice { channel: "#rust".into(), nick: "bob".into() }),
            ("/devoice #rust bob", Command::Devoice { channel: "#rust".into(), nick: "bob".into() }),
            ("/mode #rust", Command::Mode { channel: "#rust".into(), modes: None, args: vec![] }),
            (
                "/mode #rust +kl key 10",
                Command::Mode {
                    channel: "#rust".into(),
                    modes: Some("+kl".into()),
                    args: vec!["key".into(), "10".into()],
                },
            ),
            ("/invite bob #rust", Command::Invite { nick: "bob".into(), channel: "#rust".into() }),
            ("/away lunch", Command::Away { message: Some("lunch".into()) }),
            ("/away", Command::Away { message: None }),
            ("/whois bob", Command::Whois { nick: "bob".into() }),
            ("/list", Command::List),
            ("/names #rust", Command::Names { channel: "#rust".into() }),
            ("/quit", Command::Quit { reason: None }),
            ("/QUIT gone", Command::Quit { reason: Some("gone".into()) }),
        ];
        for (line, want) in lines {
            assert_eq!(p(line).as_ref(), Ok(&want), "{line}");
        }
    }

    #[test]
    fn service_commands_parse() {
        let pw = |s: &str| Password(s.into());
        let cases = [
            (
                "/potato register hunter22 a@b.example",
                PotatoRequest::Register { nick: None, password: pw("hunter22"), email: "a@b.example".into() },
            ),
            (
                "/potato REGISTER alice hunter22 a@b.example",
                PotatoRequest::Register {
                    nick: Some("alice".into()),
                    password: pw("hunter22"),
                    email: "a@b.example".into(),
                },
            ),
            (
                "/potato identify alice pw",
                PotatoRequest::Identify { nick: Some("alice".into()), password: pw("pw") },
            ),
            ("/ns identify pw", PotatoRequest::Identify { nick: None, password: pw("pw") }),
            (
                "/potato ghost alice pw",
                PotatoRequest::Disconnect { nick: "alice".into(), password: pw("pw") },
            ),
            ("/potato info", PotatoRequest::Info { nick: None }),
            ("/potato passwd a b", PotatoRequest::Passwd { old: pw("a"), new: pw("b") }),
            ("/potato drop pw", PotatoRequest::Drop { password: pw("pw") }),
            ("/potato", PotatoRequest::Help),
        ];
        for (line, want) in cases {
            assert_eq!(p(line), Ok(Command::Potato { request: want }), "{line}");
        }
        assert_eq!(
            Command::parse("/celery op bob", Some("#rust")),
            Ok(Command::Celery {
                request: CeleryRequest::Op { channel: "#rust".into(), account: "bob".into() }
            })
        );
        assert_eq!(
            p("/cs register #rust"),
            Ok(Command::Celery { request: CeleryRequest::Register { channel: "#rust".into() } })
        );
        assert_eq!(
            Command::for_service("potato", "identify alice pw", None),
            Some(Ok(Command::Potato {
                request: PotatoRequest::Identify { nick: Some("alice".into()), password: pw("pw") }
            }))
        );
        assert_eq!(Command::for_service("bob", "hi", None), None);
        for line in [
            "/potato register onlyone",
            "/potato identify",
            "/potato drop",
            "/celery op #c",
            "/celery register",
        ] {
            assert_eq!(p(line).unwrap_err().code, ErrorCode::BadArguments, "{line}");
        }
        assert_eq!(p("/potato frob").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/celery frob #c").unwrap_err().code, ErrorCode::UnknownCommand);
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let cmd = p("/potato identify alice s3cr3t-pw").unwrap();
        assert!(!format!("{cmd:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_potato_password_may_be_quoted_to_hold_spaces_and_quotes() {
        let identify = |line: &str| match Command::parse(line, None) {
            Ok(Command::Potato { request: PotatoRequest::Identify { nick, password } }) => {
                Ok((nick, password.0))
            }
            other => Err(other),
        };
        let some = |nick: &str, pw: &str| Ok((Some(nick.to_owned()), pw.to_owned()));
        assert_eq!(identify(r#"/potato identify alice "alice secret""#), some("alice", "alice secret"));
        assert_eq!(
            identify(r#"/potato identify alice "say \"hi\" \\o/ ünïcødé""#),
            some("alice", r#"say "hi" \o/ ünïcødé"#)
        );
        assert_eq!(
            identify(r#"/potato identify "alice" pass"word"#),
            some("alice", r#"pass"word"#),
            "quotes inside a word are plain"
        );
        assert_eq!(identify("/potato identify alice plain-word"), some("alice", "plain-word"));
        assert_eq!(identify(r#"/potato identify """#), Ok((None, String::new())));
        for bad in [
            r#"/potato identify alice "open"#,
            r#"/potato identify alice "a"b"#,
            r#"/potato identify alice "x\"#,
        ] {
            assert_eq!(Command::parse(bad, None).unwrap_err().code, ErrorCode::BadArguments, "{bad}");
        }
        let register = Command::parse(r#"/potato register "two words" me@example.com"#, None);
        assert_eq!(
            register,
            Ok(Command::Potato {
                request: PotatoRequest::Register {
                    nick: None,
                    password: Password("two words".into()),
                    email: "me@example.com".into()
                }
            })
        );
        // Too many words stays a usage error, quoted or not.
        assert!(Command::parse(r#"/potato identify alice "a b" c"#, None).is_err());
    }

    #[test]
    fn a_left_out_channel_comes_from_the_context() {
        let ctx = Some("#rust");
        assert_eq!(
            Command::parse("/kick bob", ctx),
            Ok(Command::Kick { channel: "#rust".into(), nick: "bob".into(), reason: None })
        );
        assert_eq!(Command::parse("/part", ctx), Ok(Command::Part { channel: "#rust".into(), reason: None }));
        assert_eq!(Command::parse("/bans", ctx), Ok(Command::Bans { channel: "#rust".into() }));
        assert_eq!(
            Command::parse("/me waves", ctx),
            Ok(Command::Me { target: "#rust".into(), text: "waves".into() })
        );
        assert_eq!(
            Command::parse("/me waves", Some("bob")),
            Ok(Command::Me { target: "bob".into(), text: "waves".into() })
        );
        // A nick is not a channel context.
        assert_eq!(Command::parse("/op bob", Some("carol")).unwrap_err().code, ErrorCode::BadArguments);
    }

    #[test]
    fn bad_lines_get_stable_codes() {
        assert_eq!(p("hello").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/frobnicate").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/join").unwrap_err().code, ErrorCode::BadArguments);
        assert_eq!(p("/msg bob").unwrap_err().code, ErrorCode::BadArguments);
        assert_eq!(p("/me hi").unwrap_err().code, ErrorCode::BadArguments);
        for line in [
            "/op #c bob extra",
            "/nick two words",
            "/join #a key extra",
            "/whois a b",
            "/list x",
            "/names #a b",
            "/invite a #b c",
        ] {
            assert_eq!(p(line).unwrap_err().code, ErrorCode::BadArguments, "{line}");
        }
        assert_eq!(p("/mode #c mt").unwrap_err().code, ErrorCode::BadArguments);
        assert!(p("/kick").unwrap_err().message.contains("/kick [#channel] <nick> [reason]"));
    }

    #[test]
    fn every_command_has_help() {
        for c in COMMANDS {
            assert!(c.usage.starts_with(&format!("/{}", c.name)), "{}", c.name);
            assert!(help_for(c.name).is_some());
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(line in "\\PC*", ctx in proptest::option::of("\\PC{0,12}")) {
                let _ = Command::parse(&line, ctx.as_deref());
            }

            #[test]
            fn parse_never_panics_on_command_like_lines(
                name in prop::sample::select(COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>()),
                rest in "[ #a-z+\\-*!@\u{202e}\t]{0,40}",
            ) {
                let _ = Command::parse(&format!("/{name} {rest}"), Some("#ctx"));
            }
        }
    }
}
