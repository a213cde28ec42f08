//! Reads newline-delimited messages from stdin on a thread of its own, refusing a line over the
//! size limit without ever holding more than the limit (plus a short prefix) in memory.

use std::io::{BufRead, BufReader, Read};

use tokio::sync::mpsc::UnboundedSender;

/// How much of an oversized line is kept, to find its id for the error answer.
const OVERSIZED_PREFIX: usize = 4096;

/// One thing read from stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum StdinItem {
    Line(Vec<u8>),
    /// A line over the limit: its length and its first bytes.
    Oversized {
        length: usize,
        prefix: Vec<u8>,
    },
    /// The client closed stdin (or it failed).
    Eof,
}

/// Splits `input` into lines for as long as `deliver` accepts them; empty lines are skipped.
pub fn read_lines(
    input: impl Read,
    max_line_bytes: usize,
    mut deliver: impl FnMut(StdinItem) -> bool,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut splitter = LineSplitter::new(max_line_bytes);
    loop {
        let available = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("reading stdin failed: {e}");
                break;
            }
        };
        let length = available.len();
        let carry_on = splitter.feed(available, &mut deliver);
        reader.consume(length);
        if !carry_on {
            return;
        }
    }
    splitter.finish(&mut deliver);
}

/// Cuts a byte stream, fed in chunks of any size, into [`StdinItem`]s.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    line: Vec<u8>,
    /// The length so far of a line over the limit (only its prefix is in `line`).
    oversized: Option<usize>,
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            max_line_bytes,
            line: Vec::new(),
            oversized: None,
        }
    }

    /// Delivers every line `chunk` completes; `false` once `deliver` refused one.
    pub fn feed(&mut self, mut chunk: &[u8], deliver: &mut impl FnMut(StdinItem) -> bool) -> bool {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(chunk.len());
            match &mut self.oversized {
                Some(length) => *length += take,
                None if self.line.len() + take > self.max_line_bytes => {
                    let keep = OVERSIZED_PREFIX.saturating_sub(self.line.len()).min(take);
                    self.line.extend_from_slice(&chunk[..keep]);
                    self.oversized = Some(self.line.len() - keep + take);
                    self.line.truncate(OVERSIZED_PREFIX);
                }
                None => self.line.extend_from_slice(&chunk[..take]),
            }
            chunk = &chunk[newline.map_or(take, |i| i + 1)..];
            if newline.is_none() {
                break;
            }
            let item = match self.oversized.take() {
                Some(length) => StdinItem::Oversized {
                    length,
                    prefix: std::mem::take(&mut self.line),
                },
                None => {
                    let mut done = std::mem::take(&mut self.line);
                    if done.last() == Some(&b'\r') {
                        done.pop();
                    }
                    if done.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    StdinItem::Line(done)
                }
            };
            if !deliver(item) {
                return false;
            }
        }
        true
    }

    /// End of input: a last line without a newline still counts, then [`StdinItem::Eof`].
    pub fn finish(self, deliver: &mut impl FnMut(StdinItem) -> bool) {
        if let Some(length) = self.oversized {
            deliver(StdinItem::Oversized {
                length,
                prefix: self.line,
            });
        } else if !self.line.iter().all(u8::is_ascii_whitespace)
            && !deliver(StdinItem::Line(self.line))
        {
            return;
        }
        deliver(StdinItem::Eof);
    }
}

/// Starts reading stdin; reading ends at EOF or when the receiver is gone.
///
/// Where stdin is a pipe or a socket (how MCP clients start us), it is read on the runtime's
/// own thread, non-blocking: a line then reaches the proxy without waking a second thread,
/// one scheduling hop less per request, which is what a busy machine turns into tail latency.
/// Elsewhere (a file, a terminal) a thread of its own reads it with blocking reads.
pub fn spawn_stdin_reader(max_line_bytes: usize, sink: UnboundedSender<StdinItem>) {
    #[cfg(unix)]
    if let Some(stdin) = nonblocking::PollableStdin::claim() {
        use tokio::io::{Interest, unix::AsyncFd};
        // SAFETY: fd 0 stays open, the same file description, for the life of the process.
        match unsafe { AsyncFd::register_with_interest(stdin, Interest::READABLE) } {
            Ok(stdin) => {
                tokio::spawn(nonblocking::read_lines_async(stdin, max_line_bytes, sink));
                return;
            }
            // Dropping it put the flags back; the thread below reads it.
            Err(e) => tracing::debug!("stdin cannot be polled ({e}); reading it on a thread"),
        }
    }
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let stdin = std::io::stdin();
            read_lines(stdin.lock(), max_line_bytes, |item| sink.send(item).is_ok());
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdin reader: {e}");
    }
}

#[cfg(unix)]
mod nonblocking {
    //! Stdin read through the runtime's poller.

    use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::stat::{SFlag, fstat};
    use tokio::io::unix::AsyncFd;
    use tokio::sync::mpsc::UnboundedSender;

    use super::{LineSplitter, StdinItem};

    /// Stdin switched to non-blocking; its flags are put back when this is dropped.
    pub struct PollableStdin {
        original_flags: OFlag,
    }

    impl AsRawFd for PollableStdin {
        fn as_raw_fd(&self) -> RawFd {
            0
        }
    }

    impl PollableStdin {
        /// Stdin, if it is a pipe or a socket of its own (not the same open file as stdout,
        /// which must stay blocking) and could be made non-blocking.
        pub fn claim() -> Option<PollableStdin> {
            // SAFETY: fd 0 is open for the life of the process (or fstat fails harmlessly).
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            let stdout = unsafe { BorrowedFd::borrow_raw(1) };
            let status = fstat(stdin).ok()?;
            let kind = SFlag::from_bits_truncate(status.st_mode) & SFlag::S_IFMT;
            if kind != SFlag::S_IFIFO && kind != SFlag::S_IFSOCK {
                return None;
            }
            if let Ok(out) = fstat(stdout)
                && out.st_dev == status.st_dev
                && out.st_ino == status.st_ino
            {
                return None;
            }
            let original_flags = OFlag::from_bits_retain(fcntl(stdin, FcntlArg::F_GETFL).ok()?);
            fcntl(stdin, FcntlArg::F_SETFL(original_flags | OFlag::O_NONBLOCK)).ok()?;
            Some(PollableStdin { original_flags })
        }
    }

    impl Drop for PollableStdin {
        fn drop(&mut self) {
            // SAFETY: as in `claim`.
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            let _ = fcntl(stdin, FcntlArg::F_SETFL(self.original_flags));
        }
    }

    /// [`super::read_lines`] on the runtime's thread.
    pub async fn read_lines_async(
        stdin: AsyncFd<PollableStdin>,
        max_line_bytes: usize,
        sink: UnboundedSender<StdinItem>,
    ) {
        let mut deliver = |item| sink.send(item).is_ok();
        let mut splitter = LineSplitter::new(max_line_bytes);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let mut ready = match stdin.readable().await {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::warn!("waiting for stdin failed: {e}");
                    break;
                }
            };
            let read = ready.try_io(|_| {
                // SAFETY: as in `claim`.
                let fd = unsafe { BorrowedFd::borrow_raw(0) };
                nix::unistd::read(fd, &mut buffer).map_err(std::io::Error::from)
            });
            match read {
                Err(_would_block) => continue,
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => {
                    if !splitter.feed(&buffer[..n], &mut deliver) {
                        return;
                    }
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => {
                    tracing::warn!("reading stdin failed: {e}");
                    break;
                }
            }
        }
        splitter.finish(&mut deliver);
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<StdinItem> {
        let mut items = Vec::new();
        read_lines(input, max, |item| {
            items.push(item);
            true
        });
        items
    }

    #[test]
    fn lines_split_and_limit() {
        let line = |s: &str| StdinItem::Line(s.as_bytes().to_vec());
        assert_eq!(
            lines(b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\nlast", 100),
            vec![
                line("{\"a\":1}"),
                line("{\"b\":2}"),
                line("last"),
                StdinItem::Eof
            ]
        );
        let long = format!("{}\nok\n", "x".repeat(50));
        assert_eq!(
            lines(long.as_bytes(), 10),
            vec![
                StdinItem::Oversized {
                    length: 50,
                    prefix: "x".repeat(50).into_bytes()
                },
                line("ok"),
                StdinItem::Eof
            ]
        );
        assert_eq!(lines(b"", 10), vec![StdinItem::Eof]);
    }

    #[test]
    fn chunking_does_not_change_the_lines() {
        let input = format!("{{\"a\":1}}\r\n\n{}\n  \nsecond\nlast", "z".repeat(40));
        // How much of an oversized line's prefix is kept depends on where the chunks end (the
        // prefix only serves to find the id); the first 30 bytes are always there.
        let cut = |items: Vec<StdinItem>| -> Vec<StdinItem> {
            items
                .into_iter()
                .map(|item| match item {
                    StdinItem::Oversized { length, mut prefix } => {
                        prefix.truncate(30);
                        StdinItem::Oversized { length, prefix }
                    }
                    other => other,
                })
                .collect()
        };
        let whole = cut(lines(input.as_bytes(), 30));
        for size in [1, 2, 3, 7, 64] {
            let mut splitter = LineSplitter::new(30);
            let mut items = Vec::new();
            let mut deliver = |item| {
                items.push(item);
                true
            };
            for chunk in input.as_bytes().chunks(size) {
                assert!(splitter.feed(chunk, &mut deliver));
            }
            splitter.finish(&mut deliver);
            assert_eq!(cut(items), whole, "chunks of {size}");
        }
        assert_eq!(whole.len(), 5, "{whole:?}");
    }

    #[test]
    fn oversized_lines_keep_only_a_prefix() {
        let huge = vec![b'y'; 300_000];
        let mut input = huge.clone();
        input.extend_from_slice(b"\n{}\n");
        let items = lines(&input[..], 1000);
        match &items[0] {
            StdinItem::Oversized { length, prefix } => {
                assert_eq!(*length, 300_000);
                assert_eq!(prefix.len(), OVERSIZED_PREFIX);
            }
            other => panic!("expected oversized, got {other:?}"),
        }
        assert_eq!(items[1], StdinItem::Line(b"{}".to_vec()));
    }
}
