//! The narrow handle on the running host that the manager API and the config reload get:
//! what they may read and do, and nothing of how the host keeps its targets. `host.rs`
//! implements it, so both import down to this module and never up to the host.

use std::sync::Arc;

use futures::future::BoxFuture;
use msm_core::{Config, StateDir, TargetConfig, Token};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::memory_backend::MemoryBackend;
use crate::security::Guard;
use crate::sessions::SessionRegistry;
use crate::status::{HostEvent, HostStatus, TargetError};

/// The host as the manager API and the reload see it (`Arc<dyn HostControl>`).
pub(crate) trait HostControl: Send + Sync + 'static {
    fn state_dir(&self) -> &StateDir;
    fn token(&self) -> &Token;
    /// The manager port's security layer.
    fn guard(&self) -> Arc<Guard>;
    fn sessions(&self) -> &SessionRegistry;
    fn memory(&self) -> &MemoryBackend;
    fn events(&self) -> &broadcast::Sender<HostEvent>;
    fn status(&self) -> HostStatus;
    fn config(&self) -> Config;
    fn set_config(&self, config: Config);
    fn target_config(&self, name: &str) -> Option<TargetConfig>;
    fn set_target_config(&self, config: TargetConfig);
    fn add_slot(&self, config: TargetConfig);
    /// Cancelled when shutdown begins.
    fn stopping_token(&self) -> CancellationToken;
    /// Asks the host's owner to shut it down (`POST /shutdown`).
    fn request_shutdown(&self);
    /// Serialises reloads.
    fn reload_lock(&self) -> &tokio::sync::Mutex<()>;
    fn remove_slot<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    fn start_target<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
    fn stop_target<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
    fn restart_target<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
    fn probe_remotes(&self) -> BoxFuture<'_, ()>;
}

/// The handle the manager API and the reload hold.
pub(crate) type HostRef = Arc<dyn HostControl>;
