//! TLS without a proxy (`tls_cert_file`, `tls_key_file`), for a single binary on a machine of
//! its own: rustls, HTTP/2 and HTTP/1.1 through ALPN (actix adds both), and the files read
//! again on SIGHUP. A reload swaps what new handshakes are answered with; connections already
//! open keep theirs, so renewing a certificate (certbot's deploy hook, say) drops nothing.
//! A reload that fails (a half-written file, a key that does not match) keeps the certificate
//! in use and says why in the log.
//!
//! Floor: entry, beside `startup` that wires it (docs/architecture.md); names only `config`.

use std::sync::{Arc, RwLock};

use anyhow::{Context, anyhow};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;

/// What browsers are told when Latchkey serves TLS itself: this host is https only, for a year.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// The certificate every new handshake gets, replaceable while serving.
#[derive(Debug)]
pub struct Certificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads the files; a start with unusable ones fails, naming the file and what is wrong.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = RwLock::new(Arc::new(read(files, &provider)?));
        Ok(Arc::new(Self { files: files.clone(), provider, current }))
    }

    /// Reads the files again; on success new handshakes get the new certificate.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(read(&self.files, &self.provider)?);
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// A server configuration that asks this certificate at every handshake.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        Ok(rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("the TLS provider offers no safe protocol version")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone()))
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let (cert_file, key_file) = (&files.cert_file, &files.key_file);
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("tls_cert_file {}: {e}", cert_file.display()))?;
    if chain.is_empty() {
        anyhow::bail!("tls_cert_file {}: no PEM certificate in it", cert_file.display());
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| anyhow!("tls_key_file {}: {e}", key_file.display()))?;
    let signer =
        provider.key_provider.load_private_key(key).map_err(|e| anyhow!("tls_key_file {}: {e}", key_file.display()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| {
        anyhow!("tls_key_file {} is not the key of the certificate in {}: {e}", key_file.display(), cert_file.display())
    })?;
    Ok(certified)
}

/// Reloads `certificate` on every SIGHUP until the server stops.
pub async fn reload_on_hangup(certificate: Arc<Certificate>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP: the TLS certificate will not be reloaded");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match certificate.reload() {
            Ok(()) => {
                tracing::info!(cert_file = %certificate.files.cert_file.display(), "reloaded the TLS certificate")
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "could not reload the TLS certificate; keeping the current one")
            }
        }
    }
}
