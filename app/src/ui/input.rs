//! The message input's helpers: `/command` suggestions with their help, Tab completion of
//! nicks, and recalling earlier lines with the up and down arrows.

use crate::protocol::command::{CommandHelp, CELERY_COMMANDS, COMMANDS, POTATO_COMMANDS};
use crate::protocol::names::fold;

/// A suggestion for what is being typed: the line to put in the input, and its usage and help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub complete: String,
    pub usage: &'static str,
    pub help: &'static str,
}

/// Suggestions while the input is `/` and a command name (or `/potato ` / `/celery ` and a
/// subcommand), matching by prefix. Operators' commands are suggested to operators only.
pub fn suggestions(input: &str, oper: bool) -> Vec<Suggestion> {
    let Some(body) = input.strip_prefix('/') else { return Vec::new() };
    let lower = body.to_ascii_lowercase();
    for (service, table) in [("potato", POTATO_COMMANDS), ("celery", CELERY_COMMANDS)] {
        if let Some(sub) = lower.strip_prefix(service).and_then(|r| r.strip_prefix(' ')) {
            if sub.contains(' ') {
                return Vec::new();
            }
            return table
                .iter()
                .filter(|(name, ..)| name.starts_with(sub))
                .map(|(name, usage, help)| Suggestion {
                    complete: format!("/{service} {name} "),
                    usage,
                    help,
                })
                .collect();
        }
    }
    if lower.contains(' ') {
        return Vec::new();
    }
    COMMANDS
        .iter()
        .filter(|c: &&CommandHelp| c.name.starts_with(&lower) && (oper || !c.oper))
        .map(|c| Suggestion { complete: format!("/{} ", c.name), usage: c.usage, help: c.help })
        .collect()
}

/// Tab completion of the word before the cursor against `nicks`. The `nth` press cycles
/// through the matches (sorted, case-insensitive). Returns the new input and cursor position.
/// A nick completed at the start of the line gets `": "` after it, as chat convention has it.
pub fn complete_nick(input: &str, cursor: usize, nicks: &[String], nth: usize) -> Option<(String, usize)> {
    let cursor = cursor.min(input.len());
    let cursor = (0..=cursor).rev().find(|&i| input.is_char_boundary(i))?;
    let start = input[..cursor].rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &input[start..cursor];
    if word.is_empty() {
        return None;
    }
    let prefix = fold(word);
    let mut matches: Vec<&String> = nicks.iter().filter(|n| fold(n).starts_with(&prefix)).collect();
    matches.sort_by_key(|n| fold(n));
    let nick = matches.get(nth % matches.len().max(1))?;
    let suffix = if start == 0 { ": " } else { " " };
    let rest = input[cursor..].trim_start();
    let completed = format!("{}{nick}{suffix}", &input[..start]);
    let position = completed.len();
    Some((format!("{completed}{rest}"), position))
}

/// Lines sent earlier, recalled with up and down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recall {
    lines: Vec<String>,
    /// Index into `lines` while browsing; `None` when editing a fresh line.
    at: Option<usize>,
    /// What was typed before browsing started, given back past the newest line.
    draft: String,
}

/// Most lines remembered.
const MAX_RECALL: usize = 100;

impl Recall {
    /// Remembers a sent line and stops browsing.
    pub fn push(&mut self, line: &str) {
        if self.lines.last().map(String::as_str) != Some(line) {
            self.lines.push(line.to_owned());
            if self.lines.len() > MAX_RECALL {
                self.lines.remove(0);
            }
        }
        self.at = None;
        self.draft.clear();
    }

    /// The older line to show, given what the input holds now.
    pub fn up(&mut self, current: &str) -> Option<String> {
        let at = match self.at {
            None if self.lines.is_empty() => return None,
            None => {
                self.draft = current.to_owned();
                self.lines.len() - 1
            }
            Some(0) => 0,
            Some(i) => i - 1,
        };
        self.at = Some(at);
        self.lines.get(at).cloned()
    }

    /// The newer line to show; past the newest, the draft comes back.
    pub fn down(&mut self) -> Option<String> {
        let at = self.at?;
        if at + 1 >= self.lines.len() {
            self.at = None;
            return Some(std::mem::take(&mut self.draft));
        }
        self.at = Some(at + 1);
        self.lines.get(at + 1).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_suggests_commands_with_their_help() {
        let all = suggestions("/", true);
        assert_eq!(all.len(), COMMANDS.len());
        let j = suggestions("/jo", false);
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].complete, "/join ");
        assert!(j[0].usage.starts_with("/join"));
        assert!(suggestions("/join #a", false).is_empty());
        assert!(suggestions("hello", false).is_empty());
        let p = suggestions("/potato i", false);
        assert_eq!(
            p.iter().map(|s| s.complete.as_str()).collect::<Vec<_>>(),
            ["/potato identify ", "/potato info "]
        );
        assert_eq!(suggestions("/CELERY re", false)[0].complete, "/celery register ");
    }

    #[test]
    fn operators_commands_are_suggested_to_operators_only() {
        let names = |oper| suggestions("/k", oper).into_iter().map(|s| s.complete).collect::<Vec<_>>();
        assert_eq!(names(false), ["/kick "]);
        assert_eq!(names(true), ["/kick ", "/kill ", "/kline ", "/klines "]);
        let everyone = suggestions("/", false).len();
        assert_eq!(everyone, COMMANDS.iter().filter(|c| !c.oper).count());
        assert!(everyone < COMMANDS.len());
    }

    #[test]
    fn tab_completes_and_cycles_nicks() {
        let nicks: Vec<String> = ["bob", "Bobby", "alice"].map(String::from).to_vec();
        assert_eq!(complete_nick("bo", 2, &nicks, 0), Some(("bob: ".into(), 5)));
        assert_eq!(complete_nick("bo", 2, &nicks, 1), Some(("Bobby: ".into(), 7)));
        assert_eq!(complete_nick("bo", 2, &nicks, 2), Some(("bob: ".into(), 5)));
        assert_eq!(complete_nick("hi AL", 5, &nicks, 0), Some(("hi alice ".into(), 9)));
        assert_eq!(complete_nick("hi al there", 5, &nicks, 0), Some(("hi alice there".into(), 9)));
        assert_eq!(complete_nick("zz", 2, &nicks, 0), None);
        assert_eq!(complete_nick("", 0, &nicks, 0), None);
        assert_eq!(complete_nick("é", 1, &nicks, 0), None, "a cursor inside a character is safe");
    }

    #[test]
    fn up_and_down_walk_the_sent_lines_and_return_the_draft() {
        let mut r = Recall::default();
        assert_eq!(r.up("x"), None);
        r.push("one");
        r.push("two");
        r.push("two");
        assert_eq!(r.up("draft").as_deref(), Some("two"));
        assert_eq!(r.up("two").as_deref(), Some("one"));
        assert_eq!(r.up("one").as_deref(), Some("one"));
        assert_eq!(r.down().as_deref(), Some("two"));
        assert_eq!(r.down().as_deref(), Some("draft"));
        assert_eq!(r.down(), None);
    }
}
