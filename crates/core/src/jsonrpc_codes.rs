//! The JSON-RPC error codes that the proxy writes itself (the target's own errors pass through
//! untouched). They sit outside JSON-RPC's reserved range (-32768..=-32000), where MCP keeps
//! assigning codes (-32000 connection closed and -32001 request timeout in the SDKs, -32002
//! resource not found, -32020..=-32022 the 2026-07-28 header and version errors, -32042 URL
//! elicitation required), so no client can read one of ours as one of MCP's.

/// The target could not be reached, or refused the message.
pub const TARGET_UNAVAILABLE: i64 = -31001;
/// The request may have reached the target but no answer came back.
pub const ANSWER_LOST: i64 = -31002;
/// No answer within the per-request timeout.
pub const REQUEST_TIMEOUT: i64 = -31003;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_outside_the_reserved_range() {
        let codes = [TARGET_UNAVAILABLE, ANSWER_LOST, REQUEST_TIMEOUT];
        for code in codes {
            assert!(!(-32768..=-32000).contains(&code), "{code}");
        }
        let mut sorted = codes.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len());
    }
}
