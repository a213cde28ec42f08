//! A JSON (optionally JSONC) parser that keeps the byte span of every value and object member,
//! so that the merge can splice our entries into a user's file and leave every other byte alone.
//! serde_json would have to re-serialise the whole file, changing number spelling, escapes,
//! spacing and comments; this parser only reads.

use std::ops::Range;

/// How deep objects and arrays may nest before the file is refused (keeps the stack bounded).
const MAX_DEPTH: usize = 512;

/// What the parser accepts beyond strict JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 8259 JSON: what Claude Code and Claude Desktop read.
    Json,
    /// JSON with `//` and `/* */` comments and trailing commas (VS Code-style editors).
    Jsonc,
}

/// A parsed value and where it sits in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The bytes of the value itself, from its first to its last byte.
    pub span: Range<usize>,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Object(Object),
    Array(Vec<Node>),
    String(String),
    /// The number as spelled in the file.
    Number(String),
    Bool(bool),
    Null,
}

/// An object's members in file order (duplicate keys kept, as written).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub members: Vec<Member>,
    /// The byte just after `{`.
    pub inner_start: usize,
    /// The position of `}`.
    pub inner_end: usize,
    /// Where a trailing comma after the last member sits, if the dialect allowed one.
    pub trailing_comma: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// The key's bytes including its quotes.
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Object {
    /// The effective member called `key`: the last one, as JSON parsers resolve duplicates.
    pub fn get(&self, key: &str) -> Option<&Member> {
        self.members.iter().rev().find(|m| m.key == key)
    }
}

impl Node {
    pub fn as_object(&self) -> Option<&Object> {
        match &self.kind {
            NodeKind::Object(object) => Some(object),
            _ => None,
        }
    }

    /// The value as serde_json sees it, for comparing an existing entry with ours.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Object(object) => {
                let mut map = serde_json::Map::new();
                for member in &object.members {
                    map.insert(member.key.clone(), member.value.to_value());
                }
                Value::Object(map)
            }
            NodeKind::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::String(s) => Value::String(s.clone()),
            NodeKind::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Null => Value::Null,
        }
    }
}

/// Why a file is not valid JSON, with a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// A parsed document: the root value, or `None` for an empty (whitespace-only) file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Option<Node>,
}

/// Parses `text` (a leading UTF-8 byte order mark is skipped and kept out of every span).
pub fn parse(text: &str, dialect: Dialect) -> Result<Document, SyntaxError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        position: if text.starts_with('\u{feff}') { 3 } else { 0 },
        dialect,
    };
    parser.skip_insignificant()?;
    if parser.position == parser.bytes.len() {
        return Ok(Document { root: None });
    }
    let root = parser.value(0)?;
    parser.skip_insignificant()?;
    if parser.position != parser.bytes.len() {
        return Err(parser.error_here("unexpected text after the top-level value"));
    }
    Ok(Document { root: Some(root) })
}

/// The 1-based line and character column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    position: usize,
    dialect: Dialect,
}

impl Parser<'_> {
    fn error_at(&self, offset: usize, reason: impl Into<String>) -> SyntaxError {
        let (line, column) = line_column(self.text, offset);
        SyntaxError {
            line,
            column,
            reason: reason.into(),
        }
    }

    fn error_here(&self, reason: impl Into<String>) -> SyntaxError {
        self.error_at(self.position, reason)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    /// Skips whitespace and, in JSONC, comments.
    fn skip_insignificant(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.position += 1,
                Some(b'/') => {
                    let start = self.position;
                    match (self.dialect, self.bytes.get(start + 1)) {
                        (Dialect::Jsonc, Some(b'/')) => {
                            while self.peek().is_some_and(|b| b != b'\n') {
                                self.position += 1;
                            }
                        }
                        (Dialect::Jsonc, Some(b'*')) => {
                            let rest = &self.text[start + 2..];
                            let end = rest
                                .find("*/")
                                .ok_or_else(|| self.error_at(start, "unterminated /* comment"))?;
                            self.position = start + 2 + end + 2;
                        }
                        (Dialect::Json, Some(b'/' | b'*')) => {
                            return Err(self.error_here("comments are not allowed in this file"));
                        }
                        _ => return Err(self.error_here("unexpected character `/`")),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect_value_start(&self) -> SyntaxError {
        match self.text[self.position..].chars().next() {
            None => self.error_here("unexpected end of file, expected a value"),
            Some(c) => self.error_here(format!("unexpected character `{c}`, expected a value")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error_here(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let start = self.position;
        let kind = match self.peek() {
            Some(b'{') => NodeKind::Object(self.object(depth)?),
            Some(b'[') => NodeKind::Array(self.array(depth)?),
            Some(b'"') => NodeKind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => NodeKind::Number(self.number()?),
            Some(b't') => self.literal("true", NodeKind::Bool(true))?,
            Some(b'f') => self.literal("false", NodeKind::Bool(false))?,
            Some(b'n') => self.literal("null", NodeKind::Null)?,
            _ => return Err(self.expect_value_start()),
        };
        Ok(Node {
            span: start..self.position,
            kind,
        })
    }

    fn literal(&mut self, word: &str, kind: NodeKind) -> Result<NodeKind, SyntaxError> {
        if self.text[self.position..].starts_with(word) {
            self.position += word.len();
            Ok(kind)
        } else {
            Err(self.expect_value_start())
        }
    }

    fn number(&mut self) -> Result<String, SyntaxError> {
        let start = self.position;
        let digits = |parser: &mut Self| {
            let from = parser.position;
            while parser.peek().is_some_and(|b| b.is_ascii_digit()) {
                parser.position += 1;
            }
            parser.position > from
        };
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        if self.peek() == Some(b'0') {
            self.position += 1;
        } else if !digits(self) {
            return Err(self.error_here("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.position += 1;
            if !digits(self) {
                return Err(self.error_here("invalid number: digits expected after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.position += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.position += 1;
            }
            if !digits(self) {
                return Err(self.error_here("invalid number: digits expected in the exponent"));
            }
        }
        Ok(self.text[start..self.position].to_owned())
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.position;
        self.position += 1;
        let mut decoded = String::new();
        loop {
            let run_start = self.position;
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.position += 1;
            }
            decoded.push_str(&self.text[run_start..self.position]);
            match self.peek() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some(b'"') => {
                    self.position += 1;
                    return Ok(decoded);
                }
                Some(b'\\') => decoded.push(self.escape()?),
                Some(_) => return Err(self.error_here("control character in a string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let at = self.position;
        self.position += 1;
        let Some(code) = self.peek() else {
            return Err(self.error_at(at, "unterminated string"));
        };
        self.position += 1;
        Ok(match code {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4(at)?;
                if (0xD800..0xDC00).contains(&high) && self.text[self.position..].starts_with("\\u")
                {
                    let save = self.position;
                    self.position += 2;
                    let low = self.hex4(at)?;
                    if (0xDC00..0xE000).contains(&low) {
                        let combined = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                        return Ok(char::from_u32(combined).unwrap_or('\u{fffd}'));
                    }
                    self.position = save;
                }
                // A lone surrogate is legal JSON text but not a char: it only matters for
                // comparing keys, so it becomes the replacement character.
                char::from_u32(high).unwrap_or('\u{fffd}')
            }
            _ => return Err(self.error_at(at, "invalid escape in a string")),
        })
    }

    fn hex4(&mut self, escape_at: usize) -> Result<u32, SyntaxError> {
        let digits = self
            .text
            .get(self.position..self.position + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error_at(escape_at, "invalid \\u escape"))?;
        self.position += 4;
        #[expect(clippy::expect_used, reason = "four hex digits always parse")]
        let code = u32::from_str_radix(digits, 16).expect("checked hex digits");
        Ok(code)
    }

    fn object(&mut self, depth: usize) -> Result<Object, SyntaxError> {
        self.position += 1;
        let inner_start = self.position;
        let mut members = Vec::new();
        let mut trailing_comma = None;
        loop {
            self.skip_insignificant()?;
            match self.peek() {
                Some(b'}') => break,
                Some(b'"') => {}
                _ if members.is_empty() || trailing_comma.is_some() => {
                    return Err(self.error_here("expected a string key or `}`"));
                }
                _ => return Err(self.error_here("expected a string key")),
            }
            let key_start = self.position;
            let key = self.string()?;
            let key_span = key_start..self.position;
            self.skip_insignificant()?;
            if self.peek() != Some(b':') {
                return Err(self.error_here("expected `:` after the key"));
            }
            self.position += 1;
            self.skip_insignificant()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            trailing_comma = None;
            self.skip_insignificant()?;
            match self.peek() {
                Some(b',') => {
                    let comma = self.position;
                    self.position += 1;
                    self.skip_insignificant()?;
                    if self.peek() == Some(b'}') {
                        if self.dialect == Dialect::Json {
                            return Err(self.error_at(comma, "trailing comma before `}`"));
                        }
                        trailing_comma = Some(comma);
                        break;
                    }
                }
                Some(b'}') => break,
                None => return Err(self.error_here("unexpected end of file inside an object")),
                _ => return Err(self.error_here("expected `,` or `}`")),
            }
        }
        let inner_end = self.position;
        self.position += 1;
        Ok(Object {
            members,
            inner_start,
            inner_end,
            trailing_comma,
        })
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Node>, SyntaxError> {
        self.position += 1;
        let mut items = Vec::new();
        loop {
            self.skip_insignificant()?;
            if self.peek() == Some(b']') {
                if !items.is_empty() && self.dialect == Dialect::Json {
                    return Err(self.error_here("trailing comma before `]`"));
                }
                break;
            }
            items.push(self.value(depth + 1)?);
            self.skip_insignificant()?;
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b']') => break,
                None => return Err(self.error_here("unexpected end of file inside an array")),
                _ => return Err(self.error_here("expected `,` or `]`")),
            }
        }
        self.position += 1;
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(text: &str) -> Result<serde_json::Value, String> {
        parse(text, Dialect::Json)
            .map(|d| d.root.map_or(serde_json::Value::Null, |r| r.to_value()))
            .map_err(|e| format!("{}:{}: {}", e.line, e.column, e.reason))
    }

    #[test]
    fn agrees_with_serde_json_on_valid_documents() {
        for text in [
            r#"{}"#,
            r#"{"a": 1, "b": [1, 2.5, -3e10, true, false, null], "c": {"d": "e"}}"#,
            r#"{"esc": "\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 ü"}"#,
            "\n\t { \"a\" : [ ] , \"b\":{ } }\r\n",
            r#"[1, "two", {"three": 3}]"#,
            r#""just a string""#,
            r#"{"dup": 1, "dup": 2}"#,
        ] {
            let expected: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_json(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn refuses_invalid_documents_with_line_and_column() {
        for (text, expected) in [
            ("{\n  \"a\": 1,\n}", "2:9: trailing comma"),
            ("{\n  \"a\": 1\n  \"b\": 2\n}", "3:3: expected `,` or `}`"),
            ("{\"a\": tru}", "1:7: unexpected character `t`"),
            ("{\"a\": 1} x", "1:10: unexpected text"),
            ("{\"a\": \"x", "1:7: unterminated string"),
            ("{\n // hi\n}", "2:2: comments are not allowed"),
            ("{\"a\": 01}", "1:8: expected `,` or `}`"),
            ("{\"é\": x}", "1:7: unexpected character `x`"),
            ("[1,]", "1:4: trailing comma before `]`"),
            ("{\"a\": \"\\q\"}", "1:8: invalid escape"),
            ("{", "1:2: expected a string key or `}`"),
        ] {
            let err = parse_json(text).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{text:?}: {err} should start with {expected}"
            );
        }
    }

    #[test]
    fn jsonc_accepts_comments_and_trailing_commas() {
        let text = "// top\n{\n  /* a */ \"a\": [1, 2,], // end\n  \"b\": 2,\n}\n";
        let document = parse(text, Dialect::Jsonc).unwrap();
        let root = document.root.unwrap();
        let object = root.as_object().unwrap();
        assert_eq!(object.members.len(), 2);
        assert_eq!(object.trailing_comma, Some(text.rfind(',').unwrap()));
        assert_eq!(root.to_value(), serde_json::json!({"a": [1, 2], "b": 2}));
    }

    #[test]
    fn spans_point_at_the_exact_bytes() {
        let text = "\u{feff}{ \"k\\u0041\" : { \"x\" : 1.50 } }";
        let root = parse(text, Dialect::Json).unwrap().root.unwrap();
        let member = &root.as_object().unwrap().members[0];
        assert_eq!(member.key, "kA");
        assert_eq!(&text[member.key_span.clone()], "\"k\\u0041\"");
        assert_eq!(&text[member.value.span.clone()], "{ \"x\" : 1.50 }");
        let inner = member.value.as_object().unwrap();
        assert_eq!(&text[inner.members[0].value.span.clone()], "1.50");
    }

    #[test]
    fn empty_and_deep_documents() {
        assert_eq!(parse(" \n\t", Dialect::Json).unwrap().root, None);
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert!(parse_json(&deep).unwrap_err().contains("nested deeper"));
    }
}
