//! `GET /daemons/{name}/log?from=`: a target's log file read in chunks, for the dashboard's
//! log viewer: first the tail, then (following) whatever was appended since the offset it got.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::api_types::LogChunk;

/// Without `from`, at most this much of the file's end.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// With `from`, at most this much from there (the viewer asks again for the rest).
pub const CHUNK_BYTES: u64 = 256 * 1024;

/// Reads `path` for target `name`: the tail (`from = None`) or the bytes from `from` on. A file
/// shorter than `from` was truncated or replaced: the chunk then starts again at 0 (`reset`).
/// A missing file is an empty chunk (the target has not written yet).
pub fn read_chunk(name: &str, path: &Path, from: Option<u64>) -> std::io::Result<LogChunk> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LogChunk {
                name: name.to_owned(),
                path: path.display().to_string(),
                size: 0,
                from: 0,
                to: 0,
                reset: from.is_some_and(|f| f > 0),
                text: String::new(),
            });
        }
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let (start, reset, limit) = match from {
        None => (size.saturating_sub(TAIL_BYTES), false, TAIL_BYTES),
        Some(from) if from > size => (0, true, CHUNK_BYTES),
        Some(from) => (from, false, CHUNK_BYTES),
    };
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    let mut start = start;
    if from.is_none() && start > 0 {
        // The tail starts at a line, not in the middle of one.
        if let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            bytes.drain(..=newline);
            start += newline as u64 + 1;
        }
    }
    let to = start + bytes.len() as u64;
    Ok(LogChunk {
        name: name.to_owned(),
        path: path.display().to_string(),
        size,
        from: start,
        to,
        reset,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_then_follow_then_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let missing = read_chunk("x", &path, None).unwrap();
        assert_eq!((missing.size, missing.text.as_str()), (0, ""));

        let line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
        let big: String = line.repeat(2000); // 128 KiB
        std::fs::write(&path, &big).unwrap();
        let tail = read_chunk("x", &path, None).unwrap();
        assert_eq!(tail.to, tail.size);
        assert!(tail.text.len() as u64 <= TAIL_BYTES);
        assert!(tail.text.starts_with("0123"), "the tail starts at a line");
        assert_eq!(tail.from + tail.text.len() as u64, tail.to);

        std::fs::write(&path, format!("{big}new line\n")).unwrap();
        let next = read_chunk("x", &path, Some(tail.to)).unwrap();
        assert_eq!(next.text, "new line\n");
        assert!(!next.reset);
        let nothing = read_chunk("x", &path, Some(next.to)).unwrap();
        assert_eq!(nothing.text, "");

        std::fs::write(&path, "fresh\n").unwrap();
        let after = read_chunk("x", &path, Some(next.to)).unwrap();
        assert!(after.reset);
        assert_eq!((after.from, after.text.as_str()), (0, "fresh\n"));
    }
}
