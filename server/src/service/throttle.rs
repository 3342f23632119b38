//! Attempt throttling for Potato: at most so many attempts per key (a connection, an address,
//! an account seen from one address) within a sliding window. An attempt is counted *before*
//! the work it guards is done, so parallel attempts cannot all slip through before the first
//! one fails; a successful password check gives its attempt back. Time is passed in, so the
//! rules are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many attempts a key allows within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limit {
    pub max: usize,
    pub window: Duration,
}

/// Attempts counted against the keys they were reserved on.
#[derive(Debug)]
#[must_use = "an attempt is refunded or kept on purpose"]
pub(super) struct Attempt {
    keys: Vec<String>,
    at: Instant,
}

#[derive(Default)]
struct Entry {
    window: Duration,
    times: VecDeque<Instant>,
}

impl Entry {
    fn forget_before(&mut self, now: Instant) {
        while self.times.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            self.times.pop_front();
        }
    }
}

/// Counts attempts per key.
#[derive(Default)]
pub(super) struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
    last_sweep: Mutex<Option<Instant>>,
}

impl Throttle {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt at `now` against every key, if every key still allows one; `None`
    /// (and nothing counted) otherwise. A limit of `max: 0` is no limit: its key is skipped.
    pub(super) fn reserve(&self, keys: &[(String, Limit)], now: Instant) -> Option<Attempt> {
        let keys: Vec<&(String, Limit)> = keys.iter().filter(|(_, l)| l.max > 0).collect();
        let mut map = self.lock();
        // Forget what left every window, at most once a second, so the map holds only keys
        // with recent attempts without being walked on every attempt.
        let mut sweep = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
        if sweep.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1)) {
            *sweep = Some(now);
            map.retain(|_, e| {
                e.forget_before(now);
                !e.times.is_empty()
            });
        }
        for (key, _) in &keys {
            if let Some(e) = map.get_mut(key) {
                e.forget_before(now);
            }
        }
        let full = keys.iter().any(|(key, limit)| map.get(key).is_some_and(|e| e.times.len() >= limit.max));
        if full {
            return None;
        }
        for (key, limit) in &keys {
            let entry = map.entry(key.clone()).or_default();
            entry.window = entry.window.max(limit.window);
            entry.times.push_back(now);
        }
        Some(Attempt { keys: keys.iter().map(|(k, _)| k.clone()).collect(), at: now })
    }

    /// Gives an attempt back (the password was right).
    pub(super) fn refund(&self, attempt: Attempt) {
        let mut map = self.lock();
        for key in &attempt.keys {
            if let Some(entry) = map.get_mut(key) {
                if let Some(i) = entry.times.iter().position(|t| *t == attempt.at) {
                    entry.times.remove(i);
                }
                if entry.times.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    /// How many keys hold attempts (for tests: the map does not grow without bound).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE_A_MINUTE: Limit = Limit { max: 3, window: Duration::from_secs(60) };

    fn keys(names: &[&str]) -> Vec<(String, Limit)> {
        names.iter().map(|k| (k.to_string(), THREE_A_MINUTE)).collect()
    }

    #[test]
    fn attempts_are_counted_before_they_are_checked() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let k = keys(&["conn:1", "addr:a"]);
        // Three attempts in flight at once: the fourth is refused although none failed yet.
        let held: Vec<Attempt> = (0..3).map(|_| t.reserve(&k, t0).expect("allowed")).collect();
        assert!(t.reserve(&k, t0).is_none());
        // Another connection from the same address is held back too; another address is not.
        assert!(t.reserve(&keys(&["conn:2", "addr:a"]), t0).is_none());
        let other = t.reserve(&keys(&["conn:2", "addr:b"]), t0).expect("allowed");
        // A right password gives its attempt back.
        let mut held = held.into_iter();
        t.refund(held.next().unwrap());
        assert!(t.reserve(&k, t0).is_some());
        drop((held, other));
    }

    #[test]
    fn attempts_leave_the_window_and_the_map() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let k = keys(&["conn:1"]);
        for i in 0..3 {
            let _kept = t.reserve(&k, t0 + Duration::from_secs(i)).expect("allowed");
        }
        assert!(t.reserve(&k, t0 + Duration::from_secs(10)).is_none());
        // The oldest attempt leaves the window after a minute.
        assert!(t.reserve(&k, t0 + Duration::from_secs(60)).is_some());
        // Long after, nothing is kept for any key.
        let _ = t.reserve(&keys(&["conn:2"]), t0 + Duration::from_secs(600));
        assert_eq!(t.len(), 1);
        // A limit of 0 is no limit.
        let off = vec![("address:a".to_owned(), Limit { max: 0, window: Duration::from_secs(60) })];
        for _ in 0..100 {
            let _kept = t.reserve(&off, t0 + Duration::from_secs(600)).expect("no limit");
        }
    }

    #[test]
    fn each_key_has_its_own_limit() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let hour = Limit { max: 1, window: Duration::from_secs(3600) };
        let k = vec![("register:addr".to_owned(), hour), ("conn:1".to_owned(), THREE_A_MINUTE)];
        let _first = t.reserve(&k, t0).expect("allowed");
        assert!(t.reserve(&k, t0 + Duration::from_secs(120)).is_none());
        assert!(t.reserve(&k, t0 + Duration::from_secs(3600)).is_some());
    }
}
