//! A job's output file: the command's stdout and stderr share one pipe, so lines interleave as
//! they were written, and a thread of the host's copies it into `<id>.log`, keeping the first
//! `cap` bytes. Past the cap it counts and keeps only the last [`TAIL_BYTES`], appended after a
//! line saying how much was left out once the job ends: a chatty job cannot fill the disk, and
//! the end of a failed deploy's log is still there.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What is kept of the output past the cap: the end, where failures are reported.
pub(crate) const TAIL_BYTES: usize = 8 << 10;

/// Most bytes one `read-output` returns.
pub(crate) const MAX_READ_BYTES: u32 = 64 << 10;

/// Bytes written so far, readable while the copy runs.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    total: AtomicU64,
}

impl Counter {
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Copy `pipe` into `file` until every writer has closed it; returns the total written by the
/// command. Runs on a thread of its own: it blocks on the pipe.
pub(crate) fn copy(mut pipe: impl Read, mut file: File, cap: u64, counter: &Arc<Counter>) -> u64 {
    let mut buffer = vec![0u8; 16 << 10];
    let mut kept: u64 = 0;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buffer[..n];
        counter.total.fetch_add(n as u64, Ordering::Relaxed);
        let room = usize::try_from(cap.saturating_sub(kept)).unwrap_or(usize::MAX).min(n);
        if room > 0 {
            // A full disk must not stop the copy (the command would block on its pipe): the
            // bytes are then lost, and the count still says how many there were.
            let _ = file.write_all(&chunk[..room]);
            kept += room as u64;
        }
        let rest = &chunk[room..];
        if !rest.is_empty() {
            tail.extend_from_slice(rest);
            if tail.len() > 2 * TAIL_BYTES {
                tail.drain(..tail.len() - TAIL_BYTES);
            }
        }
    }
    let total = counter.total();
    if !tail.is_empty() {
        let keep = tail.len().min(TAIL_BYTES);
        let left_out = total - kept - keep as u64;
        if left_out > 0 {
            let _ = write!(file, "\n[sanctum: {left_out} bytes left out]\n");
        }
        let _ = file.write_all(&tail[tail.len() - keep..]);
    }
    let _ = file.sync_all();
    total
}

/// Up to `max` bytes of the file at `path` from `offset`, and the offset after them. An offset
/// at or past the end reads nothing and reports the end.
pub(crate) fn read_at(path: &Path, offset: u64, max: u32) -> std::io::Result<(Vec<u8>, u64)> {
    let file = File::open(path)?;
    let end = file.metadata()?.len();
    if offset >= end {
        return Ok((Vec::new(), end));
    }
    let want = usize::try_from((end - offset).min(u64::from(max.min(MAX_READ_BYTES)))).unwrap_or(0);
    let mut data = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut data[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(filled);
    Ok((data, offset + filled as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(input: &[u8], cap: u64) -> (Vec<u8>, u64) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.log");
        let counter = Arc::new(Counter::default());
        let total = copy(input, File::create(&path).expect("file"), cap, &counter);
        (std::fs::read(&path).expect("read"), total)
    }

    #[test]
    fn output_under_the_cap_is_kept_whole() {
        assert_eq!(copied(b"hello\nworld\n", 100), (b"hello\nworld\n".to_vec(), 12));
    }

    #[test]
    fn output_over_the_cap_keeps_the_head_and_the_tail() {
        let input: Vec<u8> = (0..100_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let (file, total) = copied(&input, 1000);
        assert_eq!(total, input.len() as u64);
        assert_eq!(&file[..1000], &input[..1000]);
        let text = String::from_utf8_lossy(&file);
        let left_out = input.len() - 1000 - TAIL_BYTES;
        assert!(text.contains(&format!("[sanctum: {left_out} bytes left out]")), "{}", &text[990..1100]);
        assert!(file.ends_with(&input[input.len() - TAIL_BYTES..]));
        assert!(file.len() < 1000 + TAIL_BYTES + 64);
        // Just over the cap: nothing is left out, the rest follows the head.
        let (file, _) = copied(&input[..1500], 1000);
        assert_eq!(file, &input[..1500]);
    }

    #[test]
    fn reads_are_bounded_and_report_the_end() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.log");
        std::fs::write(&path, vec![b'x'; 200_000]).expect("write");
        let (data, next) = read_at(&path, 10, u32::MAX).expect("read");
        assert_eq!((data.len(), next), (MAX_READ_BYTES as usize, 10 + u64::from(MAX_READ_BYTES)));
        assert_eq!(read_at(&path, u64::MAX, 10).expect("past the end"), (Vec::new(), 200_000));
        assert_eq!(read_at(&path, 199_998, 10).expect("last bytes"), (b"xx".to_vec(), 200_000));
    }
}
