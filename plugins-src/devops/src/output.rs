//! What of a deploy job's output the plugin shows: the tail kept in the record once the job
//! ends, and the last lines `status` shows while it runs.

use sanctum_guest::jobs;

/// How much of the command's output a record keeps, in characters.
pub(crate) const TAIL_CHARS: usize = 2000;
/// Bytes read for the record's tail: room for `TAIL_CHARS` characters of any UTF-8 width.
const TAIL_BYTES: u32 = 4 * TAIL_CHARS as u32;
/// Bytes read for the last lines `status` shows; long lines are cut rather than read whole.
const LINES_BYTES: u32 = 2048;

/// The last `TAIL_CHARS` characters of job `id`'s output, trimmed; when the output cannot be
/// read, why not, so the record says something either way.
pub(crate) fn record_tail(id: &str) -> String {
    match jobs::tail(id, TAIL_BYTES) {
        Ok(text) => last_chars(&text, TAIL_CHARS),
        Err(e) => format!("(the output could not be read: {e})"),
    }
}

/// The last `count` non-empty lines of job `id`'s output; none when it cannot be read, since
/// this only decorates a status the caller reports anyway.
pub(crate) fn last_lines(id: &str, count: usize) -> Vec<String> {
    jobs::tail(id, LINES_BYTES).map(|text| lines_of(&text, count)).unwrap_or_default()
}

/// The last `count` non-empty lines of `text`.
pub(crate) fn lines_of(text: &str, count: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].iter().map(|l| (*l).to_owned()).collect()
}

/// The last `max` characters of `text` without its trailing whitespace, trimmed.
pub(crate) fn last_chars(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.trim_end().chars().collect();
    chars[chars.len().saturating_sub(max)..].iter().collect::<String>().trim_start().to_owned()
}

// The jobs stand-in exists only off wasm, where tests run.
#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use sanctum_guest::jobs::{State, stand_in};

    #[test]
    fn the_record_keeps_the_end_of_long_output() {
        stand_in::grant("deploy-web");
        let id = jobs::start("deploy-web", &[]).expect("started").id;
        // Two-byte characters: the tail is counted in characters, not bytes.
        stand_in::write(&id, format!("{}last line\n", format!("{}\n", "é".repeat(49)).repeat(200)));
        let tail = record_tail(&id);
        assert_eq!(tail.chars().count(), TAIL_CHARS);
        assert!(tail.ends_with("\nlast line"), "{tail}");
        assert!(record_tail("job-404").contains("could not be read"));
    }

    #[test]
    fn status_shows_the_last_non_empty_lines() {
        stand_in::grant("deploy-web");
        let id = jobs::start("deploy-web", &[]).expect("started").id;
        assert!(last_lines(&id, 3).is_empty());
        stand_in::write(&id, "one\ntwo\n\nthree  \nfour\n");
        assert_eq!(last_lines(&id, 3), ["two", "three", "four"]);
        stand_in::finish(&id, State::Exited(0));
        assert_eq!(last_lines(&id, 10), ["one", "two", "three", "four"]);
        assert!(last_lines("job-404", 3).is_empty());
    }
}
