//! rustls configurations for both ends of a link: TLS 1.3 only, the
//! federation CA as the only root, the CRL checked, client certificates
//! required, no resumption and no 0-RTT (both would skip or replay what
//! the handshake proves).

use std::sync::Arc;

use hallsync_pki::bundle::{Bundle, NODE_CERT, NODE_KEY};
use hallsync_pki::{CA_CERT, CRL};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::NetError;

/// The ALPN protocol name of hallsync links.
pub const ALPN: &[u8] = b"hallsync/1";

/// The one crypto provider (ring), installed process-wide at start-up so no
/// second provider can ever be picked by accident.
pub fn provider() -> Arc<CryptoProvider> {
    let p = rustls::crypto::ring::default_provider();
    // Already installed (a second node in the same process): fine.
    let _ = p.clone().install_default();
    Arc::new(p)
}

/// What a node presents and trusts, read from its bundle.
#[derive(Debug)]
pub struct Credentials {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

fn bad(bundle: &Bundle, file: &str, why: impl std::fmt::Display) -> NetError {
    NetError::Config(format!("{}: {why}", bundle.file(file).display()))
}

impl Credentials {
    /// Reads certificate, key, CA and CRL from a bundle.
    pub fn load(bundle: &Bundle) -> Result<Credentials, NetError> {
        let pem = |f: &str| bundle.read(f).map_err(|e| NetError::Config(e.to_string()));
        let certs = CertificateDer::pem_slice_iter(pem(NODE_CERT)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(bundle, NODE_CERT, format!("not a PEM certificate ({e})")))?;
        if certs.is_empty() {
            return Err(bad(bundle, NODE_CERT, "no certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(pem(NODE_KEY)?.as_bytes())
            .map_err(|e| bad(bundle, NODE_KEY, format!("not a PEM private key ({e})")))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(pem(CA_CERT)?.as_bytes()) {
            roots
                .add(ca.map_err(|e| bad(bundle, CA_CERT, e))?)
                .map_err(|e| bad(bundle, CA_CERT, e))?;
        }
        if roots.is_empty() {
            return Err(bad(bundle, CA_CERT, "no CA certificate"));
        }
        let crls = CertificateRevocationListDer::pem_slice_iter(pem(CRL)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(bundle, CRL, e))?;
        if crls.is_empty() {
            return Err(bad(bundle, CRL, "no revocation list"));
        }
        Ok(Credentials {
            certs,
            key,
            roots: Arc::new(roots),
            crls,
        })
    }

    /// The server side: requires a client certificate from the CA, not
    /// revoked.
    pub fn server(&self, provider: &Arc<CryptoProvider>) -> Result<rustls::ServerConfig, NetError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .with_crls(self.crls.clone())
                .build()
                .map_err(|e| NetError::Config(format!("client verifier: {e}")))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| NetError::Config(format!("node certificate and key: {e}")))?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        cfg.max_early_data_size = 0;
        Ok(cfg)
    }

    /// The client side: the server must hold a CA certificate for the
    /// expected node, not revoked; we present ours.
    pub fn client(&self, provider: &Arc<CryptoProvider>) -> Result<rustls::ClientConfig, NetError> {
        let verifier =
            WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .with_crls(self.crls.clone())
                .build()
                .map_err(|e| NetError::Config(format!("server verifier: {e}")))?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Config(e.to_string()))?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| NetError::Config(format!("node certificate and key: {e}")))?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        cfg.resumption = rustls::client::Resumption::disabled();
        cfg.enable_early_data = false;
        Ok(cfg)
    }
}
