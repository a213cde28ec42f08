//! The header value codec of the 2026-07-28 revision: a value that is not printable ASCII
//! without edge spaces travels as `=?base64?...?=` (UTF-8 in standard Base64). The proxy
//! encodes (`Mcp-Name`, `Mcp-Param-*`) and the stdio bridge decodes, so both live here.

const PREFIX: &str = "=?base64?";
const SUFFIX: &str = "?=";
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Printable ASCII without edge spaces passes as is; anything else (and a plain value that
/// would read as encoded) becomes `=?base64?...?=`, as the SDKs write it.
pub fn encode(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !(value.starts_with(PREFIX) && value.ends_with(SUFFIX));
    if plain {
        value.to_owned()
    } else {
        format!("{PREFIX}{}{SUFFIX}", base64_encode(value.as_bytes()))
    }
}

/// A header value as sent: plain, or `=?base64?...?=`. `None` when the Base64 is invalid or
/// does not hold UTF-8.
pub fn decode(value: &str) -> Option<String> {
    match value
        .strip_prefix(PREFIX)
        .and_then(|inner| inner.strip_suffix(SUFFIX))
    {
        Some(encoded) => String::from_utf8(base64_decode(encoded)?).ok(),
        None => Some(value.to_owned()),
    }
}

/// Standard Base64 (RFC 4648 alphabet) with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard Base64 (RFC 4648 alphabet, padding optional).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // A lone trailing character (6 bits) cannot end valid Base64.
    (bits < 6).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_are_encoded_like_the_sdk() {
        let cases = [
            ("echo", "echo"),
            ("file:///a b", "file:///a b"),
            (" edge", "=?base64?IGVkZ2U=?="),
            ("héllo", "=?base64?aMOpbGxv?="),
            ("ab", "ab"),
        ];
        for (input, expected) in cases {
            assert_eq!(encode(input), expected, "{input}");
        }
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
    }

    #[test]
    fn values_decode_plain_and_base64() {
        let cases = [
            ("get_weather", Some("get_weather")),
            ("=?base64?SGVsbG8sIOS4lueVjA==?=", Some("Hello, 世界")),
            ("=?base64?IHBhZGRlZCA=?=", Some(" padded ")),
            (
                "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
                Some("=?base64?literal?="),
            ),
            ("=?base64?bGluZTEKbGluZTI?=", Some("line1\nline2")),
            ("=?base64?not base64!?=", None),
            ("=?base64?A?=", None),
        ];
        for (value, expected) in cases {
            assert_eq!(decode(value).as_deref(), expected, "{value}");
        }
    }

    proptest! {
        /// Whatever the proxy encodes, the bridge decodes to the same text, and the encoded
        /// form is always a valid header value (visible ASCII and inner spaces only).
        #[test]
        fn encode_then_decode_is_identity(value in any::<String>()) {
            let encoded = encode(&value);
            prop_assert!(encoded.bytes().all(|b| (0x20..0x7f).contains(&b)), "{encoded:?}");
            prop_assert_eq!(encoded.trim(), encoded.as_str());
            prop_assert_eq!(decode(&encoded), Some(value));
        }

        #[test]
        fn base64_round_trips_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(base64_decode(&base64_encode(&bytes)), Some(bytes));
        }
    }
}
