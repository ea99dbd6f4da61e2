//! `skopeo`, the real OCI client of the end-to-end tests, isolated from the machine's
//! configuration: a private `HOME`, `REGISTRY_AUTH_FILE`, `CONTAINERS_REGISTRIES_CONF`,
//! trust policy and `registries.d`, so only the credentials a test passes are used.
//! Plain-HTTP registries are reached with the `--*tls-verify=false` flags.
//!
//! Every operation returns `Ok` when skopeo succeeded and `Err` carrying its stderr
//! otherwise, so tests can assert both "allowed" and "refused".

use crate::server::{require_tool, run};
use anyhow::{Context, Result};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::process::Command;

/// Upper bound for one skopeo run (tiny images on loopback take well under a second).
const SKOPEO_TIMEOUT: Duration = Duration::from_secs(60);

/// How skopeo authenticates to the registry (and so to Portcullis's token endpoint).
#[derive(Debug, Clone, Copy)]
pub enum Creds<'a> {
    /// No credentials at all (`--no-creds`).
    Anonymous,
    /// `USERNAME:PASSWORD`; the password may be an application token.
    User(&'a str, &'a str),
    /// A registry bearer token used as is (`--registry-token`): skopeo asks no token
    /// endpoint, e.g. for a token obtained by token exchange.
    RegistryToken(&'a str),
}

impl Creds<'_> {
    /// The flags for one side: `prefix` is `""`, `"src-"` or `"dest-"`.
    fn flags(&self, prefix: &str) -> Vec<String> {
        match self {
            Creds::Anonymous => vec![format!("--{prefix}no-creds")],
            Creds::User(u, p) => vec![format!("--{prefix}creds"), format!("{u}:{p}")],
            Creds::RegistryToken(t) => vec![format!("--{prefix}registry-token"), (*t).to_owned()],
        }
    }

    fn describe(&self) -> String {
        match self {
            Creds::Anonymous => "anonymous".to_owned(),
            Creds::User(u, _) => format!("as {u}"),
            Creds::RegistryToken(_) => "with a registry token".to_owned(),
        }
    }
}

/// A skopeo with its own configuration folder (deleted on drop).
pub struct Skopeo {
    binary: PathBuf,
    dir: tempfile::TempDir,
    pulls: AtomicUsize,
}

impl Skopeo {
    /// Checks that skopeo is installed and writes the private configuration.
    pub fn new() -> Result<Self> {
        let binary = require_tool("skopeo")?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-skopeo-")
            .tempdir()
            .context("creating a temporary folder")?;
        let d = dir.path();
        for sub in ["home/.config", "run", "tmp", "registries.d", "pulled"] {
            std::fs::create_dir_all(d.join(sub)).with_context(|| format!("creating {sub}"))?;
        }
        std::fs::write(d.join("auth.json"), "{\"auths\":{}}\n").context("writing auth.json")?;
        std::fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .context("writing registries.conf")?;
        std::fs::write(
            d.join("policy.json"),
            "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}\n",
        )
        .context("writing policy.json")?;
        Ok(Self {
            binary,
            dir,
            pulls: AtomicUsize::new(0),
        })
    }

    fn command(&self, subcommand: &str) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.binary);
        cmd.env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("home/.config"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .env("TMPDIR", d.join("tmp"))
            .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env_remove("DOCKER_CONFIG")
            .arg("--policy")
            .arg(d.join("policy.json"))
            .arg("--registries.d")
            .arg(d.join("registries.d"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--command-timeout")
            .arg(format!("{}s", SKOPEO_TIMEOUT.as_secs()))
            .arg(subcommand);
        cmd
    }

    async fn exec(&self, what: String, mut cmd: Command) -> Result<String> {
        let out = run(&what, &mut cmd, SKOPEO_TIMEOUT + Duration::from_secs(5)).await?;
        String::from_utf8(out.stdout).with_context(|| format!("{what}: non-UTF-8 output"))
    }

    /// `skopeo copy SRC DEST` with credentials for each side.
    pub async fn copy(
        &self,
        src: &str,
        src_creds: Creds<'_>,
        dest: &str,
        dest_creds: Creds<'_>,
    ) -> Result<()> {
        self.copy_with_flags(&[], src, src_creds, dest, dest_creds)
            .await
    }

    /// `skopeo copy FLAGS… SRC DEST`, e.g. with `["--format", "v2s2"]` (convert to a
    /// docker schema2 manifest) or `["--all"]` (every image of an index).
    pub async fn copy_with_flags(
        &self,
        flags: &[&str],
        src: &str,
        src_creds: Creds<'_>,
        dest: &str,
        dest_creds: Creds<'_>,
    ) -> Result<()> {
        let mut cmd = self.command("copy");
        cmd.args(["--src-tls-verify=false", "--dest-tls-verify=false"]);
        cmd.args(flags);
        // `oci:` sources and destinations take no credentials.
        if src.starts_with("docker://") {
            cmd.args(src_creds.flags("src-"));
        }
        if dest.starts_with("docker://") {
            cmd.args(dest_creds.flags("dest-"));
        }
        cmd.args([src, dest]);
        let what = format!(
            "skopeo copy {}{src} ({}) → {dest} ({})",
            flags.iter().map(|f| format!("{f} ")).collect::<String>(),
            src_creds.describe(),
            dest_creds.describe()
        );
        self.exec(what, cmd).await.map(drop)
    }

    /// Pushes a local image (`oci:…`) to `dest` (`docker://HOST/NAME:TAG`).
    pub async fn push(&self, local: &str, dest: &str, creds: Creds<'_>) -> Result<()> {
        self.copy(local, Creds::Anonymous, dest, creds).await
    }

    /// Pulls `src` (`docker://…`) into a fresh local OCI layout, returning its `oci:`
    /// reference. Layers are fetched, so this is a real pull.
    pub async fn pull(&self, src: &str, creds: Creds<'_>) -> Result<String> {
        let n = self.pulls.fetch_add(1, Ordering::Relaxed);
        let dest_dir = self.dir.path().join("pulled").join(n.to_string());
        let dest = format!(
            "oci:{}:pulled",
            dest_dir.to_str().context("temporary path is not UTF-8")?
        );
        self.copy(src, creds, &dest, Creds::Anonymous).await?;
        Ok(dest)
    }

    /// `skopeo inspect` (manifest and config, two token requests), as JSON.
    pub async fn inspect(&self, image: &str, creds: Creds<'_>) -> Result<serde_json::Value> {
        let mut cmd = self.command("inspect");
        cmd.arg("--tls-verify=false")
            .args(creds.flags(""))
            .arg(image);
        let out = self
            .exec(
                format!("skopeo inspect {image} ({})", creds.describe()),
                cmd,
            )
            .await?;
        serde_json::from_str(&out)
            .with_context(|| format!("skopeo inspect printed non-JSON: {out}"))
    }

    /// `skopeo inspect --authfile FILE`: credentials (e.g. an `identitytoken`) from an
    /// auth file instead of `--creds`.
    pub async fn inspect_with_authfile(
        &self,
        image: &str,
        authfile: &Path,
    ) -> Result<serde_json::Value> {
        let mut cmd = self.command("inspect");
        cmd.arg("--tls-verify=false")
            .arg("--authfile")
            .arg(authfile)
            .arg(image);
        let out = self
            .exec(
                format!("skopeo inspect --authfile {} {image}", authfile.display()),
                cmd,
            )
            .await?;
        serde_json::from_str(&out)
            .with_context(|| format!("skopeo inspect printed non-JSON: {out}"))
    }

    /// `skopeo delete` (deletes the manifest by digest; skopeo asks for scope
    /// `repository:NAME:*`).
    pub async fn delete(&self, image: &str, creds: Creds<'_>) -> Result<()> {
        let mut cmd = self.command("delete");
        cmd.arg("--tls-verify=false")
            .args(creds.flags(""))
            .arg(image);
        self.exec(format!("skopeo delete {image} ({})", creds.describe()), cmd)
            .await
            .map(drop)
    }

    /// Writes an auth file holding an OAuth2 refresh token for `registry`
    /// (`host:port`): `{"auths":{REG:{"auth":base64("USER:"),"identitytoken":RT}}}`.
    /// containers/image then uses `POST /v2/token` with `grant_type=refresh_token` (it
    /// drops an entry whose `auth` is missing, hence the empty-password `auth`).
    pub fn write_identity_token_authfile(
        &self,
        registry: &str,
        username: &str,
        refresh_token: &str,
    ) -> Result<PathBuf> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:"));
        let body = serde_json::json!({"auths": {registry: {"auth": auth, "identitytoken": refresh_token}}});
        let path = self.dir.path().join(format!("identity-{username}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&body)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
