//! The TLS client of https `url` targets: rustls with ring (no OpenSSL), the platform's trust
//! store (rustls-platform-verifier), and a target's own `ca_file` on top. Only the host speaks
//! TLS; the proxy reaches a fronted remote over loopback HTTP, which keeps it small.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// A pooled HTTP/1.1 client for http and https URLs: every window's requests to one remote
/// share its connections.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Why a remote's TLS client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the platform's certificate verifier: {0}")]
    Verifier(rustls::Error),
}

/// A client trusting the platform's roots plus the certificates in `ca_file` (PEM).
pub fn https_client(ca_file: Option<&Path>) -> Result<HttpsClient, TlsSetupError> {
    let extra_roots = match ca_file {
        Some(path) => read_ca_file(path)?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(TlsSetupError::Verifier)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Verifier)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    // Small MCP messages must not wait for a delayed ACK (Nagle), as on our own ports.
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let error = |reason: String| TlsSetupError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certificates)
}
