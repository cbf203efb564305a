//! The federation's public-key infrastructure.
//!
//! - [`Ca`]: the federation CA under `certs/` (key mode 0600), node
//!   certificates, and the certificate revocation list;
//! - [`identity_of`]: a node's identity (id, level, region) read from its
//!   certificate — the only place a peer's identity comes from;
//! - [`topology`]: the federation's node list (`topology/federation.toml`);
//! - [`bundle`]: the directory an administrator copies to a hall PC.
//!
//! A node certificate names the node twice: a DNS name
//! `<id>.node.hallsync` (what TLS checks a server against) and a URI
//! `urn:hallsync:node:<id>:<level>:<region>` (identity, level and region).
//!
//! A console certificate ([`Ca::issue_console`]) is a TLS server
//! certificate for a node's web console served beyond its own machine: it
//! names the host names and addresses browsers reach the console at, is
//! good for server authentication only, and carries no node identity, so it
//! can never stand in for a node on a link.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bundle;
pub mod topology;

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hallsync_model::{Level, NodeId, RegionCode, Ts};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// CA certificate file name.
pub const CA_CERT: &str = "ca.crt";
/// CA private key file name.
pub const CA_KEY: &str = "ca.key";
/// Revocation list file name.
pub const CRL: &str = "crl.pem";
const CA_STATE: &str = "ca-state.toml";
const URI_PREFIX: &str = "urn:hallsync:node:";
/// The DNS suffix of node certificates, which no console certificate may
/// name.
const NODE_DNS_SUFFIX: &str = "node.hallsync";

/// Longest a console certificate is valid, days: the most browsers accept
/// for a server certificate from a public CA, kept here too since a
/// browser cannot learn that one was withdrawn (it never reads the
/// federation's revocation list).
pub const CONSOLE_MAX_DAYS: i64 = 398;

/// Most names and addresses one console certificate carries.
pub const CONSOLE_MAX_HOSTS: usize = 16;

/// PKI errors.
#[derive(Debug, Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `ca init` on a directory that already has a CA.
    #[error("{0} already holds a federation CA; refusing to overwrite it")]
    CaExists(PathBuf),
    /// No CA where one was expected.
    #[error("no federation CA in {0}: run `hallsync ca init` first")]
    NoCa(PathBuf),
    /// Certificate generation or parsing failed.
    #[error("certificate: {0}")]
    Cert(String),
    /// A file's contents are wrong.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A request that does not fit the federation.
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cert_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::Cert(e.to_string())
}

/// Writes a file atomically (temporary file, sync, rename), with `mode`
/// on Unix.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io(path))
}

/// A node's identity as its certificate states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Node id.
    pub id: NodeId,
    /// Level of its hall.
    pub level: Level,
    /// Region code of its hall.
    pub region: RegionCode,
}

/// The DNS name a node's certificate carries and TLS checks.
pub fn dns_name(id: &NodeId) -> String {
    format!("{id}.node.hallsync")
}

fn identity_uri(i: &Identity) -> String {
    format!("{URI_PREFIX}{}:{}:{}", i.id, i.level.as_str(), i.region)
}

/// Reads the identity from a node certificate (DER). The caller has already
/// verified the certificate; this only reads what it says.
pub fn identity_of(der: &[u8]) -> Result<Identity, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(cert_err)?;
    let san = cert
        .subject_alternative_name()
        .map_err(cert_err)?
        .ok_or_else(|| PkiError::Cert("no subject alternative names".into()))?;
    let mut found = None;
    for name in &san.value.general_names {
        if let x509_parser::extensions::GeneralName::URI(uri) = name {
            if let Some(rest) = uri.strip_prefix(URI_PREFIX) {
                if found.is_some() {
                    return Err(PkiError::Cert("two hallsync identities".into()));
                }
                found = Some(parse_identity(rest)?);
            }
        }
    }
    found.ok_or_else(|| PkiError::Cert("no hallsync node identity (urn:hallsync:node:…)".into()))
}

fn parse_identity(rest: &str) -> Result<Identity, PkiError> {
    let parts: Vec<&str> = rest.split(':').collect();
    let [id, level, region] = parts[..] else {
        return Err(PkiError::Cert(format!("malformed identity {rest:?}")));
    };
    let id = NodeId::parse(id).map_err(cert_err)?;
    let level: Level = level.parse().map_err(cert_err)?;
    let region = RegionCode::parse(region).map_err(cert_err)?;
    region
        .check_level(level)
        .map_err(|e| PkiError::Cert(format!("identity {rest:?}: {e}")))?;
    Ok(Identity { id, level, region })
}

/// A host name or address a console certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsoleHost {
    /// A DNS name, lower case (e.g. `tw-101.hall.example`, or a bare
    /// intranet host name).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl ConsoleHost {
    /// Parses an IP address or a DNS name. Refused: wildcards, malformed
    /// names, the names node certificates use (`*.node.hallsync`), and
    /// addresses no browser can reach (unspecified, multicast).
    pub fn parse(s: &str) -> Result<ConsoleHost, PkiError> {
        let s = s.trim();
        let refused = |why: &str| {
            PkiError::Refused(format!(
                "console host {:?}: {why}",
                s.chars().take(80).collect::<String>()
            ))
        };
        if let Ok(ip) = s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(refused(
                    "not an address a browser reaches a console at; give the PC's own address",
                ));
            }
            return Ok(ConsoleHost::Ip(ip));
        }
        let name = s.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(refused(
                "not an IP address or a DNS name (letters, digits and '-' in dot-separated labels; no wildcards)",
            ));
        }
        if name == NODE_DNS_SUFFIX || name.ends_with(&format!(".{NODE_DNS_SUFFIX}")) {
            return Err(refused(
                "names under node.hallsync belong to node certificates",
            ));
        }
        Ok(ConsoleHost::Dns(name))
    }
}

impl std::fmt::Display for ConsoleHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleHost::Dns(n) => f.write_str(n),
            ConsoleHost::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A certificate's serial number as lower-case hex.
pub fn serial_of(der: &[u8]) -> Result<String, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(cert_err)?;
    Ok(hex(cert.raw_serial()))
}

/// [`serial_of`] for a certificate in PEM form.
pub fn serial_of_pem(pem: &str) -> Result<String, PkiError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(cert_err)?;
    serial_of(&p.contents)
}

/// The serial numbers (hex) a CRL (PEM) lists as revoked, after checking
/// it is a CRL.
pub fn revoked_serials(crl_pem: &str) -> Result<Vec<String>, PkiError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(crl_pem.as_bytes()).map_err(cert_err)?;
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).map_err(cert_err)?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| hex(r.raw_serial()))
        .collect())
}

/// A revocation list whose signature the federation CA's key made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCrl {
    /// Its CRL number: a later list has a higher one.
    pub number: u64,
    /// The list, DER.
    pub der: Vec<u8>,
}

/// Checks that `der` is a revocation list issued and signed by the CA whose
/// certificate is `ca_pem`.
pub fn check_crl(ca_pem: &str, der: &[u8]) -> Result<CheckedCrl, PkiError> {
    let refused = |why: String| PkiError::Refused(format!("revocation list: {why}"));
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).map_err(cert_err)?;
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_pem.contents).map_err(cert_err)?;
    let (rest, crl) =
        x509_parser::parse_x509_crl(der).map_err(|e| refused(format!("not a CRL: {e}")))?;
    if !rest.is_empty() {
        return Err(refused("trailing bytes after the list".into()));
    }
    if crl.issuer() != ca.subject() {
        return Err(refused(format!(
            "issued by {}, not by the federation CA",
            crl.issuer()
        )));
    }
    crl.verify_signature(ca.public_key())
        .map_err(|e| refused(format!("the signature is not the federation CA's: {e}")))?;
    let number = crl
        .crl_number()
        .ok_or_else(|| refused("it has no CRL number".into()))?;
    let number = match number.to_u64_digits().as_slice() {
        [] => 0,
        [n] => *n,
        _ => return Err(refused("its CRL number is out of range".into())),
    };
    Ok(CheckedCrl {
        number,
        der: der.to_vec(),
    })
}

/// [`check_crl`] for a list in PEM form (as in a bundle's `crl.pem`).
pub fn check_crl_pem(ca_pem: &str, crl_pem: &str) -> Result<CheckedCrl, PkiError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(crl_pem.as_bytes()).map_err(cert_err)?;
    check_crl(ca_pem, &pem.contents)
}

/// A DER revocation list in PEM form.
pub fn crl_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("X509 CRL", der.to_vec()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn odt(t: Ts) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(t.0).map_err(cert_err)
}

/// A certificate revoked by the CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// Serial number (hex).
    pub serial: String,
    /// The node it was issued to.
    pub node: String,
    /// When it was revoked (Unix seconds).
    pub at: i64,
}

/// What the CA remembers besides its key: the CRL number and the revoked
/// certificates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaState {
    /// Federation name, for the CA's subject.
    name: String,
    /// Number of the last CRL issued.
    crl_number: u64,
    /// Every certificate revoked so far.
    #[serde(default)]
    revoked: Vec<Revoked>,
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (keep it secret: mode 0600).
    pub key_pem: String,
    /// Serial number (hex).
    pub serial: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("serial", &self.serial)
            .field("key_pem", &"[secret key elided]")
            .finish_non_exhaustive()
    }
}

/// The federation CA, opened from its directory.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
    state: CaState,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("name", &self.state.name)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Creates a CA in `dir`: `ca.crt`, `ca.key` (mode 0600), an empty
    /// `crl.pem`, and `ca-state.toml`. Refuses if a CA is already there.
    pub fn init(dir: &Path, name: &str, now: Ts, days: i64) -> Result<Ca, PkiError> {
        if dir.join(CA_KEY).exists() || dir.join(CA_CERT).exists() {
            return Err(PkiError::CaExists(dir.to_path_buf()));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(PkiError::Refused(
                "the federation name must be 1-100 characters".into(),
            ));
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{name} hallsync CA"));
        dn.push(DnType::OrganizationName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = odt(now.plus(-3_600))?;
        params.not_after = odt(now.plus(days * 86_400))?;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(cert_err)?;
        let mut ca = Ca {
            dir: dir.to_path_buf(),
            cert_pem: cert.pem(),
            key,
            state: CaState {
                name: name.to_string(),
                crl_number: 0,
                revoked: Vec::new(),
            },
        };
        write_file(&dir.join(CA_KEY), ca.key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&dir.join(CA_CERT), ca.cert_pem.as_bytes(), 0o644)?;
        ca.publish_crl(now)?;
        Ok(ca)
    }

    /// Opens the CA in `dir`.
    pub fn open(dir: &Path) -> Result<Ca, PkiError> {
        let key_path = dir.join(CA_KEY);
        if !key_path.exists() {
            return Err(PkiError::NoCa(dir.to_path_buf()));
        }
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| PkiError::Invalid {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        let cert_pem = read(&dir.join(CA_CERT))?;
        let state_path = dir.join(CA_STATE);
        let state: CaState =
            toml::from_str(&read(&state_path)?).map_err(|e| PkiError::Invalid {
                path: state_path,
                reason: e.to_string(),
            })?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert_pem,
            key,
            state,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The federation's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The current CRL, PEM.
    pub fn crl_pem(&self) -> Result<String, PkiError> {
        read(&self.dir.join(CRL))
    }

    /// Certificates revoked so far.
    pub fn revoked(&self) -> &[Revoked] {
        &self.state.revoked
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(cert_err)
    }

    /// Issues a node certificate valid from `not_before` to `not_after`,
    /// for both TLS client and server use.
    pub fn issue(&self, who: &Identity, not_before: Ts, not_after: Ts) -> Result<Issued, PkiError> {
        who.region
            .check_level(who.level)
            .map_err(PkiError::Refused)?;
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, who.id.as_str());
        dn.push(DnType::OrganizationName, self.state.name.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = vec![
            SanType::DnsName(dns_name(&who.id).try_into().map_err(cert_err)?),
            SanType::URI(identity_uri(who).try_into().map_err(cert_err)?),
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = odt(not_before)?;
        params.not_after = odt(not_after)?;
        let serial = random_serial();
        let serial_hex = hex(serial.as_ref());
        params.serial_number = Some(serial);
        let cert = params.signed_by(&key, &self.issuer()?).map_err(cert_err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial_hex,
        })
    }

    /// Issues node `node`'s console certificate: a TLS server certificate
    /// for `hosts` (1 to [`CONSOLE_MAX_HOSTS`]), valid from `not_before` to
    /// `not_after` (at most [`CONSOLE_MAX_DAYS`] days). It is for server
    /// authentication only and names no node identity, so it cannot serve
    /// on a link.
    pub fn issue_console(
        &self,
        node: &NodeId,
        hosts: &[ConsoleHost],
        not_before: Ts,
        not_after: Ts,
    ) -> Result<Issued, PkiError> {
        if hosts.is_empty() || hosts.len() > CONSOLE_MAX_HOSTS {
            return Err(PkiError::Refused(format!(
                "a console certificate names 1 to {CONSOLE_MAX_HOSTS} hosts"
            )));
        }
        if not_after.0 <= not_before.0
            || not_after.0 - not_before.0 > CONSOLE_MAX_DAYS * 86_400 + 3_600
        {
            return Err(PkiError::Refused(format!(
                "a console certificate is valid for at most {CONSOLE_MAX_DAYS} days"
            )));
        }
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{node} console"));
        dn.push(DnType::OrganizationName, self.state.name.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = hosts
            .iter()
            .map(|h| match h {
                ConsoleHost::Dns(n) => n.clone().try_into().map(SanType::DnsName),
                ConsoleHost::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, _>>()
            .map_err(cert_err)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = odt(not_before)?;
        params.not_after = odt(not_after)?;
        let serial = random_serial();
        let serial_hex = hex(serial.as_ref());
        params.serial_number = Some(serial);
        let cert = params.signed_by(&key, &self.issuer()?).map_err(cert_err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial_hex,
        })
    }

    /// Revokes a certificate and publishes a new CRL. Revoking one twice
    /// is refused.
    pub fn revoke(&mut self, serial: &str, node: &str, now: Ts) -> Result<(), PkiError> {
        if unhex(serial).is_none() {
            return Err(PkiError::Refused(format!(
                "{serial:?} is not a serial number"
            )));
        }
        if self.state.revoked.iter().any(|r| r.serial == serial) {
            return Err(PkiError::Refused(format!(
                "certificate {serial} of {node} is already revoked"
            )));
        }
        self.state.revoked.push(Revoked {
            serial: serial.to_string(),
            node: node.to_string(),
            at: now.0,
        });
        self.publish_crl(now)
    }

    fn publish_crl(&mut self, now: Ts) -> Result<(), PkiError> {
        self.state.crl_number += 1;
        let revoked_certs = self
            .state
            .revoked
            .iter()
            .map(|r| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&unhex(&r.serial).ok_or_else(
                        || PkiError::Invalid {
                            path: self.dir.join(CA_STATE),
                            reason: format!("bad serial {:?}", r.serial),
                        },
                    )?),
                    revocation_time: odt(Ts(r.at))?,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: odt(now.plus(-60))?,
            next_update: odt(now.plus(365 * 86_400))?,
            crl_number: SerialNumber::from_slice(&self.state.crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?).map_err(cert_err)?;
        let state = toml::to_string_pretty(&self.state).map_err(cert_err)?;
        write_file(&self.dir.join(CA_STATE), state.as_bytes(), 0o644)?;
        write_file(
            &self.dir.join(CRL),
            crl.pem().map_err(cert_err)?.as_bytes(),
            0o644,
        )
    }
}

fn random_serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    // Positive, and never a leading zero byte.
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_the_identity_and_revocation_updates_the_crl() {
        let dir = tempfile::tempdir().unwrap();
        let now = Ts::parse("2026-11-23 10:00").unwrap();
        let mut ca = Ca::init(dir.path(), "样例市", now, 3650).unwrap();
        assert!(matches!(
            Ca::init(dir.path(), "x", now, 1),
            Err(PkiError::CaExists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(CA_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let who = Identity {
            id: NodeId::parse("tw-101").unwrap(),
            level: Level::Township,
            region: RegionCode::parse("140212101").unwrap(),
        };
        let issued = ca.issue(&who, now, now.plus(86_400)).unwrap();
        let der = pem_der(&issued.cert_pem);
        assert_eq!(identity_of(&der).unwrap(), who);
        assert_eq!(serial_of(&der).unwrap(), issued.serial);
        let crl_before = ca.crl_pem().unwrap();
        ca.revoke(&issued.serial, "tw-101", now).unwrap();
        assert!(ca.revoke(&issued.serial, "tw-101", now).is_err());
        let reopened = Ca::open(dir.path()).unwrap();
        assert_eq!(reopened.revoked().len(), 1);
        assert_ne!(reopened.crl_pem().unwrap(), crl_before);
        assert_eq!(
            revoked_serials(&reopened.crl_pem().unwrap()).unwrap(),
            vec![issued.serial.clone()]
        );
        assert!(revoked_serials(&crl_before).unwrap().is_empty());
        let wrong = Identity {
            level: Level::County,
            ..who
        };
        assert!(ca.issue(&wrong, now, now.plus(1)).is_err());
    }

    #[test]
    fn a_console_certificate_names_its_hosts_serves_only_and_is_no_node() {
        let dir = tempfile::tempdir().unwrap();
        let now = Ts::parse("2026-11-23 10:00").unwrap();
        let ca = Ca::init(dir.path(), "样例市", now, 3650).unwrap();
        let node = NodeId::parse("tw-101").unwrap();
        let hosts = ["Hall-TW101.example.", "192.168.1.20", "[::1]"]
            .map(|h| ConsoleHost::parse(h).unwrap());
        assert_eq!(hosts[0], ConsoleHost::Dns("hall-tw101.example".into()));
        let issued = ca
            .issue_console(&node, &hosts, now, now.plus(CONSOLE_MAX_DAYS * 86_400))
            .unwrap();
        let der = pem_der(&issued.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[0].contains("hall-tw101.example"), "{names:?}");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert!(identity_of(&der).is_err(), "no node identity");
        // Too long, no hosts, hosts a console cannot have.
        let long = ca.issue_console(
            &node,
            &hosts,
            now,
            now.plus((CONSOLE_MAX_DAYS + 1) * 86_400),
        );
        assert!(long.unwrap_err().to_string().contains("at most"));
        assert!(ca.issue_console(&node, &[], now, now.plus(86_400)).is_err());
        for bad in [
            "tw-101.node.hallsync",
            "*.example",
            "0.0.0.0",
            "a..b",
            "-x.example",
            "",
            "ex ample",
        ] {
            assert!(ConsoleHost::parse(bad).is_err(), "{bad}");
        }
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        p.contents
    }

    #[test]
    fn only_the_federation_cas_lists_pass_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = Ca::init(&dir.path().join("a"), "A", Ts(1_700_000_000), 365).unwrap();
        let first = check_crl_pem(ca.cert_pem(), &ca.crl_pem().unwrap()).unwrap();
        ca.revoke("0a0b", "tw-1", Ts(1_700_000_100)).unwrap();
        let second = check_crl_pem(ca.cert_pem(), &ca.crl_pem().unwrap()).unwrap();
        assert!(second.number > first.number);
        assert_eq!(
            revoked_serials(&crl_to_pem(&second.der)).unwrap(),
            vec!["0a0b".to_string()]
        );
        // Another CA, under another name or the same one: the issuer, then
        // the signature, gives it away.
        for (sub, name, why) in [
            ("b", "B", "not by the federation CA"),
            ("c", "A", "signature"),
        ] {
            let other = Ca::init(&dir.path().join(sub), name, Ts(1_700_000_000), 365).unwrap();
            let err = check_crl(other.cert_pem(), &second.der).unwrap_err();
            assert!(err.to_string().contains(why), "{name}: {err}");
        }
        let mut forged = second.der.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(check_crl(ca.cert_pem(), &forged).is_err());
        assert!(check_crl(ca.cert_pem(), b"not a list").is_err());
    }
}
