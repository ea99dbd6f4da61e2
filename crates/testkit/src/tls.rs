//! Throw-away TLS material for the harnesses that serve TLS (the slapd of [`crate::ldap`],
//! the SMTP listener of [`crate::smtp`]): a self-signed test CA and server certificates it
//! issues, made in-process with rcgen.
//!
//! All keys are EC P-256, written as unencrypted PKCS#8 PEM (`PRIVATE KEY`), which
//! slapd (GnuTLS) and Python's `ssl` module both load. Certificates are valid from
//! 2000-01-01 to 2100-01-01. The CA has basicConstraints `CA:TRUE` (critical), key usage
//! keyCertSign/cRLSign/digitalSignature and a subject key identifier; a server
//! certificate has `CA:FALSE`, key usage digitalSignature, extended key usage serverAuth,
//! subject and authority key identifiers and one subject alternative name per name (an
//! IP address SAN when the name parses as one, else a DNS name): what strict verifiers
//! ask for (OpenSSL's `X509_V_FLAG_X509_STRICT`, the default of Python 3.13's
//! `ssl.create_default_context`).

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A self-signed test CA that issues server certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
}

/// A server certificate (the leaf only, as most servers send) and its private key.
#[derive(Clone, Debug)]
pub struct ServerCert {
    pub cert_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: String,
}

/// What [`write_server_files`] wrote.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// `DIR/ca.pem`: the test CA's certificate (its key is not written anywhere).
    pub ca_path: PathBuf,
    /// `DIR/server.pem`: the server certificate.
    pub cert_path: PathBuf,
    /// `DIR/server.key`: its key (PKCS#8 PEM).
    pub key_path: PathBuf,
    /// The content of `ca.pem`.
    pub ca_pem: String,
}

impl TestCa {
    /// A new CA with subject `CN=<common_name>` and a fresh key.
    pub fn new(common_name: &str) -> Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let issuer =
            CertifiedIssuer::self_signed(params, new_key()?).context("self-signing the test CA")?;
        let ca_pem = issuer.pem();
        Ok(Self { issuer, ca_pem })
    }

    /// The CA certificate (PEM), what clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server certificate with a fresh key for `names` (at least one): each is a
    /// subject alternative name, an IP address SAN when it parses as [`IpAddr`], else a
    /// DNS name. The subject is `CN=<first name>`.
    pub fn issue(&self, names: &[&str]) -> Result<ServerCert> {
        let Some(first) = names.first() else {
            bail!("a server certificate needs at least one name");
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(first);
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*name).try_into().with_context(|| {
                    format!("{name:?} is neither an IP address nor a DNS name")
                })?)),
            })
            .collect::<Result<_>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params);
        let key = new_key()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("issuing the server certificate for {names:?}"))?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Makes a test CA `CN=<ca_name>`, issues a server certificate for `names` (see
/// [`TestCa::issue`]) and writes `ca.pem`, `server.pem` and `server.key` into `dir`.
pub fn write_server_files(dir: &Path, ca_name: &str, names: &[&str]) -> Result<TlsFiles> {
    let ca = TestCa::new(ca_name)?;
    let server = ca.issue(names)?;
    let files = TlsFiles {
        ca_path: dir.join("ca.pem"),
        cert_path: dir.join("server.pem"),
        key_path: dir.join("server.key"),
        ca_pem: ca.ca_pem().to_owned(),
    };
    for (path, content) in [
        (&files.ca_path, &files.ca_pem),
        (&files.cert_path, &server.cert_pem),
        (&files.key_path, &server.key_pem),
    ] {
        std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files)
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating a P-256 key")
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_pem_certificates_and_pkcs8_keys() {
        let ca = TestCa::new("Portcullis testkit unit-test CA").unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        let server = ca.issue(&["localhost", "127.0.0.1", "::1"]).unwrap();
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(server.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_ne!(server.cert_pem, ca.ca_pem());
        // Every certificate gets its own key.
        assert_ne!(ca.issue(&["localhost"]).unwrap().key_pem, server.key_pem);
    }

    #[test]
    fn names_are_checked() {
        let ca = TestCa::new("Portcullis testkit unit-test CA").unwrap();
        let e = ca.issue(&[]).unwrap_err().to_string();
        assert!(e.contains("at least one name"), "{e}");
        let e = ca.issue(&["bad\u{e9}name"]).unwrap_err().to_string();
        assert!(e.contains("neither an IP address nor a DNS name"), "{e}");
    }

    #[test]
    fn writes_the_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let files =
            write_server_files(dir.path(), "Portcullis testkit CA", &["localhost"]).unwrap();
        assert_eq!(files.ca_path, dir.path().join("ca.pem"));
        assert_eq!(
            std::fs::read_to_string(&files.ca_path).unwrap(),
            files.ca_pem
        );
        let cert = std::fs::read_to_string(&files.cert_path).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let key = std::fs::read_to_string(&files.key_path).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    }
}
