//! The token signing key: an EC P-256 (ES256) or RSA (RS256) private key plus the certificate
//! chain that operators put into the registry's `auth.token.rootcertbundle`.
//!
//! Accepted key encodings: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and PKCS#1
//! (`RSA PRIVATE KEY`, what Portus used). Internally the key is kept in the DER form
//! aws-lc-rs signs with: PKCS#8 for EC, PKCS#1 for RSA.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UintRef};
use x509_cert::der::{Decode, Encode, Reader, SliceReader, Tag};
use x509_cert::spki::AlgorithmIdentifierRef;

// Defined in the pure domain crate so that the config crate parses them without
// depending on this one; re-exported here, where they are used.
pub use portcullis_domain::signing::{Algorithm, KidFormat};

/// The config setting names used to point at the files (for error messages).
const KEY_SETTING: &str = "token.key_path";
const CERT_SETTING: &str = "token.cert_path";

/// id-ecPublicKey (RFC 5480).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / prime256v1 (RFC 5480).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Validity of generated certificates, like `openssl req -x509 -days 3650`.
const GENERATED_CERT_DAYS: i64 = 3650;

fn key_description(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Es256 => "an EC P-256 key (ES256)",
        Algorithm::Rs256 => "an RSA key (RS256)",
    }
}

/// Everything that can go wrong with key material. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key")]
    NotPemKey,
    #[error("unsupported private key (need an EC P-256 or RSA key): {0}")]
    UnsupportedKey(String),
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("invalid certificate: {0}")]
    InvalidCert(String),
    #[error("the certificate's public key does not match the private key")]
    CertKeyMismatch,
    #[error("algorithm {requested} was requested but the private key is {}", key_description(*.key))]
    AlgorithmMismatch {
        requested: Algorithm,
        key: Algorithm,
    },
    #[error("{setting} {} exists but {missing_setting} {} does not (provide both files, or neither to generate them)", .path.display(), .missing.display())]
    OneFileMissing {
        setting: &'static str,
        path: PathBuf,
        missing_setting: &'static str,
        missing: PathBuf,
    },
    #[error("{} {}: {source}", .setting, .path.display())]
    Io {
        setting: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A key/cert problem, located in the file of the given setting.
    #[error("{} {}: {source}", .setting, .path.display())]
    File {
        setting: &'static str,
        path: PathBuf,
        source: Box<KeyError>,
    },
    #[error("generating a signing key failed: {0}")]
    Generate(String),
    #[error("signing a token failed: {0}")]
    Sign(String),
}

impl KeyError {
    /// Whether the problem is best reported against the certificate file.
    fn concerns_cert(&self) -> bool {
        matches!(
            self,
            Self::NoCertificate | Self::InvalidCert(_) | Self::CertKeyMismatch
        )
    }
}

/// The public half, as needed for RFC 7638 thumbprints.
#[derive(Clone)]
enum PublicKey {
    /// Affine coordinates, 32 bytes each.
    Ec { x: Vec<u8>, y: Vec<u8> },
    /// Big-endian, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// A private key plus its certificate chain (leaf first).
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    /// PKCS#8 DER for EC, PKCS#1 DER for RSA (what aws-lc-rs's key pairs parse).
    signing_der: Vec<u8>,
    /// DER certificates, leaf first.
    chain: Vec<Vec<u8>>,
    /// DER SubjectPublicKeyInfo of the leaf certificate.
    spki_der: Vec<u8>,
    public: PublicKey,
    not_after_unix: i64,
}

/// Never print key material.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid(KidFormat::Libtrust))
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key (P-256 for ES256, RSA 2048 for RS256) and a self-signed certificate
    /// (CN = `common_name`, valid for 10 years from `not_before_unix`).
    /// Returns (key PEM in PKCS#8, certificate PEM).
    pub fn generate_pem(
        alg: Algorithm,
        common_name: &str,
        not_before_unix: i64,
    ) -> Result<(String, String), KeyError> {
        let gen_err = |e: rcgen::Error| KeyError::Generate(e.to_string());
        let rcgen_alg = match alg {
            Algorithm::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::Rs256 => &rcgen::PKCS_RSA_SHA256,
        };
        let key_pair = rcgen::KeyPair::generate_for(rcgen_alg).map_err(gen_err)?;

        let not_before = time::OffsetDateTime::from_unix_timestamp(not_before_unix)
            .map_err(|e| KeyError::Generate(format!("bad start time {not_before_unix}: {e}")))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.not_before = not_before;
        params.not_after = not_before + time::Duration::days(GENERATED_CERT_DAYS);
        let cert = params.self_signed(&key_pair).map_err(gen_err)?;
        Ok((key_pair.serialize_pem(), cert.pem()))
    }

    /// Parses a private key PEM and a certificate PEM (one or more certificates, leaf first).
    ///
    /// The algorithm follows the key type; a `requested` algorithm that disagrees is an error,
    /// and so is a leaf certificate whose public key is not the private key's.
    pub fn from_pem(
        key_pem: &str,
        cert_pem: &str,
        requested: Option<Algorithm>,
    ) -> Result<Self, KeyError> {
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => KeyError::NotPemKey,
            other => KeyError::InvalidKey(other.to_string()),
        })?;

        // rcgen (aws-lc) validates the key and tells us its type and public key.
        let key_pair = rcgen::KeyPair::try_from(&key)
            .map_err(|_| KeyError::InvalidKey("cannot parse the key".into()))?;
        let alg = if key_pair.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Algorithm::Es256
        } else if key_pair.algorithm() == &rcgen::PKCS_RSA_SHA256 {
            Algorithm::Rs256
        } else {
            return Err(KeyError::UnsupportedKey(format!(
                "{:?}",
                key_pair.algorithm()
            )));
        };
        if let Some(requested) = requested
            && requested != alg
        {
            return Err(KeyError::AlgorithmMismatch {
                requested,
                key: alg,
            });
        }

        let der_err = |e: x509_cert::der::Error| KeyError::InvalidKey(e.to_string());
        let signing_der = match (&key, alg) {
            (PrivateKeyDer::Pkcs8(k), Algorithm::Es256) => k.secret_pkcs8_der().to_vec(),
            (PrivateKeyDer::Sec1(k), Algorithm::Es256) => {
                sec1_to_pkcs8(k.secret_sec1_der()).map_err(der_err)?
            }
            (PrivateKeyDer::Pkcs1(k), Algorithm::Rs256) => k.secret_pkcs1_der().to_vec(),
            (PrivateKeyDer::Pkcs8(k), Algorithm::Rs256) => {
                pkcs8_private_key(k.secret_pkcs8_der()).map_err(der_err)?
            }
            _ => return Err(KeyError::UnsupportedKey("unexpected key encoding".into())),
        };

        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| KeyError::InvalidCert(e.to_string()))?;
        let leaf_der = chain.first().ok_or(KeyError::NoCertificate)?;
        let cert_err = |e: x509_cert::der::Error| KeyError::InvalidCert(e.to_string());
        let leaf = Certificate::from_der(leaf_der).map_err(cert_err)?;
        // Also reject unparsable intermediates now rather than at the registry.
        for der in &chain[1..] {
            Certificate::from_der(der).map_err(cert_err)?;
        }

        let spki = &leaf.tbs_certificate.subject_public_key_info;
        let raw_public = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::InvalidCert("malformed public key".into()))?;
        // Same key type and same bytes: an EC point (04||X||Y) or a DER RSAPublicKey.
        if raw_public != key_pair.public_key_raw() {
            return Err(KeyError::CertKeyMismatch);
        }
        let public = match alg {
            Algorithm::Es256 => match raw_public {
                [4, xy @ ..] if xy.len() == 64 => PublicKey::Ec {
                    x: xy[..32].to_vec(),
                    y: xy[32..].to_vec(),
                },
                _ => return Err(KeyError::InvalidCert("malformed EC public key".into())),
            },
            Algorithm::Rs256 => rsa_public_components(raw_public).map_err(cert_err)?,
        };
        let spki_der = spki.to_der().map_err(cert_err)?;
        let not_after_unix = leaf
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs();

        Ok(Self {
            alg,
            signing_der,
            chain,
            spki_der,
            public,
            not_after_unix: i64::try_from(not_after_unix).unwrap_or(i64::MAX),
        })
    }

    /// Loads the key and certificate files. If both are absent, generates a pair with
    /// [`generate_pem`](Self::generate_pem) (`requested`, default ES256), writes them (key file
    /// mode 0600, parent directories created) and returns `(key, true)`.
    /// Exactly one of the files missing is an error (we won't overwrite half a pair).
    pub fn load_or_generate(
        key_path: &Path,
        cert_path: &Path,
        requested: Option<Algorithm>,
        common_name: &str,
        now_unix: i64,
    ) -> Result<(Self, bool), KeyError> {
        if exists(KEY_SETTING, key_path)? && exists(CERT_SETTING, cert_path)? {
            return Self::load_pair(key_path, cert_path, requested);
        }
        // Missing (or half there while another process writes them): generate under
        // the folder's lock, so nodes starting at once on one empty shared data folder
        // end up with one key; whoever comes second reads the first one's.
        let folder = key_path.parent().filter(|p| !p.as_os_str().is_empty());
        let folder = folder.unwrap_or(Path::new("."));
        let lock_err = |source| KeyError::Io {
            setting: KEY_SETTING,
            path: key_path.to_path_buf(),
            source,
        };
        fs::create_dir_all(folder).map_err(lock_err)?;
        let _lock = lock_folder(folder).map_err(lock_err)?;
        let key_exists = exists(KEY_SETTING, key_path)?;
        let cert_exists = exists(CERT_SETTING, cert_path)?;
        match (key_exists, cert_exists) {
            (true, true) => Self::load_pair(key_path, cert_path, requested),
            (false, false) => {
                let alg = requested.unwrap_or(Algorithm::Es256);
                let (key_pem, cert_pem) = Self::generate_pem(alg, common_name, now_unix)?;
                write_file(KEY_SETTING, key_path, &key_pem, true)?;
                write_file(CERT_SETTING, cert_path, &cert_pem, false)?;
                Ok((Self::from_pem(&key_pem, &cert_pem, Some(alg))?, true))
            }
            (true, false) => Err(KeyError::OneFileMissing {
                setting: KEY_SETTING,
                path: key_path.to_path_buf(),
                missing_setting: CERT_SETTING,
                missing: cert_path.to_path_buf(),
            }),
            (false, true) => Err(KeyError::OneFileMissing {
                setting: CERT_SETTING,
                path: cert_path.to_path_buf(),
                missing_setting: KEY_SETTING,
                missing: key_path.to_path_buf(),
            }),
        }
    }

    /// The key and certificate in the two files (not generated now).
    fn load_pair(
        key_path: &Path,
        cert_path: &Path,
        requested: Option<Algorithm>,
    ) -> Result<(Self, bool), KeyError> {
        let key_pem = read(KEY_SETTING, key_path)?;
        let cert_pem = read(CERT_SETTING, cert_path)?;
        let key = Self::from_pem(&key_pem, &cert_pem, requested).map_err(|e| {
            let (setting, path) = if e.concerns_cert() {
                (CERT_SETTING, cert_path)
            } else {
                (KEY_SETTING, key_path)
            };
            KeyError::File {
                setting,
                path: path.to_path_buf(),
                source: Box::new(e),
            }
        })?;
        Ok((key, false))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID in the given format.
    ///
    /// - libtrust: SHA-256 over the DER SubjectPublicKeyInfo, first 30 bytes, base32 (RFC 4648,
    ///   upper case, no padding), 12 groups of 4 joined by `:`.
    /// - rfc7638: base64url (no padding) of SHA-256 over the canonical JWK JSON
    ///   (`{"crv","kty","x","y"}` with 32-byte coordinates, or `{"e","kty","n"}`).
    pub fn kid(&self, format: KidFormat) -> String {
        match format {
            KidFormat::Libtrust => {
                let digest = Sha256::digest(&self.spki_der);
                let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
                let groups: Vec<&str> = (0..b32.len()).step_by(4).map(|i| &b32[i..i + 4]).collect();
                groups.join(":")
            }
            KidFormat::Rfc7638 => {
                let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
                // Members in lexicographic order, no whitespace (RFC 7638 §3.2). The values are
                // base64url, so no JSON escaping can be needed.
                let canonical = match &self.public {
                    PublicKey::Ec { x, y } => format!(
                        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                        b64(x),
                        b64(y)
                    ),
                    PublicKey::Rsa { n, e } => {
                        format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
                    }
                };
                b64(&Sha256::digest(canonical.as_bytes()))
            }
        }
    }

    /// The certificate chain as PEM: what operators put in `auth.token.rootcertbundle`.
    pub fn cert_pem(&self) -> String {
        let mut out = String::new();
        for der in &self.chain {
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            let b64 = STANDARD.encode(der);
            for line in b64.as_bytes().chunks(64) {
                // base64 output is ASCII, so every chunk is valid UTF-8.
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out
    }

    /// When the leaf certificate expires (unix seconds).
    pub fn cert_not_after_unix(&self) -> i64 {
        self.not_after_unix
    }

    /// The DER certificates, leaf first.
    pub fn cert_chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// DER private key in the form aws-lc-rs parses (PKCS#8 for EC, PKCS#1 for RSA).
    pub(crate) fn signing_der(&self) -> &[u8] {
        &self.signing_der
    }
}

/// Wraps a SEC1 `ECPrivateKey` (P-256) into a PKCS#8 `PrivateKeyInfo` (RFC 5208 / 5915).
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, x509_cert::der::Error> {
    let alg = AlgorithmIdentifierRef {
        oid: ID_EC_PUBLIC_KEY,
        parameters: Some(AnyRef::from(&SECP256R1)),
    };
    let mut body = 0u8.to_der()?; // version 0
    alg.encode_to_vec(&mut body)?;
    OctetStringRef::new(sec1)?.encode_to_vec(&mut body)?;
    AnyRef::new(Tag::Sequence, &body)?.to_der()
}

/// The `privateKey` OCTET STRING contents of a PKCS#8 `PrivateKeyInfo` (for RSA: PKCS#1 DER).
fn pkcs8_private_key(pkcs8: &[u8]) -> Result<Vec<u8>, x509_cert::der::Error> {
    let mut reader = SliceReader::new(pkcs8)?;
    reader.sequence(|r| {
        let _version = u8::decode(r)?;
        let _alg = AlgorithmIdentifierRef::decode(r)?;
        let key = OctetStringRef::decode(r)?.as_bytes().to_vec();
        // Optional attributes / public key (PKCS#8 v2) are not needed.
        r.read_slice(r.remaining_len())?;
        Ok(key)
    })
}

/// `n` and `e` of a DER `RSAPublicKey` (RFC 8017), without leading zero bytes.
fn rsa_public_components(der: &[u8]) -> Result<PublicKey, x509_cert::der::Error> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|r| {
        let n = UintRef::decode(r)?.as_bytes().to_vec();
        let e = UintRef::decode(r)?.as_bytes().to_vec();
        Ok(PublicKey::Rsa { n, e })
    })
}

fn exists(setting: &'static str, path: &Path) -> Result<bool, KeyError> {
    path.try_exists().map_err(|source| KeyError::Io {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

fn read(setting: &'static str, path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Io {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

/// An exclusive lock (`flock`) on `folder`, released when the returned handle drops:
/// processes that generate files into one data folder take turns. Blocks while
/// another process holds it.
pub fn lock_folder(folder: &Path) -> io::Result<fs::File> {
    let handle = fs::File::open(folder)?;
    handle.lock()?;
    Ok(handle)
}

/// Writes a new file so that it appears complete or not at all: written under a
/// temporary name in the same folder, synced, then linked into place (never
/// overwriting: an existing `path` is an error). `private` files get mode 0600 from
/// the start. Readers that do not take [`lock_folder`] never see half a file.
pub fn create_complete_file(path: &Path, contents: &[u8], private: bool) -> io::Result<()> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let folder = folder.unwrap_or(Path::new("."));
    fs::create_dir_all(folder)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temp, path));
    // The temporary name has served its purpose either way.
    let _ = fs::remove_file(&temp);
    linked?;
    // The new directory entry durable, so a crash right after cannot lose the file.
    fs::File::open(folder).and_then(|d| d.sync_all())
}

fn write_file(
    setting: &'static str,
    path: &Path,
    contents: &str,
    private: bool,
) -> Result<(), KeyError> {
    create_complete_file(path, contents.as_bytes(), private).map_err(|source| KeyError::Io {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
