//! An incremental Server-Sent Events parser: bytes in as they arrive, whole events out.

use bytes::{Buf, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; empty means the default `message`.
    pub event: String,
    pub data: Bytes,
    /// The `id:` field of this event, if it had one.
    pub id: Option<String>,
}

/// Feeds on chunks of a `text/event-stream` body.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: BytesMut,
    event: String,
    data: BytesMut,
    has_data: bool,
    id: Option<String>,
    /// The last `id:` seen on the stream, for `Last-Event-ID` on resume.
    pub last_event_id: Option<String>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    skip_lf: bool,
    /// How much of `buffer` is known to hold no line end: a long line arriving in many chunks
    /// is scanned once, not once per chunk (an 8 MB answer took seconds).
    scanned: usize,
}

impl Parser {
    /// Appends `chunk` and returns the events it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut chunk = chunk;
        if self.skip_lf {
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
            self.skip_lf = false;
        }
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer[self.scanned..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .map(|at| self.scanned + at)
        {
            self.scanned = 0;
            let line = self.buffer.split_to(end).freeze();
            let terminator = self.buffer[0];
            self.buffer.advance(1);
            if terminator == b'\r' {
                match self.buffer.first() {
                    Some(b'\n') => self.buffer.advance(1),
                    None => self.skip_lf = true,
                    _ => {}
                }
            }
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.scanned = self.buffer.len();
        events
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.extend_from_slice(b"\n");
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                let id = String::from_utf8_lossy(value).into_owned();
                self.last_event_id = Some(id.clone());
                self.id = Some(id);
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let id = self.id.take();
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(Event {
            event,
            data: self.data.split().freeze(),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at_once_and_byte_by_byte(stream: &str) -> Vec<Event> {
        let whole = Parser::default().feed(stream.as_bytes());
        let mut parser = Parser::default();
        let mut split = Vec::new();
        for byte in stream.as_bytes() {
            split.extend(parser.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(whole, split, "chunking must not matter for {stream:?}");
        whole
    }

    #[test]
    fn events_are_parsed_whatever_the_chunking() {
        let events = all_at_once_and_byte_by_byte(
            "event: endpoint\ndata: /messages/?session_id=1\n\n: comment\n\nid: 7\ndata: {\"a\":\ndata: 1}\n\r\ndata:x\r\rretry: 5\n\n",
        );
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event, "endpoint");
        assert_eq!(&events[0].data[..], b"/messages/?session_id=1");
        assert_eq!(events[1].id.as_deref(), Some("7"));
        assert_eq!(&events[1].data[..], b"{\"a\":\n1}");
        assert_eq!(events[1].event, "");
        assert_eq!(&events[2].data[..], b"x");
    }

    #[test]
    fn a_long_line_in_many_chunks_is_one_event() {
        let mut parser = Parser::default();
        let chunk = [b'x'; 4096];
        assert!(parser.feed(b"data: ").is_empty());
        for _ in 0..2048 {
            assert!(parser.feed(&chunk).is_empty());
        }
        let events = parser.feed(b"\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 2048 * 4096);
        assert!(parser.feed(b"data: a\r").is_empty());
        assert_eq!(&parser.feed(b"\ndata: b\n\n")[0].data[..], b"a\nb");
    }

    #[test]
    fn last_event_id_survives_events() {
        let mut parser = Parser::default();
        parser.feed(b"id: 1\ndata: a\n\n");
        parser.feed(b"data: b\n\n");
        assert_eq!(parser.last_event_id.as_deref(), Some("1"));
        assert!(parser.feed(b"id: 2\n\n").is_empty(), "no data, no event");
        assert_eq!(parser.last_event_id.as_deref(), Some("2"));
    }
}
