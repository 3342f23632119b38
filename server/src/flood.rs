//! Per-connection flood control: a token bucket (a burst, then a steady rate) plus a strike
//! count, so a client that keeps pushing past the limit is disconnected. Time is passed in,
//! which makes the rules testable without waiting. [`Bucket`] also meters new connections
//! (see [`crate::admission`]).

use std::time::{Duration, Instant};

/// What to do with one incoming frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse this frame; the client may retry later.
    Refuse,
    /// The client keeps flooding: disconnect it.
    Disconnect,
}

/// How long refused frames are counted before the count starts over.
const STRIKE_WINDOW: Duration = Duration::from_secs(10);

/// A token bucket's level. Its size (`burst`) and refill rate are passed in, so that many
/// buckets with the same ones need not each store them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(burst: f64, now: Instant) -> Self {
        Self { tokens: burst, last: now }
    }

    /// Takes a token if there is one.
    pub(crate) fn take(&mut self, burst: f64, per_second: f64, now: Instant) -> bool {
        self.refill(burst, per_second, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        false
    }

    /// Whether the bucket has refilled to its size by `now`.
    pub(crate) fn is_full(&mut self, burst: f64, per_second: f64, now: Instant) -> bool {
        self.refill(burst, per_second, now);
        self.tokens >= burst
    }

    fn refill(&mut self, burst: f64, per_second: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(burst);
        self.last = now;
    }
}

#[derive(Debug, Clone)]
pub struct FloodControl {
    burst: f64,
    per_second: f64,
    max_strikes: u32,
    bucket: Bucket,
    strikes: u32,
    window_start: Instant,
}

impl FloodControl {
    /// `burst` frames at once, then `per_second`; `max_strikes` refusals within ten seconds
    /// disconnect. A zero rate means no limit.
    pub fn new(burst: u32, per_second: u32, max_strikes: u32, now: Instant) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second),
            max_strikes: max_strikes.max(1),
            bucket: Bucket::full(f64::from(burst.max(1)), now),
            strikes: 0,
            window_start: now,
        }
    }

    /// Spends what the bucket holds at `now`: what comes next comes at the rate.
    pub fn spend_all(&mut self, now: Instant) {
        self.bucket = Bucket { tokens: 0.0, last: now };
    }

    /// The frames it would let through at once at `now`; `None` when there is no limit.
    pub fn allowance(&mut self, now: Instant) -> Option<u32> {
        if self.per_second == 0.0 {
            return None;
        }
        self.bucket.refill(self.burst, self.per_second, now);
        // (Whole frames: a token bucket's fraction lets nothing through yet.)
        Some(self.bucket.tokens as u32)
    }

    /// Counts one frame arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.per_second == 0.0 {
            return Verdict::Allow;
        }
        if self.bucket.take(self.burst, self.per_second, now) {
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start) > STRIKE_WINDOW {
            self.window_start = now;
            self.strikes = 0;
        }
        self.strikes += 1;
        if self.strikes >= self.max_strikes {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut f = FloodControl::new(5, 2, 100, t0);
        for _ in 0..5 {
            assert_eq!(f.check(t0), Verdict::Allow);
        }
        assert_eq!(f.check(t0), Verdict::Refuse);
        // Half a second buys one more frame at 2 per second.
        assert_eq!(f.check(t0 + Duration::from_millis(500)), Verdict::Allow);
        assert_eq!(f.check(t0 + Duration::from_millis(500)), Verdict::Refuse);
        // A long pause refills the burst but not beyond it.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(f.check(later), Verdict::Allow);
        }
        assert_eq!(f.check(later), Verdict::Refuse);
    }

    #[test]
    fn sustained_flooding_disconnects() {
        let t0 = Instant::now();
        let mut f = FloodControl::new(2, 1, 5, t0);
        assert_eq!(f.check(t0), Verdict::Allow);
        assert_eq!(f.check(t0), Verdict::Allow);
        for _ in 0..4 {
            assert_eq!(f.check(t0), Verdict::Refuse);
        }
        assert_eq!(f.check(t0), Verdict::Disconnect);
    }

    #[test]
    fn strikes_are_forgotten_after_the_window() {
        let t0 = Instant::now();
        let mut f = FloodControl::new(1, 1, 3, t0);
        assert_eq!(f.check(t0), Verdict::Allow);
        assert_eq!(f.check(t0), Verdict::Refuse);
        assert_eq!(f.check(t0), Verdict::Refuse);
        let later = t0 + STRIKE_WINDOW + Duration::from_millis(1);
        assert_eq!(f.check(later), Verdict::Allow);
        assert_eq!(f.check(later), Verdict::Refuse);
        assert_eq!(f.check(later), Verdict::Refuse);
        assert_eq!(f.check(later), Verdict::Disconnect);
    }

    #[test]
    fn a_zero_rate_means_no_limit() {
        let t0 = Instant::now();
        let mut f = FloodControl::new(1, 0, 1, t0);
        for _ in 0..1000 {
            assert_eq!(f.check(t0), Verdict::Allow);
        }
        assert_eq!(f.allowance(t0), None);
    }

    #[test]
    fn the_allowance_is_what_goes_through_at_once() {
        let t0 = Instant::now();
        let mut f = FloodControl::new(5, 2, 100, t0);
        assert_eq!(f.allowance(t0), Some(5));
        for _ in 0..4 {
            f.check(t0);
        }
        assert_eq!(f.allowance(t0), Some(1));
        f.check(t0);
        // Refilling: nothing until a whole frame's worth, never past the burst.
        assert_eq!(f.allowance(t0 + Duration::from_millis(499)), Some(0));
        assert_eq!(f.allowance(t0 + Duration::from_millis(1_000)), Some(2));
        assert_eq!(f.allowance(t0 + Duration::from_secs(60)), Some(5));
        for _ in 0..5 {
            assert_eq!(f.check(t0 + Duration::from_secs(60)), Verdict::Allow);
        }
        assert_eq!(f.check(t0 + Duration::from_secs(60)), Verdict::Refuse);
    }
}
