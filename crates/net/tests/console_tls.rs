//! The console's HTTPS: which certificates `ConsoleTls::load` accepts for
//! a console address (and what it says when it refuses one), and real
//! handshakes with TLS 1.2 and 1.3 clients that trust only the federation
//! CA.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hallsync_model::{Level, NodeId, RegionCode, Ts};
use hallsync_net::tls::{provider, ConsoleTls};
use hallsync_pki::bundle::{Bundle, CONSOLE_CERT, CONSOLE_KEY, NODE_CERT, NODE_KEY};
use hallsync_pki::topology::NodeEntry;
use hallsync_pki::{Ca, ConsoleHost, Identity};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn now() -> Ts {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Ts(secs as i64)
}

/// A CA in `root/ca` and the bundle of township tw-101 in `root/bundle`.
fn bundle(root: &Path) -> (Ca, Bundle) {
    let ca = Ca::init(&root.join("ca"), "样例市", now().plus(-86_400), 3650).unwrap();
    let id = NodeId::parse("tw-101").unwrap();
    let who = Identity {
        id: id.clone(),
        level: Level::Township,
        region: RegionCode::parse("140212101").unwrap(),
    };
    let issued = ca
        .issue(&who, now().plus(-300), now().plus(86_400))
        .unwrap();
    let entry = NodeEntry {
        id,
        name: "样例镇".into(),
        level: who.level,
        region: who.region.clone(),
        parent: None,
        addr: None,
        serial: issued.serial.clone(),
        issued: String::new(),
        expires: String::new(),
        revoked: None,
    };
    let bundle = Bundle::write(
        &root.join("bundle"),
        &ca,
        &entry,
        &issued,
        Some("127.0.0.1:0".into()),
        None,
        Some("0.0.0.0:7480".into()),
    )
    .unwrap();
    (ca, bundle)
}

fn hosts(names: &[&str]) -> Vec<ConsoleHost> {
    names
        .iter()
        .map(|h| ConsoleHost::parse(h).unwrap())
        .collect()
}

fn console(ca: &Ca, bundle: &Bundle, names: &[&str], from: Ts, until: Ts) {
    let id = NodeId::parse("tw-101").unwrap();
    let issued = ca.issue_console(&id, &hosts(names), from, until).unwrap();
    bundle.write_console(&issued).unwrap();
}

fn load(bundle: &Bundle, listen: &str) -> Result<ConsoleTls, String> {
    ConsoleTls::load(bundle, listen.parse().unwrap(), &provider()).map_err(|e| e.to_string())
}

#[test]
fn a_console_certificate_must_name_where_this_pcs_command_line_reaches_it() {
    let d = tempfile::tempdir().unwrap();
    let (ca, bundle) = bundle(d.path());
    let day = 86_400;
    console(
        &ca,
        &bundle,
        &["hall.example", "192.168.1.20", "127.0.0.1"],
        now().plus(-60),
        now().plus(day),
    );
    // Every address: this PC reaches it on loopback.
    let tls = load(&bundle, "0.0.0.0:7480").unwrap();
    assert_eq!(tls.local_host().to_string(), "127.0.0.1");
    assert!(tls.ca_pem().contains("BEGIN CERTIFICATE"));
    assert_eq!(
        load(&bundle, "192.168.1.20:7480")
            .unwrap()
            .local_host()
            .to_string(),
        "192.168.1.20"
    );
    let err = load(&bundle, "192.168.1.21:7480").unwrap_err();
    assert!(
        err.contains("does not name 192.168.1.21") && err.contains("hallsync node console tw-101"),
        "{err}"
    );
    // Listening on every IPv6 address, this PC reaches it at ::1, which
    // the certificate does not name.
    let err = load(&bundle, "[::]:7480").unwrap_err();
    assert!(err.contains("does not name ::1"), "{err}");
}

#[test]
fn a_bundle_without_a_console_certificate_is_refused_naming_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let (_, bundle) = bundle(d.path());
    let err = load(&bundle, "0.0.0.0:7480").unwrap_err();
    assert!(
        err.contains("has no console.crt")
            && err.contains("--console-host")
            && err.contains("127.0.0.1:<port>"),
        "{err}"
    );
}

#[test]
fn expired_foreign_and_node_certificates_cannot_serve_the_console() {
    let d = tempfile::tempdir().unwrap();
    let (ca, bundle) = bundle(d.path());
    let day = 86_400;
    console(
        &ca,
        &bundle,
        &["127.0.0.1"],
        now().plus(-3 * day),
        now().plus(-day),
    );
    let err = load(&bundle, "0.0.0.0:7480").unwrap_err();
    assert!(err.contains("expired"), "{err}");
    console(
        &ca,
        &bundle,
        &["127.0.0.1"],
        now().plus(day),
        now().plus(2 * day),
    );
    let err = load(&bundle, "0.0.0.0:7480").unwrap_err();
    assert!(err.contains("not valid yet"), "{err}");

    // The same names from another CA.
    let other = Ca::init(&d.path().join("other"), "样例市", now().plus(-day), 365).unwrap();
    console(
        &other,
        &bundle,
        &["127.0.0.1"],
        now().plus(-60),
        now().plus(day),
    );
    let err = load(&bundle, "0.0.0.0:7480").unwrap_err();
    assert!(err.contains("not issued by the federation CA"), "{err}");

    // The node's own certificate names no address.
    for (from, to) in [(NODE_CERT, CONSOLE_CERT), (NODE_KEY, CONSOLE_KEY)] {
        std::fs::copy(bundle.file(from), bundle.file(to)).unwrap();
    }
    let err = load(&bundle, "0.0.0.0:7480").unwrap_err();
    assert!(err.contains("does not name 127.0.0.1"), "{err}");

    // A key that is not the certificate's.
    console(
        &ca,
        &bundle,
        &["127.0.0.1"],
        now().plus(-60),
        now().plus(day),
    );
    std::fs::copy(bundle.file(NODE_KEY), bundle.file(CONSOLE_KEY)).unwrap();
    let err = load(&bundle, "0.0.0.0:7480").unwrap_err();
    assert!(err.contains("does not go with console.crt"), "{err}");
}

/// Accepts one connection with `tls` and answers one line.
async fn serve_once(listener: tokio::net::TcpListener, tls: ConsoleTls) {
    use tokio::io::AsyncWriteExt as _;
    let (tcp, _) = listener.accept().await.unwrap();
    if let Ok(mut stream) = tls.accept(tcp).await {
        let _ = stream.write_all(b"hello\n").await;
        let _ = stream.shutdown().await;
    }
}

async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    name: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<(rustls::ProtocolVersion, String), String> {
    use tokio::io::AsyncReadExt as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server = ServerName::try_from(name.to_string()).unwrap();
    let mut stream = connector
        .connect(server, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let version = stream.get_ref().1.protocol_version().unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    Ok((version, text))
}

#[tokio::test]
async fn browsers_reach_the_console_over_tls_1_2_and_1_3_by_the_names_it_was_issued_for() {
    let d = tempfile::tempdir().unwrap();
    let (ca, bundle) = bundle(d.path());
    console(
        &ca,
        &bundle,
        &["hall.example", "127.0.0.1"],
        now().plus(-60),
        now().plus(86_400),
    );
    let tls = load(&bundle, "0.0.0.0:7480").unwrap();
    for (version, name, ok) in [
        (&rustls::version::TLS13, "hall.example", true),
        (&rustls::version::TLS12, "hall.example", true),
        (&rustls::version::TLS13, "127.0.0.1", true),
        (&rustls::version::TLS13, "other.example", false),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_once(listener, tls.clone()));
        let got = connect(addr, tls.ca_pem(), name, version).await;
        server.await.unwrap();
        match got {
            Ok((v, text)) => {
                assert!(ok, "{name} should have been refused");
                assert_eq!(v, version.version);
                assert_eq!(text, "hello\n");
            }
            Err(e) => assert!(!ok, "{name} over {version:?}: {e}"),
        }
    }
}

/// A bundle's certificate cut short, or its key's text damaged, is named
/// in words a person can act on, not as the bytes of a line.
#[test]
fn a_damaged_pem_file_is_named_in_words() {
    use hallsync_net::tls::Credentials;
    let d = tempfile::tempdir().unwrap();
    let (_, bundle) = bundle(d.path());
    let cert = std::fs::read_to_string(bundle.file(NODE_CERT)).unwrap();
    std::fs::write(bundle.file(NODE_CERT), &cert[..cert.len() / 2]).unwrap();
    let err = Credentials::load(&bundle).unwrap_err().to_string();
    assert!(
        err.contains("node.crt")
            && err.contains("ends without its `-----END CERTIFICATE-----` line"),
        "{err}"
    );
    std::fs::write(bundle.file(NODE_CERT), &cert).unwrap();
    let key = std::fs::read_to_string(bundle.file(NODE_KEY)).unwrap();
    let damaged = key.replacen('\n', "\n!!!!", 1);
    std::fs::write(bundle.file(NODE_KEY), damaged).unwrap();
    let err = Credentials::load(&bundle).unwrap_err().to_string();
    assert!(err.contains("node.key") && !err.contains("[4"), "{err}");
}
