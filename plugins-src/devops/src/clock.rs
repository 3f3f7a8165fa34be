//! Timestamps for the history, from the WASI wall clock the host provides or from the host's
//! job records, and durations as people read them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as RFC 3339 UTC with seconds (`2026-11-25T13:35:35Z`).
pub(crate) fn now_rfc3339() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(seconds)
}

/// A job time (milliseconds since the Unix epoch) as RFC 3339 UTC with seconds.
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    rfc3339(ms / 1000)
}

/// `850 ms`, `12 s`, `3 min 05 s`, `1 h 02 min`.
pub(crate) fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        0 => format!("{ms} ms"),
        1..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Format seconds since the Unix epoch; days to civil date after Howard Hinnant's algorithm.
pub(crate) fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let secs_of_day = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_613_735), "2026-11-25T13:35:35Z");
        assert_eq!(rfc3339_ms(1_795_613_735_999), "2026-11-25T13:35:35Z");
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [(850, "850 ms"), (12_400, "12 s"), (185_000, "3 min 05 s"), (3_720_000, "1 h 02 min")];
        for (ms, text) in cases {
            assert_eq!(duration(ms), text);
        }
    }
}
