//! Encryption at rest for webhook passwords and signing secrets.
//!
//! Portus stored webhook passwords in plaintext and returned them through
//! its API (reference §17 item 7). We keep them AES-256-GCM sealed under a
//! key that lives in a file beside the configuration, never in the database,
//! so a database dump or backup alone does not reveal them.
//!
//! Sealed values look like `v1:<base64url(nonce || ciphertext || tag)>`. The
//! version prefix leaves room for key rotation or another algorithm. Every
//! call takes associated data naming the row and column (for example
//! `webhook:42:password`), which is authenticated but not stored: a sealed
//! value copied into another row or column fails to open instead of
//! silently becoming that row's secret.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// Length in bytes of the key (AES-256).
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const PREFIX: &str = "v1:";

/// Why a key file could not be used or a stored secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot {action} key file {}: {source}", path.display())]
    KeyFile {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "key file {} holds {len} bytes, expected exactly {KEY_LEN} (a raw 256-bit key); \
         refusing to use it",
        path.display()
    )]
    KeyFileSize { path: PathBuf, len: u64 },
    #[error("a stored secret is not in the sealed format (expected \"v1:\" followed by base64url)")]
    Malformed,
    /// Deliberately one message for wrong key, wrong associated data and
    /// tampering: AES-GCM cannot tell them apart, and the likely operator
    /// mistake is a replaced key file.
    #[error("cannot decrypt a stored secret (was the key file replaced?)")]
    Decrypt,
    #[error("cannot encrypt a secret")]
    Encrypt,
}

/// Seals and opens secrets with one 256-bit key.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for Sealer {
    // The key must never reach logs through a derived Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer { key: [redacted] }")
    }
}

/// Fills `buf` from the operating system's CSPRNG (via `rand`'s thread
/// generator, which is reseeded from the OS). The randomness to pass to
/// [`Sealer::seal`] outside tests.
pub fn system_random(buf: &mut [u8]) {
    rand::rng().fill_bytes(buf);
}

impl Sealer {
    /// A sealer with a fixed key, for tests and for callers that manage the
    /// key themselves.
    #[must_use]
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        Self { key }
    }

    /// Loads the key from `path`, creating the file with a fresh random key
    /// (mode 0600) when it does not exist.
    ///
    /// Creation is atomic and never replaces an existing file: the key is
    /// written and synced to a temporary file in the same directory, then
    /// hard-linked into place. Unlike `rename`, `link` fails when the target
    /// exists, so two processes starting at once cannot each create a key
    /// and have one silently overwrite the other (which would make secrets
    /// sealed by the loser unreadable). The loser reads the winner's key.
    ///
    /// A file of any size other than 32 bytes is refused rather than
    /// truncated or hashed, because a wrong file (a PEM key, an empty file
    /// from a failed deploy) would otherwise make every stored secret
    /// unreadable with a confusing decryption error.
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<Self, SealError> {
        let path = path.as_ref();
        match read_key(path) {
            Ok(key) => Ok(Self { key }),
            Err(SealError::KeyFile { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                create_key_file(path).map(|key| Self { key })
            }
            Err(e) => Err(e),
        }
    }

    fn key(&self) -> Result<LessSafeKey, SealError> {
        // Only fails for a key of the wrong length, which the type rules out.
        UnboundKey::new(&AES_256_GCM, &self.key)
            .map(LessSafeKey::new)
            .map_err(|_| SealError::Encrypt)
    }

    /// Encrypts `plaintext`, binding it to `aad` (for example
    /// `webhook:42:password`). `random` fills the 96-bit nonce; pass
    /// [`system_random`] in production. A deterministic function is for
    /// tests only: reusing a nonce under one key breaks AES-GCM.
    ///
    /// Fails only if the underlying crypto library does (plaintext beyond
    /// the GCM limit of about 64 GiB).
    pub fn seal(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        random: impl FnOnce(&mut [u8]),
    ) -> Result<String, SealError> {
        let key = self.key()?;
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce);
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| SealError::Encrypt)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + in_out.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&in_out);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Decrypts a value produced by [`Sealer::seal`] with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let raw = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext_len = self
            .key()?
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| SealError::Decrypt)?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }
}

fn key_file_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> SealError {
    let path = path.to_path_buf();
    move |source| SealError::KeyFile {
        path,
        action,
        source,
    }
}

fn read_key(path: &Path) -> Result<[u8; KEY_LEN], SealError> {
    let bytes = fs::read(path).map_err(key_file_error(path, "read"))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| SealError::KeyFileSize {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        })
}

fn create_key_file(path: &Path) -> Result<[u8; KEY_LEN], SealError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_owned());
    let mut suffix = [0u8; 8];
    system_random(&mut suffix);
    let temp = dir.join(format!(".{file_name}.tmp-{}", hex::encode(suffix)));

    let mut key = [0u8; KEY_LEN];
    system_random(&mut key);

    let written = write_new_file(&temp, &key).map_err(key_file_error(path, "create"));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    let linked = fs::hard_link(&temp, path);
    // The temporary name has served its purpose either way; a failure to
    // remove it leaves only a stray file, not a wrong key.
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            // Make the new directory entry durable so a crash right after
            // start-up cannot lose the key that secrets are now sealed with.
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(key_file_error(path, "sync the directory of"))?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(key_file_error(path, "create")(e)),
    }
}

fn write_new_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation, not chmod afterwards, so the key is never
        // readable by others even for a moment.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(seed: u8) -> impl FnOnce(&mut [u8]) {
        move |buf: &mut [u8]| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = seed.wrapping_add(i as u8);
            }
        }
    }

    const AAD: &[u8] = b"webhook:42:password";

    #[test]
    fn round_trip() {
        let sealer = Sealer::from_bytes([7; 32]);
        for plaintext in [&b""[..], b"hunter2", &[0u8; 1000][..]] {
            let sealed = sealer.seal(plaintext, AAD, counter(1)).unwrap();
            assert!(sealed.starts_with("v1:"), "{sealed}");
            assert_eq!(sealer.open(&sealed, AAD).unwrap(), plaintext);
        }
    }

    #[test]
    fn deterministic_with_fixed_randomness_and_nonce_changes_output() {
        let sealer = Sealer::from_bytes([7; 32]);
        let a = sealer.seal(b"hunter2", AAD, counter(1)).unwrap();
        let b = sealer.seal(b"hunter2", AAD, counter(1)).unwrap();
        let c = sealer.seal(b"hunter2", AAD, counter(2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // 12-byte nonce + 7-byte plaintext + 16-byte tag = 35 bytes.
        let raw = URL_SAFE_NO_PAD.decode(&a[3..]).unwrap();
        assert_eq!(raw.len(), 35);
        assert_eq!(&raw[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        // The plaintext does not appear in the output.
        assert!(!raw.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn system_random_differs() {
        let sealer = Sealer::from_bytes([7; 32]);
        let a = sealer.seal(b"x", AAD, system_random).unwrap();
        let b = sealer.seal(b"x", AAD, system_random).unwrap();
        assert_ne!(a, b);
        assert_eq!(sealer.open(&a, AAD).unwrap(), b"x");
    }

    #[test]
    fn tampering_is_detected() {
        let sealer = Sealer::from_bytes([7; 32]);
        let sealed = sealer.seal(b"hunter2", AAD, counter(1)).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in 0..raw.len() {
            let mut flipped = raw.clone();
            flipped[i] ^= 0x01;
            let tampered = format!("v1:{}", URL_SAFE_NO_PAD.encode(&flipped));
            let err = sealer.open(&tampered, AAD).unwrap_err();
            assert!(matches!(err, SealError::Decrypt), "byte {i}: {err}");
        }
        // Truncated to below nonce + tag.
        let short = format!("v1:{}", URL_SAFE_NO_PAD.encode(&raw[..27]));
        assert!(matches!(
            sealer.open(&short, AAD),
            Err(SealError::Malformed)
        ));
        // Dropping one ciphertext byte still has room for a tag but fails.
        let cut = format!("v1:{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        assert!(matches!(sealer.open(&cut, AAD), Err(SealError::Decrypt)));
    }

    #[test]
    fn malformed_inputs() {
        let sealer = Sealer::from_bytes([7; 32]);
        for bad in [
            "",
            "hunter2",
            "v2:AAAA",
            "v1:",
            "v1:!!!not base64",
            "V1:AAAA",
        ] {
            assert!(
                matches!(sealer.open(bad, AAD), Err(SealError::Malformed)),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_key() {
        let sealed = Sealer::from_bytes([7; 32])
            .seal(b"hunter2", AAD, counter(1))
            .unwrap();
        let err = Sealer::from_bytes([8; 32]).open(&sealed, AAD).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decrypt a stored secret (was the key file replaced?)"
        );
    }

    #[test]
    fn wrong_associated_data() {
        let sealer = Sealer::from_bytes([7; 32]);
        let sealed = sealer.seal(b"hunter2", AAD, counter(1)).unwrap();
        for other in [
            &b"webhook:43:password"[..],
            b"webhook:42:secret",
            b"",
            b"webhook:42:password ",
        ] {
            assert!(matches!(
                sealer.open(&sealed, other),
                Err(SealError::Decrypt)
            ));
        }
    }

    #[test]
    fn debug_hides_key() {
        let debug = format!("{:?}", Sealer::from_bytes([0xAB; 32]));
        assert!(!debug.contains("171"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn key_file_is_created_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhooks.key");
        let first = Sealer::from_key_file(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_ne!(bytes, [0u8; 32]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        // No temporary files are left behind.
        let entries: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("webhooks.key")]);

        // A second load reads the same key rather than replacing it.
        let sealed = first.seal(b"hunter2", AAD, system_random).unwrap();
        let second = Sealer::from_key_file(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(second.open(&sealed, AAD).unwrap(), b"hunter2");
    }

    #[test]
    fn existing_key_file_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, [9u8; 32]).unwrap();
        let sealed = Sealer::from_bytes([9; 32])
            .seal(b"s", AAD, counter(3))
            .unwrap();
        assert_eq!(
            Sealer::from_key_file(&path)
                .unwrap()
                .open(&sealed, AAD)
                .unwrap(),
            b"s"
        );
    }

    #[test]
    fn wrong_size_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 31, 33, 64] {
            let path = dir.path().join(format!("key-{len}"));
            fs::write(&path, vec![1u8; len]).unwrap();
            let err = Sealer::from_key_file(&path).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, SealError::KeyFileSize { .. }), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(&format!("holds {len} bytes")), "{message}");
            assert_eq!(fs::read(&path).unwrap().len(), len);
        }
    }

    #[test]
    fn missing_directory_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("k");
        let message = Sealer::from_key_file(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.starts_with("cannot create key file"), "{message}");
    }
}
