//! The memory target's one resource, `memory://knowledge-graph` (the reference server's: the
//! whole graph of the session's project as indented JSON), and its subscriptions.
//!
//! The reference notifies only the one client it serves. Our daemon serves many sessions, some
//! on the same project DB (two windows on one project), so a change is announced on a
//! host-wide [`GraphChanges`] channel keyed by DB path, and every subscriber whose store is that
//! DB forwards it to its client as `notifications/resources/updated`: a legacy session after
//! `resources/subscribe` ([`Subscription`]), and a 2026-07-28 client on its
//! `subscriptions/listen` stream ([`listen_for_changes`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rmcp::model::{Resource, ResourceUpdatedNotificationParam, SubscriptionFilter};
use rmcp::service::SubscriptionContext;
use rmcp::{ErrorData, Peer, RoleServer};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The reference server's resource URI.
pub(crate) const RESOURCE_URI: &str = "memory://knowledge-graph";

/// How many unread changes a slow session may fall behind before it just gets one
/// notification for all of them.
const CHANGE_BACKLOG: usize = 64;

/// The resource as the reference lists it.
pub(crate) fn knowledge_graph_resource() -> Resource {
    Resource::new(RESOURCE_URI, "knowledge-graph")
        .with_title("Knowledge Graph")
        .with_description("The full knowledge graph with all entities and relations")
        .with_mime_type("application/json")
}

/// "This memory DB changed": announced after every successful mutating tool call, heard by the
/// subscribed sessions of every handler made with the same `GraphChanges` (the host shares one,
/// so a write in one session reaches the other sessions on the same DB). Cheap to clone.
#[derive(Clone, Debug)]
pub struct GraphChanges {
    sender: broadcast::Sender<Arc<Path>>,
}

impl Default for GraphChanges {
    fn default() -> Self {
        GraphChanges::new()
    }
}

impl GraphChanges {
    /// A channel nobody listens to yet.
    pub fn new() -> GraphChanges {
        GraphChanges {
            sender: broadcast::channel(CHANGE_BACKLOG).0,
        }
    }

    /// Tells the subscribed sessions that the DB at `db` changed (nothing when none listens).
    pub(crate) fn announce(&self, db: &Path) {
        let _ = self.sender.send(Arc::from(db));
    }

    /// A receiver of the changes announced from now on.
    pub(crate) fn watch(&self) -> broadcast::Receiver<Arc<Path>> {
        self.sender.subscribe()
    }
}

/// Waits for the next change of `db` (or a lag, in which one of the missed changes may have
/// been of `db`); `false` when the channel closed.
async fn next_change(changes: &mut broadcast::Receiver<Arc<Path>>, db: &Path) -> bool {
    loop {
        match changes.recv().await {
            Ok(changed) if *changed == *db => return true,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}

/// What a 2026-07-28 `subscriptions/listen` may have: updates of the one resource.
pub(crate) fn accepted_filter() -> SubscriptionFilter {
    SubscriptionFilter::builder()
        .resource_subscription(RESOURCE_URI)
        .build()
}

/// Runs one `subscriptions/listen` stream: sends `notifications/resources/updated` (carrying the
/// subscription id) for every change of `db` until the client cancels the stream. `changes`
/// must be watched before the DB is resolved, so a write right after the acknowledgment counts.
pub(crate) async fn listen_for_changes(
    context: SubscriptionContext,
    mut changes: broadcast::Receiver<Arc<Path>>,
    db: PathBuf,
) -> Result<(), ErrorData> {
    let wants_graph = context
        .accepted()
        .resource_subscriptions
        .as_ref()
        .is_some_and(|uris| uris.iter().any(|uri| uri == RESOURCE_URI));
    if !wants_graph {
        context.cancelled().await;
        return Ok(());
    }
    loop {
        tokio::select! {
            () = context.cancelled() => return Ok(()),
            changed = next_change(&mut changes, &db) => {
                if !changed {
                    context.cancelled().await;
                    return Ok(());
                }
                if context.sink().notify_resource_updated(RESOURCE_URI).await.is_err() {
                    // The stream is gone: nothing more to send it.
                    return Ok(());
                }
            }
        }
    }
}

/// One session's subscription to the resource: the task forwarding its DB's changes to the
/// client. It is aborted on unsubscribe, on a new subscribe (which replaces it) and when the
/// session's handler is dropped (the session ended), so it never outlives its session.
#[derive(Debug, Default)]
pub(crate) struct Subscription {
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Subscription {
    /// Starts forwarding the changes of `db` to `peer` (replacing any earlier subscription).
    pub(crate) fn start(&self, db: PathBuf, changes: &GraphChanges, peer: Peer<RoleServer>) {
        let receiver = changes.watch();
        let task = tokio::spawn(forward_changes(receiver, db, peer));
        if let Some(old) = self.task.lock().replace(task) {
            old.abort();
        }
    }

    /// Stops forwarding (nothing when not subscribed).
    pub(crate) fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }

    /// Whether a forwarding task is running (for tests).
    #[cfg(test)]
    pub(crate) fn is_active(&self) -> bool {
        self.task.lock().as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `notifications/resources/updated` for every change of `db` until the channel or the
/// client's connection closes.
async fn forward_changes(
    mut changes: broadcast::Receiver<Arc<Path>>,
    db: PathBuf,
    peer: Peer<RoleServer>,
) {
    while next_change(&mut changes, &db).await {
        let notification = ResourceUpdatedNotificationParam::new(RESOURCE_URI);
        if peer.notify_resource_updated(notification).await.is_err() {
            return;
        }
    }
}
