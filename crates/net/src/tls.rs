//! rustls configurations for both ends of a link: TLS 1.3 only, the
//! federation CA as the only root, the CRL checked, client certificates
//! required, no resumption and no 0-RTT (both would skip or replay what
//! the handshake proves).
//!
//! And the web console's HTTPS ([`ConsoleTls`]): the bundle's console
//! certificate, TLS 1.2 and 1.3 for browsers, no client certificates;
//! checked at start against the federation CA, its revocation list and the
//! address this PC's command line reaches the console at.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use hallsync_pki::bundle::{Bundle, CONSOLE_CERT, CONSOLE_KEY, NODE_CERT, NODE_KEY};
use hallsync_pki::{CA_CERT, CRL};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, RootCertStore};

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
    /// What lets a node that crashed and came back be recognised by its
    /// peers at once: the key QUIC's stateless resets are made with, and
    /// the key its connection ids are signed with, both derived from the
    /// node's private key so that they stay the same across restarts. The
    /// restarted node then knows the old connection's ids for its own and
    /// answers a peer's next packet on it with a reset the peer trusts, and
    /// the peer dials again instead of waiting out the idle timeout.
    pub fn restart_keys(&self) -> (ring::hmac::Key, u64) {
        let derive = |label: &[u8]| {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(label);
            ctx.update(self.key.secret_der());
            ctx.finish()
        };
        let reset = derive(b"hallsync quic stateless reset key 1\0");
        let cid = derive(b"hallsync quic connection id key 1\0");
        let mut first = [0; 8];
        first.copy_from_slice(&cid.as_ref()[..8]);
        (
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset.as_ref()),
            u64::from_le_bytes(first),
        )
    }

    /// Reads certificate, key, CA and CRL from a bundle.
    pub fn load(bundle: &Bundle) -> Result<Credentials, NetError> {
        let pem = |f: &str| bundle.read(f).map_err(|e| NetError::Config(e.to_string()));
        let certs = CertificateDer::pem_slice_iter(pem(NODE_CERT)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                bad(
                    bundle,
                    NODE_CERT,
                    format!("not a PEM certificate ({})", pem_words(&e)),
                )
            })?;
        if certs.is_empty() {
            return Err(bad(bundle, NODE_CERT, "no certificate"));
        }
        let named = hallsync_pki::identity_of(&certs[0])
            .map_err(|e| bad(bundle, NODE_CERT, format!("no hallsync identity ({e})")))?;
        let c = &bundle.config;
        if named.id != c.id || named.region != c.region || named.level != c.level {
            return Err(bad(
                bundle,
                NODE_CERT,
                format!(
                    "names {} ({}, region {}), but hallsync.toml says {} ({}, region {}): use the bundle `hallsync node add` made for this hall, unedited",
                    named.id, named.level, named.region, c.id, c.level, c.region
                ),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(pem(NODE_KEY)?.as_bytes()).map_err(|e| {
            bad(
                bundle,
                NODE_KEY,
                format!("not a PEM private key ({})", pem_words(&e)),
            )
        })?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(pem(CA_CERT)?.as_bytes()) {
            roots
                .add(ca.map_err(|e| bad(bundle, CA_CERT, pem_words(&e)))?)
                .map_err(|e| bad(bundle, CA_CERT, e))?;
        }
        if roots.is_empty() {
            return Err(bad(bundle, CA_CERT, "no CA certificate"));
        }
        let crls = CertificateRevocationListDer::pem_slice_iter(pem(CRL)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(bundle, CRL, pem_words(&e)))?;
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

/// A TLS connection the console accepted.
pub type ConsoleStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// The console's HTTPS: what its listener accepts connections with.
#[derive(Clone)]
pub struct ConsoleTls {
    acceptor: tokio_rustls::TlsAcceptor,
    local_host: IpAddr,
    ca_pem: String,
}

impl std::fmt::Debug for ConsoleTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleTls")
            .field("local_host", &self.local_host)
            .finish_non_exhaustive()
    }
}

/// Where a command on this PC reaches a console listening on `listen`:
/// that address, or the loopback address when it listens on every address.
pub fn console_local_host(listen: SocketAddr) -> IpAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

impl ConsoleTls {
    /// Reads the bundle's console certificate and key for a console on
    /// `listen`, and checks the certificate as a client on this PC will:
    /// issued by the federation CA, not revoked, valid now, for server
    /// authentication, and naming the address the command line here
    /// reaches the console at ([`console_local_host`]). Every refusal says
    /// what to do.
    pub fn load(
        bundle: &Bundle,
        listen: SocketAddr,
        provider: &Arc<CryptoProvider>,
    ) -> Result<ConsoleTls, NetError> {
        let id = &bundle.config.id;
        let reissue = format!(
            "issue one where the federation CA is kept with `hallsync node console {id} --console {listen} --console-host <name or address browsers use>` and copy console.crt and console.key into {}",
            bundle.dir.display()
        );
        if !bundle.file(CONSOLE_CERT).exists() || !bundle.file(CONSOLE_KEY).exists() {
            return Err(NetError::Config(format!(
                "console = {listen} serves the console beyond this PC, which takes HTTPS with a certificate from the federation CA, but {} has no {CONSOLE_CERT} and {CONSOLE_KEY}: {reissue}; or set console = \"127.0.0.1:<port>\" in hallsync.toml to keep it on this PC",
                bundle.dir.display()
            )));
        }
        let pem = |f: &str| bundle.read(f).map_err(|e| NetError::Config(e.to_string()));
        let certs = CertificateDer::pem_slice_iter(pem(CONSOLE_CERT)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                bad(
                    bundle,
                    CONSOLE_CERT,
                    format!("not a PEM certificate ({})", pem_words(&e)),
                )
            })?;
        let Some((leaf, chain)) = certs.split_first() else {
            return Err(bad(bundle, CONSOLE_CERT, "no certificate"));
        };
        let key = PrivateKeyDer::from_pem_slice(pem(CONSOLE_KEY)?.as_bytes()).map_err(|e| {
            bad(
                bundle,
                CONSOLE_KEY,
                format!("not a PEM private key ({})", pem_words(&e)),
            )
        })?;
        let creds = Credentials::load(bundle)?;
        let local_host = console_local_host(listen);
        let verifier =
            WebPkiServerVerifier::builder_with_provider(creds.roots.clone(), provider.clone())
                .with_crls(creds.crls.clone())
                .build()
                .map_err(|e| NetError::Config(format!("console verifier: {e}")))?;
        verifier
            .verify_server_cert(
                leaf,
                chain,
                &ServerName::IpAddress(local_host.into()),
                &[],
                UnixTime::now(),
            )
            .map_err(|e| {
                let why = match &e {
                    rustls::Error::InvalidCertificate(c) => match c {
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. } => format!(
                            "it does not name {local_host}, where the command line on this PC reaches the console (console = {listen})"
                        ),
                        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                            "it has expired".to_string()
                        }
                        CertificateError::NotValidYet
                        | CertificateError::NotValidYetContext { .. } => {
                            "it is not valid yet (is this PC's clock right?)".to_string()
                        }
                        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                            format!("it was not issued by the federation CA in {CA_CERT}")
                        }
                        CertificateError::Revoked => "it has been revoked".to_string(),
                        CertificateError::InvalidPurpose
                        | CertificateError::InvalidPurposeContext { .. } => {
                            "it is not a TLS server certificate".to_string()
                        }
                        other => format!("{other:?}"),
                    },
                    other => other.to_string(),
                };
                bad(bundle, CONSOLE_CERT, format!("cannot serve the console: {why}; {reissue}"))
            })?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| NetError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key)
            .map_err(|e| {
                bad(
                    bundle,
                    CONSOLE_KEY,
                    format!("does not go with {CONSOLE_CERT} ({e}); {reissue}"),
                )
            })?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ConsoleTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            local_host,
            ca_pem: pem(CA_CERT)?,
        })
    }

    /// The TLS handshake on an accepted connection.
    pub async fn accept(&self, tcp: tokio::net::TcpStream) -> std::io::Result<ConsoleStream> {
        self.acceptor.accept(tcp).await
    }

    /// Where a command on this PC reaches the console (the certificate
    /// names it).
    pub fn local_host(&self) -> IpAddr {
        self.local_host
    }

    /// The federation CA certificate (PEM) that clients check the console
    /// against.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

/// A PEM file's fault in words: the PEM reader names lines as bytes.
fn pem_words(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "it ends without its `-----END {}-----` line: cut short, or edited",
            String::from_utf8_lossy(end_marker).trim()
        ),
        Error::IllegalSectionStart { line } => {
            format!("a damaged `{}` line", String::from_utf8_lossy(line).trim())
        }
        Error::Base64Decode(why) => format!("its base64 text is damaged ({why})"),
        other => other.to_string(),
    }
}
