//! Optional TLS, for those who run chattrd without a reverse proxy: `CHATTR_TLS_CERT` (the
//! certificate chain, PEM, leaf first) and `CHATTR_TLS_KEY` (its private key, PEM). rustls does
//! the work. The files are read again on SIGHUP: connections from then on get the new
//! certificate, open ones keep theirs, and a pair that does not load is refused with an error in
//! the log while the old one stays in use (a renewal that went wrong never takes the server
//! down).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The certificate in use and where it is read from.
pub(crate) struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain and key; an error says which file and why.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let acceptor = acceptor(cert, key)?;
        Ok(Arc::new(Self { cert: cert.to_owned(), key: key.to_owned(), current: RwLock::new(acceptor) }))
    }

    /// What new connections are accepted with.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let fresh = acceptor(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let unreadable = |path: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| unreadable(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(cert, &e))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it (PEM, `BEGIN CERTIFICATE`)", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable(key, &e))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{} and {} do not make a certificate: {e}", cert.display(), key.display()))?;
    // chattrd speaks HTTP/1.1 (WebSockets upgrade from it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
