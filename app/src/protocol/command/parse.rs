//! The parser of typed command lines. The server parses what people type; the browser never
//! does (its forms send commands as data), so this module stays out of the wasm build.

use super::{
    help_for, CeleryRequest, Command, OperRequest, Password, PotatoRequest, SubcommandHelp, CELERY,
    CELERY_COMMANDS, POTATO, POTATO_COMMANDS,
};
use crate::protocol::error::{ErrorCode, ProtocolError};
use crate::protocol::names::is_channel;

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
        (help.parse)(&mut Line { args, context, usage: help.usage })
    }
}

/// A command line being parsed: its words after the command's name, the conversation in view,
/// and the usage to show when the words do not fit.
pub(super) struct Line<'a> {
    args: Args<'a>,
    context: Option<&'a str>,
    usage: &'static str,
}

impl Line<'_> {
    fn usage(&self) -> ProtocolError {
        ProtocolError::new(ErrorCode::BadArguments, format!("usage: {}", self.usage))
    }

    /// The next word, which must be there.
    fn word(&mut self) -> Result<String, ProtocolError> {
        self.optional().ok_or_else(|| self.usage())
    }

    fn optional(&mut self) -> Option<String> {
        self.args.next().map(str::to_owned)
    }

    /// The next word, which must be there and be the last.
    fn last_word(&mut self) -> Result<String, ProtocolError> {
        let word = self.word()?;
        self.end().map(|()| word)
    }

    /// The channel given next, or else the one in view.
    fn channel(&mut self) -> Result<String, ProtocolError> {
        let in_view = self.context.filter(|c| is_channel(c));
        self.args.next_channel().or(in_view).map(str::to_owned).ok_or_else(|| self.usage())
    }

    /// The channel given next (or the one in view), with nothing after it.
    fn last_channel(&mut self) -> Result<String, ProtocolError> {
        let channel = self.channel()?;
        self.end().map(|()| channel)
    }

    /// The rest of the line, trimmed; `None` when nothing is left.
    fn rest(&mut self) -> Option<String> {
        self.args.remainder().map(str::to_owned)
    }

    /// The rest of the line, which must be there.
    fn text(&mut self) -> Result<String, ProtocolError> {
        self.rest().ok_or_else(|| self.usage())
    }

    /// Nothing may follow: commands with a fixed number of words refuse more.
    fn end(&mut self) -> Result<(), ProtocolError> {
        match self.args.remainder() {
            Some(_) => Err(self.usage()),
            None => Ok(()),
        }
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

// Each command's parser, as COMMANDS names them.

pub(super) fn join(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let (channel, key) = (l.word()?, l.optional());
    l.end()?;
    Ok(Command::Join { channel, key })
}

pub(super) fn part(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Part { channel: l.channel()?, reason: l.rest() })
}

pub(super) fn msg(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Msg { target: l.word()?, text: l.text()? })
}

pub(super) fn me(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let target = l.context.ok_or_else(|| l.usage())?.to_owned();
    Ok(Command::Me { target, text: l.text()? })
}

pub(super) fn nick(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Nick { nick: l.last_word()? })
}

pub(super) fn topic(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let channel = l.channel()?;
    let topic = l.rest().map(|t| if t == "-" { String::new() } else { t });
    Ok(Command::Topic { channel, topic })
}

pub(super) fn kick(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Kick { channel: l.channel()?, nick: l.word()?, reason: l.rest() })
}

pub(super) fn ban(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Ban { channel: l.channel()?, mask: l.last_word()? })
}

pub(super) fn unban(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Unban { channel: l.channel()?, mask: l.last_word()? })
}

pub(super) fn bans(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Bans { channel: l.last_channel()? })
}

pub(super) fn op(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Op { channel: l.channel()?, nick: l.last_word()? })
}

pub(super) fn deop(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Deop { channel: l.channel()?, nick: l.last_word()? })
}

pub(super) fn voice(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Voice { channel: l.channel()?, nick: l.last_word()? })
}

pub(super) fn devoice(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Devoice { channel: l.channel()?, nick: l.last_word()? })
}

pub(super) fn mode(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let channel = l.channel()?;
    let modes = l.optional();
    if modes.as_deref().is_some_and(|m| !m.starts_with(['+', '-'])) {
        return Err(l.usage());
    }
    let args = std::iter::from_fn(|| l.optional()).collect();
    Ok(Command::Mode { channel, modes, args })
}

pub(super) fn invite(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Invite { nick: l.word()?, channel: l.last_channel()? })
}

pub(super) fn away(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Away { message: l.rest() })
}

pub(super) fn whois(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Whois { nick: l.last_word()? })
}

pub(super) fn list(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    l.end().map(|()| Command::List)
}

pub(super) fn names(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Names { channel: l.last_channel()? })
}

pub(super) fn quit(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Quit { reason: l.rest() })
}

pub(super) fn potato(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(Command::Potato { request: parse_potato(&mut l.args)? })
}

pub(super) fn celery(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let context = l.context.filter(|c| is_channel(c));
    Ok(Command::Celery { request: parse_celery(&mut l.args, context)? })
}

fn oper(request: OperRequest) -> Command {
    Command::Oper { request }
}

pub(super) fn kill(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(oper(OperRequest::Kill { nick: l.word()?, reason: l.rest() }))
}

/// The longest kline: ten years.
const MAX_KLINE_SECS: u64 = 10 * 365 * 86_400;

pub(super) fn kline(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let mask = l.word()?;
    let save = l.args.rest;
    let duration_secs = match l.args.next() {
        Some(word) => match duration_secs(word) {
            Some(secs) if secs <= MAX_KLINE_SECS => Some(secs),
            // A word that starts with a digit was meant as a duration: a typo must not make
            // the ban permanent.
            _ if word.starts_with(|c: char| c.is_ascii_digit()) => {
                return Err(ProtocolError::new(
                    ErrorCode::BadArguments,
                    format!("{word:?} is not a duration: write 90s, 30m, 12h, 7d or 2w (at most 10 years), or 0 for good"),
                ))
            }
            _ => {
                l.args.rest = save;
                None
            }
        },
        None => None,
    };
    // `0` (or `perm`) says "for good" explicitly.
    Ok(oper(OperRequest::Kline { mask, duration_secs: duration_secs.filter(|&s| s > 0), reason: l.rest() }))
}

/// A kline's duration: a number and a unit (`90s`, `30m`, `12h`, `7d`, `2w`), or `0`/`perm`
/// for good (`Some(0)`); `None` when the word is no duration (it starts the reason).
fn duration_secs(word: &str) -> Option<u64> {
    if word == "0" || word.eq_ignore_ascii_case("perm") {
        return Some(0);
    }
    let unit = match word.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    let number = &word[..word.len() - 1];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u64>().ok()?.checked_mul(unit)
}

pub(super) fn unkline(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(oper(OperRequest::Unkline { mask: l.last_word()? }))
}

pub(super) fn klines(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    l.end().map(|()| oper(OperRequest::Klines))
}

pub(super) fn gnotice(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    Ok(oper(OperRequest::GlobalNotice { text: l.text()? }))
}

pub(super) fn stats(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    l.end().map(|()| oper(OperRequest::Stats))
}

pub(super) fn audit(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    l.end().map(|()| oper(OperRequest::Audit))
}

pub(super) fn samode(l: &mut Line<'_>) -> Result<Command, ProtocolError> {
    let channel = l.channel()?;
    let modes = l.word()?;
    if !modes.starts_with(['+', '-']) {
        return Err(l.usage());
    }
    let args = std::iter::from_fn(|| l.optional()).collect();
    Ok(oper(OperRequest::Samode { channel, modes, args }))
}
