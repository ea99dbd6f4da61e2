//! Extra certificate authorities for TLS to registries (`registry.certificates_dir`):
//! every `*.crt` in a folder, PEM, trusted besides the system roots, as Portus's image
//! imported `/certificates/*.crt` into the system store.

use std::path::Path;
use std::sync::Arc;

/// Certificates trusted for outbound TLS in addition to the system roots. Cheap to
/// clone; empty by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoots {
    certificates: Arc<Vec<reqwest::Certificate>>,
    /// The files they came from, for the start-up log.
    pub files: Arc<Vec<String>>,
}

impl TrustedRoots {
    /// Every `*.crt` file in `dir` (sorted by name). A folder that does not exist is
    /// empty (the image names one whether or not it is mounted); a file that is not
    /// PEM certificates is an error naming it.
    pub fn load_dir(dir: &Path) -> Result<Self, String> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("certificates folder {}: {e}", dir.display())),
        };
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt") && p.is_file())
            .collect();
        paths.sort();
        let mut certificates = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let found = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| format!("{}: not a PEM certificate", path.display()))?;
            certificates.extend(found);
            files.push(path.display().to_string());
        }
        Ok(Self {
            certificates: Arc::new(certificates),
            files: Arc::new(files),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// `builder` trusting these roots too.
    pub(crate) fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if self.certificates.is_empty() {
            return builder;
        }
        builder.tls_certs_merge(self.certificates.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_crt_files_and_names_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert) = crate::keys::SigningKey::generate_pem(
            crate::keys::Algorithm::Es256,
            "ca.test",
            1_700_000_000,
        )
        .unwrap();
        std::fs::write(dir.path().join("a.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();
        let roots = TrustedRoots::load_dir(dir.path()).unwrap();
        assert_eq!(roots.certificates.len(), 1);
        assert_eq!(roots.files.len(), 1);
        assert!(roots.files[0].ends_with("a.crt"));

        std::fs::write(dir.path().join("b.crt"), "garbage").unwrap();
        let err = TrustedRoots::load_dir(dir.path()).unwrap_err();
        assert!(err.ends_with("b.crt: not a PEM certificate"), "{err}");

        let missing = TrustedRoots::load_dir(&dir.path().join("none")).unwrap();
        assert!(missing.is_empty());
    }
}
