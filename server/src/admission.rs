//! Per-address connection limits, decided when a connection is accepted and before a byte of
//! it is read: how many connections one address may hold open at once, and a token bucket (a
//! burst, then a steady rate) for how fast it may open new ones.
//!
//! Limits count address groups rather than addresses: an IPv4 address on its own, an IPv6
//! address by its /64 (one subscriber or one machine usually gets a whole /64, so counting
//! single IPv6 addresses would give it billions of allowances), and an IPv4-mapped IPv6
//! address as the IPv4 address it is.
//!
//! The table holds a group while it has connections open or its bucket is still refilling,
//! and is swept once a second: so it never holds more than the open connections' groups plus
//! the groups that connected within the last `burst / per_second` seconds and one more. Time
//! is passed in, which makes the rules testable without waiting.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::flood::Bucket;

/// What the limits count: an IPv4 address, or the /64 prefix of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Group {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6(u64),
}

impl Group {
    /// The group `ip` counts in.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Group::V4(v4),
            IpAddr::V6(v6) => Group::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::V4(v4) => write!(f, "{v4}"),
            Group::V6(prefix) => write!(f, "{}/64", Ipv6Addr::from_bits(u128::from(*prefix) << 64)),
        }
    }
}

/// The limits, per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections open at once; `0` means no limit.
    pub max_open: u32,
    /// New connections in a burst (at least one).
    pub burst: u32,
    /// New connections per second once the burst is spent; `0` means no limit.
    pub per_second: u32,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its group already has `max_open` connections.
    TooMany = 0,
    /// Its group opened connections faster than the rate allows.
    TooFast = 1,
}

impl Limits {
    /// The limits configured.
    pub(crate) fn of(config: &crate::Config) -> Self {
        Self {
            max_open: config.max_conns_per_ip,
            burst: config.conn_burst_per_ip,
            per_second: config.conn_rate_per_ip,
        }
    }
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::TooMany => "too many connections from this address",
            Refusal::TooFast => "connecting too fast from this address",
        }
    }
}

/// How often the table is swept for groups that need no entry any more.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Entry {
    open: u32,
    bucket: Bucket,
}

/// Open connections and connection buckets of every group that needs them.
#[derive(Debug)]
pub(crate) struct Admission {
    max_open: u32,
    burst: f64,
    per_second: f64,
    groups: HashMap<Group, Entry>,
    next_sweep: Instant,
    /// Connections refused since the start: too many open, too fast.
    refused: [u64; 2],
}

impl Admission {
    pub(crate) fn new(limits: Limits, now: Instant) -> Self {
        Self {
            max_open: limits.max_open,
            burst: f64::from(limits.burst.max(1)),
            per_second: f64::from(limits.per_second),
            groups: HashMap::new(),
            next_sweep: now + SWEEP_EVERY,
            refused: [0; 2],
        }
    }

    /// Whether there are no limits at all, so nothing needs counting.
    pub(crate) fn is_off(&self) -> bool {
        self.max_open == 0 && self.per_second == 0.0
    }

    /// Counts a connection of `group` arriving at `now`: `Ok` if it may stay, to be given back
    /// with [`Admission::release`] when it closes. Every attempt takes a token, even one then
    /// refused for having too many open, so hammering on a full group stays rate-limited too.
    pub(crate) fn admit(&mut self, group: Group, now: Instant) -> Result<(), Refusal> {
        if self.is_off() {
            return Ok(());
        }
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let (burst, per_second) = (self.burst, self.per_second);
        let entry = self.groups.entry(group).or_insert(Entry { open: 0, bucket: Bucket::full(burst, now) });
        if per_second > 0.0 && !entry.bucket.take(burst, per_second, now) {
            return Err(Refusal::TooFast);
        }
        if self.max_open > 0 && entry.open >= self.max_open {
            return Err(Refusal::TooMany);
        }
        entry.open += 1;
        Ok(())
    }

    /// Gives back a connection that [`Admission::admit`] let in.
    pub(crate) fn release(&mut self, group: Group, now: Instant) {
        let (burst, per_second) = (self.burst, self.per_second);
        if let Some(entry) = self.groups.get_mut(&group) {
            entry.open = entry.open.saturating_sub(1);
            if !entry.needed(now, burst, per_second) {
                self.groups.remove(&group);
            }
        }
    }

    /// Groups in the table.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.groups.len()
    }

    /// Open connections counted for `group`.
    #[cfg(test)]
    pub(crate) fn open(&self, group: Group) -> u32 {
        self.groups.get(&group).map_or(0, |e| e.open)
    }

    /// Drops the groups with nothing open and a full bucket: a new entry would be the same.
    fn sweep(&mut self, now: Instant) {
        let (burst, per_second) = (self.burst, self.per_second);
        self.groups.retain(|_, entry| entry.needed(now, burst, per_second));
        self.next_sweep = now + SWEEP_EVERY;
    }
}

/// The table, shared by the listener (which counts each connection's peer) and the WebSocket
/// upgrade (which counts the client behind a trusted proxy), handing out counts that are given
/// back when dropped.
#[derive(Debug, Clone)]
pub(crate) struct Gate(Arc<Mutex<Admission>>);

impl Gate {
    pub(crate) fn new(limits: Limits) -> Self {
        Self(Arc::new(Mutex::new(Admission::new(limits, Instant::now()))))
    }

    /// Counts a connection from `ip` arriving now: its count, held for as long as the
    /// connection is (`None` when there are no limits, so nothing is counted), or why it must
    /// be closed.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Option<Counted>, Refusal> {
        let group = Group::of(ip);
        let mut table = self.lock();
        if let Err(refusal) = table.admit(group, Instant::now()) {
            tracing::debug!(%group, reason = refusal.as_str(), "connection refused");
            table.refused[refusal as usize] += 1;
            return Err(refusal);
        }
        Ok((!table.is_off()).then(|| Counted { gate: self.clone(), group }))
    }

    /// Connections refused since the start, by reason.
    pub(crate) fn refusals(&self) -> [(&'static str, u64); 2] {
        let refused = self.lock().refused;
        [("too_many", refused[Refusal::TooMany as usize]), ("too_fast", refused[Refusal::TooFast as usize])]
    }

    fn lock(&self) -> MutexGuard<'_, Admission> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's count in its address group, given back when it is dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    gate: Gate,
    group: Group,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.gate.lock().release(self.group, Instant::now());
    }
}

impl Entry {
    /// Whether this entry still says something a fresh one would not.
    fn needed(&mut self, now: Instant, burst: f64, per_second: f64) -> bool {
        self.open > 0 || (per_second > 0.0 && !self.bucket.is_full(burst, per_second, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits(max_open: u32, burst: u32, per_second: u32) -> Limits {
        Limits { max_open, burst, per_second }
    }

    #[test]
    fn ipv6_addresses_are_grouped_by_their_64_bit_prefix() {
        let a = Group::of(ip("2001:db8:1:2::1"));
        assert_eq!(a, Group::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(a, Group::of(ip("2001:db8:1:3::1")));
        assert_ne!(a, Group::of(ip("2001:db8:2:2::1")));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_addresses_count_alone_and_mapped_ones_as_themselves() {
        let a = Group::of(ip("192.0.2.7"));
        assert_eq!(a, Group::of(ip("::ffff:192.0.2.7")));
        assert_ne!(a, Group::of(ip("192.0.2.8")));
        assert_eq!(a.to_string(), "192.0.2.7");
        // Two mapped addresses share no /64 group: each is its own IPv4 address.
        assert_ne!(Group::of(ip("::ffff:192.0.2.7")), Group::of(ip("::ffff:192.0.2.8")));
    }

    #[test]
    fn a_group_may_hold_at_most_max_open_connections() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(3, 100, 0), t0);
        let g = Group::of(ip("192.0.2.1"));
        for _ in 0..3 {
            assert_eq!(a.admit(g, t0), Ok(()));
        }
        assert_eq!(a.admit(g, t0), Err(Refusal::TooMany));
        // Other groups are not affected.
        assert_eq!(a.admit(Group::of(ip("192.0.2.2")), t0), Ok(()));
        a.release(g, t0);
        assert_eq!(a.open(g), 2);
        assert_eq!(a.admit(g, t0), Ok(()));
        assert_eq!(a.admit(g, t0), Err(Refusal::TooMany));
    }

    #[test]
    fn a_burst_of_connections_is_allowed_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(0, 4, 2), t0);
        let g = Group::of(ip("2001:db8::1"));
        for _ in 0..4 {
            assert_eq!(a.admit(g, t0), Ok(()));
        }
        assert_eq!(a.admit(g, t0), Err(Refusal::TooFast));
        // Closing connections gives no tokens back: the bucket counts openings.
        for _ in 0..4 {
            a.release(g, t0);
        }
        assert_eq!(a.admit(g, t0), Err(Refusal::TooFast));
        // Half a second buys one more at 2 per second.
        let later = t0 + Duration::from_millis(500);
        assert_eq!(a.admit(g, later), Ok(()));
        assert_eq!(a.admit(g, later), Err(Refusal::TooFast));
        // A long pause refills the burst but not beyond it.
        let much_later = t0 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(a.admit(g, much_later), Ok(()));
        }
        assert_eq!(a.admit(g, much_later), Err(Refusal::TooFast));
    }

    #[test]
    fn every_attempt_takes_a_token_even_one_refused_for_too_many_open() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(1, 3, 1), t0);
        let g = Group::of(ip("192.0.2.1"));
        assert_eq!(a.admit(g, t0), Ok(()));
        assert_eq!(a.admit(g, t0), Err(Refusal::TooMany));
        assert_eq!(a.admit(g, t0), Err(Refusal::TooMany));
        assert_eq!(a.admit(g, t0), Err(Refusal::TooFast));
    }

    #[test]
    fn a_group_leaves_the_table_once_closed_and_refilled() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(10, 2, 1), t0);
        let g = Group::of(ip("192.0.2.1"));
        a.admit(g, t0).unwrap();
        a.admit(g, t0).unwrap();
        a.release(g, t0);
        a.release(g, t0);
        // Closed, but the bucket is empty: forgetting it would hand out a fresh burst.
        assert_eq!(a.tracked(), 1);
        a.admit(Group::of(ip("192.0.2.2")), t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(a.tracked(), 2);
        // Three seconds later its bucket is full again: the next sweep forgets it, but not the
        // group with a connection open.
        a.admit(Group::of(ip("192.0.2.3")), t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(a.tracked(), 2);
        assert_eq!(a.open(g), 0);
        assert_eq!(a.open(Group::of(ip("192.0.2.2"))), 1);
    }

    #[test]
    fn a_group_with_a_full_bucket_leaves_the_table_when_its_last_connection_closes() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(10, 5, 1), t0);
        let g = Group::of(ip("192.0.2.1"));
        a.admit(g, t0).unwrap();
        a.release(g, t0 + Duration::from_secs(1));
        assert_eq!(a.tracked(), 0);
        // Without a rate there is no bucket to wait for.
        let mut counts_only = Admission::new(limits(10, 5, 0), t0);
        counts_only.admit(g, t0).unwrap();
        counts_only.release(g, t0);
        assert_eq!(counts_only.tracked(), 0);
    }

    #[test]
    fn many_passing_groups_do_not_pile_up() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(32, 20, 5), t0);
        // A thousand groups a second, each connecting once and closing; a group's bucket is
        // full again within 0.2 s, so only about the last second's groups stay.
        for i in 0..100_000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            let g = Group::of(IpAddr::V6(Ipv6Addr::from_bits(u128::from(i) << 64)));
            a.admit(g, now).unwrap();
            a.release(g, now);
        }
        assert!(a.tracked() <= 1_200, "{} groups tracked", a.tracked());
    }

    #[test]
    fn no_limits_count_nothing() {
        let t0 = Instant::now();
        let mut a = Admission::new(limits(0, 1, 0), t0);
        assert!(a.is_off());
        let g = Group::of(ip("192.0.2.1"));
        for _ in 0..10_000 {
            assert_eq!(a.admit(g, t0), Ok(()));
        }
        assert_eq!(a.tracked(), 0);
        a.release(g, t0);
    }
}
