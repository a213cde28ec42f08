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
    let mut line = Vec::new();
    let mut oversized: Option<usize> = None;
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
        let newline = available.iter().position(|&b| b == b'\n');
        let take = newline.map_or(available.len(), |i| i);
        match &mut oversized {
            Some(length) => *length += take,
            None if line.len() + take > max_line_bytes => {
                let keep = OVERSIZED_PREFIX.saturating_sub(line.len()).min(take);
                line.extend_from_slice(&available[..keep]);
                oversized = Some(line.len() - keep + take);
                line.truncate(OVERSIZED_PREFIX);
            }
            None => line.extend_from_slice(&available[..take]),
        }
        reader.consume(newline.map_or(take, |i| i + 1));
        if newline.is_some() {
            let item = match oversized.take() {
                Some(length) => StdinItem::Oversized {
                    length,
                    prefix: std::mem::take(&mut line),
                },
                None => {
                    let mut done = std::mem::take(&mut line);
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
                return;
            }
        }
    }
    // A last line without a newline still counts.
    if let Some(length) = oversized {
        deliver(StdinItem::Oversized {
            length,
            prefix: line,
        });
    } else if !line.iter().all(u8::is_ascii_whitespace) && !deliver(StdinItem::Line(line)) {
        return;
    }
    deliver(StdinItem::Eof);
}

/// Starts the stdin thread; it ends at EOF or when the receiver is gone.
pub fn spawn_stdin_reader(max_line_bytes: usize, sink: UnboundedSender<StdinItem>) {
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
