//! Gives memory back to the system once many connections have ended.
//!
//! glibc's allocator keeps what a program frees for its next allocations: only free space at
//! the very top of a heap goes back on its own, so after thousands of connections leave, the
//! hundreds of megabytes they used stay with the process, scattered among what is still in use
//! (docs/benchmarks.md). `malloc_trim` hands every free page back. It walks the allocator's
//! arenas, locking each for a moment, so it runs only after a wave of departures, never per
//! connection, and off the async workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::Inner;

/// How often departures are looked at: at most one trim per period.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// How many sessions must have ended since the last trim for another.
const DEPARTURES: usize = 256;

/// Sessions ended since the last trim.
static DEPARTED: AtomicUsize = AtomicUsize::new(0);

/// Counts a session that has ended and let go of what it held.
pub(crate) fn departed() {
    DEPARTED.fetch_add(1, Ordering::Relaxed);
}

/// Trims after each wave of departures, until shutdown: every [`DEPARTURES`] sessions while
/// the wave goes on, and once more when it is over (the wave's tail, fewer than that, would
/// otherwise keep what it freed).
pub(crate) async fn give_back_after_departures(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Departures counted at the last look, and whether a wave is under way (trimmed in).
    let mut last_seen = 0;
    let mut in_wave = false;
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let seen = DEPARTED.load(Ordering::Relaxed);
        let wave_over = in_wave && seen > 0 && seen == last_seen;
        last_seen = seen;
        if seen < DEPARTURES && !wave_over {
            continue;
        }
        in_wave = !wave_over;
        last_seen = 0;
        let departed = DEPARTED.swap(0, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let released = tokio::task::spawn_blocking(trim).await.unwrap_or(false);
        tracing::debug!(departed, released, took = ?started.elapsed(), "memory trimmed");
    }
}

/// Returns free memory to the system; whether any was.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointers and only works on the allocator's own free lists;
    // it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}
