//! The target's transports behind one small trait. A transport only moves bytes: it sends each
//! client message as it is and hands back, as [`LinkEvent`]s, every server message and every
//! failure, classified so the proxy can decide between a retry and an error answer.

mod legacy_sse;
mod streamable;

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use tokio::sync::mpsc::UnboundedSender;

pub use legacy_sse::LegacySse;
pub use streamable::StreamableHttp;

use crate::http::HttpClient;
use crate::jsonrpc::IdKey;

/// One client message on its way to the target.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The line exactly as the client wrote it.
    pub body: Bytes,
    /// The ids of the requests in it (none for a notification or an answer).
    pub requests: Vec<IdKey>,
    /// The method of a single request or notification.
    pub method: Option<String>,
    /// Headers for this message alone (`Mcp-Method`, `Mcp-Name`, the stateless revision's
    /// `MCP-Protocol-Version`).
    pub routing: HeaderMap,
    /// How often it has been sent already (a message that never reached the target is retried).
    pub attempts: u8,
    /// Later messages wait until this one is through: `initialize` (a client that does not
    /// wait for its answer would otherwise send them without the session it opens) and
    /// `notifications/initialized` (no request may overtake it on another connection).
    pub barrier: bool,
}

/// Why a message did not get through.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The target never saw it: safe to send again once re-attached.
    NotReached(String),
    /// The target does not know our session (it restarted): never processed; re-attach,
    /// replay the handshake, send again.
    SessionGone,
    /// It may have been processed, and no answer came.
    MayHaveReached(String),
    /// The target refused it with an HTTP status and no JSON-RPC answer.
    Rejected { status: u16, detail: String },
}

/// What a transport reports to the proxy.
#[derive(Debug)]
pub enum LinkEvent {
    /// One message (or batch) from the target, for the client.
    FromServer(Bytes),
    Failed {
        generation: u64,
        message: Outgoing,
        failure: Failure,
    },
    /// A barrier message went through.
    Delivered { generation: u64 },
    /// The link is gone (the server's stream ended, or its port refuses); `lost` are requests
    /// whose answers would have come on that stream.
    Down {
        generation: u64,
        reason: String,
        lost: Vec<IdKey>,
    },
}

/// What every transport of one link shares.
#[derive(Clone)]
pub struct LinkContext {
    pub client: HttpClient,
    pub events: UnboundedSender<LinkEvent>,
    /// Bumped on every re-attach, so that stale events are recognised.
    pub generation: u64,
    /// Sent with every request: auth, project path, proxy instance, Accept, Content-Type.
    pub base_headers: HeaderMap,
    /// The negotiated revision of a session (set once initialize is answered).
    pub protocol_version: Arc<Mutex<Option<HeaderValue>>>,
}

impl LinkContext {
    fn emit(&self, event: LinkEvent) {
        let _ = self.events.send(event);
    }

    fn fail(&self, message: Outgoing, failure: Failure) {
        self.emit(LinkEvent::Failed {
            generation: self.generation,
            message,
            failure,
        });
    }

    fn delivered(&self, message: &Outgoing) {
        if message.barrier {
            self.emit(LinkEvent::Delivered {
                generation: self.generation,
            });
        }
    }

    fn protocol_version(&self) -> Option<HeaderValue> {
        lock(&self.protocol_version).clone()
    }

    fn set_protocol_version(&self, version: &str) {
        if let Ok(value) = HeaderValue::from_str(version) {
            *lock(&self.protocol_version) = Some(value);
        }
    }
}

/// Locks `mutex`, taking its data back when a task panicked while holding it. Each value
/// under these locks (a slot, a map of ids) is whole between statements, so the work goes on
/// and every request still gets its answer; skipping it would leave a client waiting forever.
/// The panic itself is logged where tokio caught it; this logs what it left behind.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| {
        tracing::error!(
            "a task panicked while holding a lock of the proxy; carrying on with its data"
        );
        mutex.clear_poison();
        poisoned.into_inner()
    })
}

/// A connected link to the target.
pub trait Transport: Send + Sync {
    /// Starts sending `message`; its outcome and answers arrive as [`LinkEvent`]s.
    /// Aborting the returned handle drops the request's connection: the stateless revision's
    /// way to cancel.
    fn send(&self, message: Outgoing) -> tokio::task::AbortHandle;
    /// Replays the client's cached initialize handshake on a fresh link (the answer is not
    /// shown to the client) so that the session carries on.
    fn replay_handshake(
        &self,
        initialize: Bytes,
        initialized: Option<Bytes>,
    ) -> BoxFuture<'_, Result<(), String>>;
    /// Ends the session (`DELETE` for streamable HTTP) and stops background streams.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// The ids the proxy uses for its own requests start with this, so their answers are kept from
/// the client.
pub const INTERNAL_ID_PREFIX: &str = "msm-proxy-";

fn is_internal_answer(id: &IdKey) -> bool {
    id.as_json_text()
        .strip_prefix('"')
        .is_some_and(|s| s.starts_with(INTERNAL_ID_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poison<T: Send + 'static>(mutex: &Arc<Mutex<T>>) {
        let held = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock();
            panic!("a task panics while holding the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
    }

    /// A lock a panicking task left behind still gives its data: the negotiated revision
    /// keeps going out with every request instead of silently vanishing.
    #[test]
    fn a_poisoned_lock_keeps_its_data_and_the_work_goes_on() {
        let version = Arc::new(Mutex::new(Some(HeaderValue::from_static("2025-06-18"))));
        poison(&version);
        let link = LinkContext {
            client: crate::http::new_client(),
            events: tokio::sync::mpsc::unbounded_channel().0,
            generation: 1,
            base_headers: HeaderMap::new(),
            protocol_version: version.clone(),
        };
        assert_eq!(
            link.protocol_version(),
            Some(HeaderValue::from_static("2025-06-18"))
        );
        link.set_protocol_version("2026-07-28");
        assert_eq!(
            link.protocol_version(),
            Some(HeaderValue::from_static("2026-07-28"))
        );
        assert!(!version.is_poisoned(), "cleared once recovered");
    }
}
