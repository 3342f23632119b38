//! Times and dates of lines in local time, from a UTC offset in minutes, by hand: a date
//! library would weigh more in the bundle than the clock and calendar the UI needs.

const MINUTES_PER_DAY: i64 = 24 * 60;
/// Day 0, 1 January 1970, was a Thursday.
const WEEKDAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Minutes since the epoch, local time.
fn local_minutes(ts_ms: u64, utc_offset_minutes: i64) -> i64 {
    (ts_ms / 60_000) as i64 + utc_offset_minutes
}

/// The local day of a timestamp (ms since the epoch), counted in days since 1 January 1970.
pub fn day(ts_ms: u64, utc_offset_minutes: i64) -> i64 {
    local_minutes(ts_ms, utc_offset_minutes).div_euclid(MINUTES_PER_DAY)
}

/// `HH:MM` of a timestamp (ms since the epoch) at a UTC offset in minutes.
pub fn clock(ts_ms: u64, utc_offset_minutes: i64) -> String {
    let of_day = local_minutes(ts_ms, utc_offset_minutes).rem_euclid(MINUTES_PER_DAY);
    format!("{:02}:{:02}", of_day / 60, of_day % 60)
}

/// Year, month (1–12) and day of the month of a day counted from 1 January 1970 (the
/// proleptic Gregorian calendar; Howard Hinnant's `civil_from_days`).
fn civil(day: i64) -> (i64, usize, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as usize, d)
}

/// A day in words: "Monday 30 November 2026".
pub fn date(day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{} {d} {} {y}", WEEKDAYS[day.rem_euclid(7) as usize], MONTHS[m - 1])
}

/// What a day separator says: "Today", "Yesterday" or the date.
pub fn day_label(day: i64, today: i64) -> String {
    match today - day {
        0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        _ => date(day),
    }
}

/// The full date and time, for hovering a line's time: "Monday 30 November 2026 at 14:05:09".
pub fn full(ts_ms: u64, utc_offset_minutes: i64) -> String {
    let seconds = ts_ms / 1000 % 60;
    let day = day(ts_ms, utc_offset_minutes);
    format!("{} at {}:{seconds:02}", date(day), clock(ts_ms, utc_offset_minutes))
}

/// The instant in UTC as ISO 8601, for a `<time datetime>`: "2026-11-30T13:05:09Z".
pub fn iso(ts_ms: u64) -> String {
    let (y, m, d) = civil(day(ts_ms, 0));
    format!("{y:04}-{m:02}-{d:02}T{}:{:02}Z", clock(ts_ms, 0), ts_ms / 1000 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 86_400_000;

    #[test]
    fn clocks_read_local_time() {
        assert_eq!(clock(0, 0), "00:00");
        assert_eq!(clock(13 * 3_600_000 + 5 * 60_000, 60), "14:05");
        assert_eq!(clock(30 * 60_000, -60), "23:30");
    }

    #[test]
    fn days_are_local_and_dated_in_words() {
        assert_eq!(date(0), "Thursday 1 January 1970");
        assert_eq!(date(20_787), "Monday 30 November 2026");
        assert_eq!(date(19_782), "Thursday 29 February 2024");
        assert_eq!(date(-1), "Wednesday 31 December 1969");
        assert_eq!(date(10_956), "Friday 31 December 1999");
        // 23:30 UTC is the next day an hour east of it, and the same day west of it.
        let late = 20_787 * DAY_MS + 23 * 3_600_000 + 30 * 60_000;
        assert_eq!((day(late, 0), day(late, 60), day(late, -600)), (20_787, 20_788, 20_787));
        assert_eq!(day_label(20_787, 20_787), "Today");
        assert_eq!(day_label(20_786, 20_787), "Yesterday");
        assert_eq!(day_label(20_785, 20_787), "Saturday 28 November 2026");
        assert_eq!(full(late + 9_000, 60), "Tuesday 1 December 2026 at 00:30:09");
        assert_eq!(iso(late + 9_000), "2026-11-30T23:30:09Z");
    }
}
