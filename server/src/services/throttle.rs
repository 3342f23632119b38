//! Failed-password throttling: at most a few failures per key (an account, a connection)
//! within a sliding window. Time is passed in, so the rules are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether another attempt is allowed for every one of `keys` at `now`.
    pub fn allowed(&self, keys: &[String], now: Instant) -> bool {
        let mut map = self.lock();
        keys.iter().all(|key| {
            let Some(times) = map.get_mut(key) else { return true };
            while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                times.pop_front();
            }
            if times.is_empty() {
                map.remove(key);
                return true;
            }
            times.len() < self.max_failures
        })
    }

    /// Records a failed attempt against every one of `keys`.
    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut map = self.lock();
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_failures_a_minute_then_a_wait() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let keys = vec!["account:alice".to_owned(), "conn:1".to_owned()];
        for i in 0..3 {
            assert!(t.allowed(&keys, t0 + Duration::from_secs(i)));
            t.failed(&keys, t0 + Duration::from_secs(i));
        }
        assert!(!t.allowed(&keys, t0 + Duration::from_secs(10)));
        // Another connection is held back on the same account, and this connection on others.
        assert!(!t.allowed(&["account:alice".into(), "conn:2".into()], t0 + Duration::from_secs(10)));
        assert!(!t.allowed(&["account:bob".into(), "conn:1".into()], t0 + Duration::from_secs(10)));
        assert!(t.allowed(&["account:bob".into(), "conn:2".into()], t0 + Duration::from_secs(10)));
        // The oldest failure leaves the window after a minute.
        assert!(t.allowed(&keys, t0 + Duration::from_secs(60)));
    }
}
