//! Time, chance and numbering for what the core applies. On a single node they are the real
//! clock and fresh random numbers. In a cluster every node applies the same operations in the
//! order of the shared log and must come to the same state, so an operation carries the time
//! and a random seed its node chose, and every node applies it with those ([`OpClock`]);
//! message ids carry the number of the node that gave them ([`IdSpace`]).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::now_ms;

/// The time and the random numbers of one operation from the cluster's log.
#[derive(Debug)]
pub(crate) struct OpClock {
    ms: u64,
    at: Instant,
    rng: Cell<u64>,
    /// Whether the operation came from this node (which alone tells the app's webhooks).
    here: bool,
}

impl OpClock {
    /// An operation its node stamped `ms` (Unix milliseconds) and seeded with `seed`; `here`
    /// when that node is this one.
    pub(crate) fn new(ms: u64, seed: u64, here: bool) -> Self {
        // The same moment on this node's monotonic clock: as long ago as its wall time says.
        let ago = Duration::from_millis(now_ms().saturating_sub(ms));
        let at = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
        Self { ms, at, rng: Cell::new(seed), here }
    }

    pub(crate) fn here(&self) -> bool {
        self.here
    }

    pub(crate) fn ms(&self) -> u64 {
        self.ms
    }

    pub(crate) fn instant(&self) -> Instant {
        self.at
    }

    /// The next number of the operation's sequence (SplitMix64: every node draws the same).
    pub(crate) fn random(&self) -> u64 {
        let state = self.rng.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.rng.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// How message ids are spread between nodes: a node's ids are `slot` modulo `step`, so two
/// nodes never give the same one. A single node has the whole space (step 1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdSpace {
    pub step: u64,
    pub slot: u64,
}

impl Default for IdSpace {
    fn default() -> Self {
        Self { step: 1, slot: 0 }
    }
}

impl IdSpace {
    /// The id after `last` at Unix millisecond `now`: above `last`, and growing with time so
    /// ids stay unique across restarts, below 2^53 so JavaScript reads them exactly.
    pub(crate) fn next(self, last: u64, now: u64) -> u64 {
        let floor = now << 10;
        ((last / self.step + 1).max(floor / self.step)) * self.step + self.slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_numbers_as_before() {
        let one = IdSpace::default();
        assert_eq!(one.next(5, 0), 6);
        assert_eq!(one.next(5, 1), 1024);
        assert_eq!(one.next(5000, 1), 5001);
    }

    #[test]
    fn nodes_of_a_cluster_never_give_the_same_id() {
        let a = IdSpace { step: 16, slot: 3 };
        let b = IdSpace { step: 16, slot: 11 };
        let (mut la, mut lb) = (0, 0);
        let mut seen = std::collections::HashSet::new();
        for now in [1_000, 1_000, 1_000, 1_001, 1_001, 999, 2_000] {
            for _ in 0..100 {
                let ia = a.next(la, now);
                let ib = b.next(lb, now);
                assert!(ia > la && ib > lb, "ids grow");
                assert_eq!((ia % 16, ib % 16), (3, 11));
                assert!(seen.insert(ia) && seen.insert(ib), "an id given twice");
                (la, lb) = (ia, ib);
            }
        }
    }

    #[test]
    fn every_node_draws_the_same_numbers_for_an_operation() {
        let here = OpClock::new(1_700_000_000_000, 42, true);
        let there = OpClock::new(1_700_000_000_000, 42, true);
        let draws = |c: &OpClock| (0..4).map(|_| c.random()).collect::<Vec<_>>();
        let mine = draws(&here);
        assert_eq!(mine, draws(&there));
        assert_ne!(mine[0], mine[1]);
        assert_ne!(draws(&OpClock::new(1, 43, true))[0], mine[0]);
    }
}
