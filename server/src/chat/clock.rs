//! Time, chance and numbering for what the core applies. On a single node they are the real
//! clock and fresh random numbers. In a cluster every node applies the same operations in the
//! order of the shared log and must come to the same state, so an operation carries the time
//! and a random seed its node chose, and every node applies it with those ([`OpClock`]);
//! message ids carry the number of the node that gave them ([`IdSpace`]).
//!
//! An operation's clock holds on the thread applying it, for as long as it applies
//! ([`OpClock::during`]): a call the node answers on its own meanwhile, on another thread,
//! reads the real time and draws its own numbers, never the operation's (a draw taken from the
//! operation's sequence would leave this node's copy unlike the others').

use std::cell::{Cell, RefCell};
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

thread_local! {
    /// The clock of the operation this thread is applying, if any.
    static APPLYING: RefCell<Option<OpClock>> = const { RefCell::new(None) };
}

/// Takes the operation's clock off the thread, however its application ends (a panic too).
struct Applied;

impl Drop for Applied {
    fn drop(&mut self) {
        APPLYING.with(|c| c.borrow_mut().take());
    }
}

impl OpClock {
    /// Runs `f` on this thread at the operation's time and with its random numbers.
    pub(crate) fn during<R>(self, f: impl FnOnce() -> R) -> R {
        APPLYING.with(|c| *c.borrow_mut() = Some(self));
        let _applied = Applied;
        f()
    }

    /// `f` of the clock of the operation this thread is applying (none: the real one).
    pub(crate) fn current<R>(f: impl FnOnce(Option<&OpClock>) -> R) -> R {
        APPLYING.with(|c| f(c.borrow().as_ref()))
    }

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
    fn an_operations_clock_holds_on_its_thread_only_and_while_it_applies() {
        fn ms(c: Option<&OpClock>) -> Option<u64> {
            c.map(OpClock::ms)
        }
        let during = OpClock::new(1_000, 7, true).during(|| {
            let elsewhere = std::thread::spawn(|| OpClock::current(ms)).join().unwrap();
            (OpClock::current(ms), elsewhere)
        });
        assert_eq!(during, (Some(1_000), None), "another thread reads the real clock meanwhile");
        assert_eq!(OpClock::current(ms), None, "and so does this one after");
        let panicked = std::panic::catch_unwind(|| OpClock::new(2_000, 7, true).during(|| panic!("boom")));
        assert!(panicked.is_err());
        assert_eq!(OpClock::current(ms), None, "an application that panicked leaves no clock behind");
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
