//! The page's own flood control. The server refuses frames past the burst and rate its
//! `welcome` announces, and ends a session that keeps going past them; yet some of what the
//! page sends goes out in bursts of its own: after a reconnect, a join for every channel and a
//! history request for every private conversation, then what was typed offline; a host page's
//! opens; commands typed faster than the server takes them. So the socket's writer sends each
//! frame, in order, only once a token bucket like the server's (a little slower) has one. What
//! is sent after the login waits for the `welcome` that says how fast it may go (a command
//! clicked while connecting): the server counts it against the session's bucket.

#![cfg_attr(not(feature = "hydrate"), allow(dead_code, reason = "the server build never connects"))]

use crate::protocol::Limits;

/// How a `quit` frame starts, as the writer sees it queued.
const QUIT: &str = r#"{"type":"run","command":{"command":"quit""#;

/// Drops what waits ahead of a `quit` (the last one): the session ends (a logout, a new login
/// in the tab), so the rest is moot, and the quit should not wait its turn behind it, paced.
pub(crate) fn skip_to_quit(waiting: &mut Vec<String>) {
    if let Some(quit) = waiting.iter().rposition(|text| text.starts_with(QUIT)) {
        waiting.drain(..quit);
    }
}

/// The server's rate, slowed by this share, so that clocks drifting apart never make a frame
/// come too early.
const SLOWER: f64 = 0.9;

/// How long (ms) frames after the login wait for the `welcome`, looking again every
/// [`WELCOME_POLL`] ms; past it they go unpaced, as to a server that says nothing of limits.
const WELCOME_WAIT: f64 = 5_000.0;
const WELCOME_POLL: f64 = 50.0;

/// A connection's bucket, started by its `welcome`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pacer {
    /// Tokens per ms, and the most the bucket holds; none until a `welcome` said, nor when it
    /// said there is no limit (a rate of 0).
    rate: Option<(f64, f64)>,
    tokens: f64,
    /// When `tokens` was counted (ms).
    at: f64,
    /// When the login (the first frame) went, until a `welcome` came.
    login: Option<f64>,
    welcomed: bool,
}

impl Pacer {
    /// Paces by `limits` (a `welcome`'s) from `now` on. The bucket holds a frame less than the
    /// server's, for headroom. A new session's starts full, a resumed one's with the
    /// `allowance` the server says it has left.
    pub(crate) fn start(&mut self, limits: &Limits, now: f64) {
        let burst = f64::from(limits.burst.max(2) - 1);
        let per_ms = f64::from(limits.per_second) * SLOWER / 1000.0;
        let rate = (limits.per_second > 0).then_some((per_ms, burst));
        let tokens = limits.allowance.map_or(burst, |left| f64::from(left).min(burst));
        *self = Self { rate, tokens, at: now, login: None, welcomed: true };
    }

    /// Takes a token for a frame sent at `now`, or says in how many ms there is one.
    pub(crate) fn take(&mut self, now: f64) -> Result<(), f64> {
        if !self.welcomed {
            match self.login {
                None => self.login = Some(now),
                // (A clock set back further than the wait does not hold frames back for longer.)
                Some(login) if (now - login).abs() < WELCOME_WAIT => return Err(WELCOME_POLL),
                Some(_) => {}
            }
        }
        let Some((per_ms, burst)) = self.rate else { return Ok(()) };
        // (A clock set back counts as no time passed.)
        self.tokens = (self.tokens + (now - self.at).max(0.0) * per_ms).min(burst);
        self.at = now;
        // (A wait for a whole token may come back a rounding short of one.)
        if self.tokens + 1e-9 >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err((1.0 - self.tokens) / per_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's bucket (`FloodControl`): `burst` full, `per_second` back a second.
    struct Server {
        tokens: f64,
        at: f64,
        limits: Limits,
    }

    impl Server {
        /// Brings the bucket up to `now`; answers the whole frames in it (its `allowance`).
        fn refill(&mut self, now: f64) -> u32 {
            let burst = f64::from(self.limits.burst);
            self.tokens =
                (self.tokens + (now - self.at) * f64::from(self.limits.per_second) / 1000.0).min(burst);
            self.at = now;
            self.tokens as u32
        }

        fn take(&mut self, now: f64) -> bool {
            self.refill(now);
            let ok = self.tokens >= 1.0;
            if ok {
                self.tokens -= 1.0;
            }
            ok
        }
    }

    fn limits(burst: u32, per_second: u32) -> Limits {
        Limits { max_text_bytes: 4000, max_frame_bytes: 16384, burst, per_second, allowance: None }
    }

    /// Sends `count` frames one after the other from `at`, each as soon as the pacer lets it
    /// (as the writer does: take, else wait what it says and take again); answers when each went.
    fn send(pacer: &mut Pacer, server: &mut Server, count: usize, at: f64) -> Vec<f64> {
        let mut now = at;
        (0..count)
            .map(|_| {
                while let Err(ms) = pacer.take(now) {
                    assert!(ms > 0.0 && ms <= 1000.0 / SLOWER + 1.0, "a wait of {ms} ms");
                    now += ms;
                }
                assert!(server.take(now), "refused at {now} ms");
                now
            })
            .collect()
    }

    #[test]
    fn a_burst_past_the_servers_goes_at_its_rate_and_none_is_refused() {
        for (burst, per_second) in [(10, 2), (1, 1), (2, 1), (5, 100), (1000, 1000)] {
            let limits = limits(burst, per_second);
            let mut pacer = Pacer::default();
            pacer.start(&limits, 1_000.0);
            let mut server = Server { tokens: f64::from(burst), at: 0.0, limits };
            let sent = send(&mut pacer, &mut server, 60, 1_000.0);
            // A frame short of the burst at once, then the rest at nine tenths of the rate.
            let at_once = sent.iter().filter(|&&t| t == 1_000.0).count();
            assert_eq!(at_once, ((burst.max(2) - 1) as usize).min(60), "burst {burst}");
            let expected = (60 - at_once) as f64 / (f64::from(per_second) * SLOWER) * 1000.0;
            let end = sent[59];
            assert!((end - 1_000.0 - expected).abs() < 2.0, "burst {burst}: {end}");
            // A later frame, once the bucket refilled, goes at once again.
            assert_eq!(send(&mut pacer, &mut server, 1, end + 60_000.0), [end + 60_000.0]);
        }
    }

    #[test]
    fn a_resumed_session_starts_from_the_allowance_its_welcome_says_is_left() {
        let limits = limits(10, 2);
        let mut pacer = Pacer::default();
        pacer.start(&limits, 0.0);
        let mut server = Server { tokens: 10.0, at: 0.0, limits: limits.clone() };
        let before = send(&mut pacer, &mut server, 15, 0.0);
        // The connection drops right after those; the session resumes on a new one 100 ms
        // later, and the server's bucket is the one it had (whole frames, as it says them).
        let back = before[14] + 100.0;
        let allowance = server.refill(back);
        assert!(allowance < 9, "{allowance}");
        let mut pacer = Pacer::default();
        pacer.start(&Limits { allowance: Some(allowance), ..limits.clone() }, back);
        let after = send(&mut pacer, &mut server, 15, back);
        // As many at once as it has left, the rest at the rate, none refused.
        assert_eq!(after.iter().filter(|&&t| t == back).count(), allowance as usize, "{after:?}");
        // Another login is a new session, with a new, full bucket on the server.
        let later = after[14] + 1.0;
        let mut pacer = Pacer::default();
        pacer.start(&limits, later);
        let mut server = Server { tokens: 10.0, at: later, limits };
        let fresh = send(&mut pacer, &mut server, 9, later);
        assert!(fresh.iter().all(|&t| t == later), "{fresh:?}");
    }

    #[test]
    fn a_quit_goes_before_what_waits_ahead_of_it() {
        use crate::protocol::{ClientFrame, Command};
        let frame = |command| serde_json::to_string(&ClientFrame::Run { command, txn: None }).unwrap();
        let join = |channel: &str| frame(Command::Join { channel: channel.into(), key: None });
        let quit = frame(Command::Quit { reason: Some("bye".into()) });
        let mut waiting = vec![join("#a"), join("#b")];
        skip_to_quit(&mut waiting);
        assert_eq!(waiting.len(), 2, "nothing to skip without a quit");
        waiting.push(quit.clone());
        waiting.push(join("#c"));
        skip_to_quit(&mut waiting);
        assert_eq!(waiting, [quit, join("#c")]);
        let mut waiting = vec![frame(Command::Quit { reason: None })];
        skip_to_quit(&mut waiting);
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn after_the_login_frames_wait_for_the_welcome_and_go_at_its_pace() {
        let limits = limits(3, 1);
        let mut pacer = Pacer::default();
        assert_eq!(pacer.take(0.0), Ok(()), "the login goes at once");
        // A command clicked while connecting waits for the welcome, however long the bucket
        // would allow it to have gone.
        let mut now = 0.0;
        while let Err(ms) = pacer.take(now) {
            assert!(ms > 0.0 && ms <= WELCOME_POLL, "{ms}");
            now += ms;
            if now >= 300.0 {
                pacer.start(&limits, now);
            }
        }
        assert_eq!(now, 300.0, "it went once the welcome came");
        // Then it is one of the bucket's: a frame short of the burst at once, then the rate.
        let mut server = Server { tokens: 3.0, at: 300.0, limits };
        assert!(server.take(now));
        let next = send(&mut pacer, &mut server, 3, now);
        assert_eq!(next[0], now);
        assert!(next[1] > now, "{next:?}");
        // Without a welcome, frames after the login go unpaced once the wait is over; so after
        // a clock set back by more than the wait.
        for later in [WELCOME_WAIT, -WELCOME_WAIT] {
            let mut pacer = Pacer::default();
            assert_eq!(pacer.take(0.0), Ok(()));
            assert!(pacer.take(later - later.signum()).is_err());
            assert!((0..100).all(|_| pacer.take(later).is_ok()), "{later}");
        }
    }

    #[test]
    fn without_a_rate_nothing_waits_and_a_clock_set_back_sends_nothing_early() {
        let mut pacer = Pacer::default();
        // A rate of 0 is no flood control on the server: nothing waits.
        pacer.start(&limits(10, 0), 0.0);
        assert!((0..100).all(|_| pacer.take(0.0).is_ok()));
        pacer.start(&limits(3, 1), 0.0);
        assert_eq!((pacer.take(0.0), pacer.take(0.0)), (Ok(()), Ok(())));
        let wait = pacer.take(0.0).expect_err("the third waits");
        assert!(pacer.take(wait - 1.0).is_err(), "not before its time");
        assert_eq!(pacer.take(wait), Ok(()));
        // A clock set back an hour: nothing goes early, and the wait stays short.
        let back = pacer.take(wait - 3_600_000.0).expect_err("the bucket is empty");
        assert!(back <= 1000.0 / SLOWER + 1.0, "{back}");
    }
}
