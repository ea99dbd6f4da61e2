//! Tiny OCI images built with `umoci` (no container engine needed).

use crate::server::{require_tool, run};
use anyhow::{Context, Result};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

const UMOCI_TIMEOUT: Duration = Duration::from_secs(30);

/// A one-layer OCI image in an OCI layout inside a temporary folder (deleted on drop).
pub struct OciImage {
    dir: tempfile::TempDir,
    /// `oci:<layout dir>:<tag>`, a skopeo source or destination.
    pub reference: String,
}

impl OciImage {
    /// The OCI layout folder.
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }
}

/// Builds an image whose only layer holds `/portcullis-e2e.txt` with `label` and a
/// random nonce in it, so that every build has its own layer digest (different tests
/// never share blobs through skopeo's blob-location cache), and `/bin/true` as its
/// command. Returns `oci:<dir>:<tag>`.
pub async fn build_image(label: &str, tag: &str) -> Result<OciImage> {
    let umoci = require_tool("umoci")?;
    let dir = tempfile::Builder::new()
        .prefix("portcullis-image-")
        .tempdir()
        .context("creating a temporary folder")?;
    let layout = dir.path().join("layout");
    let layout_str = layout
        .to_str()
        .context("temporary folder path is not UTF-8")?
        .to_owned();
    let nonce: u128 = rand::rng().random();
    let payload = dir.path().join("payload.txt");
    std::fs::write(
        &payload,
        format!("portcullis end-to-end image {label}\nnonce {nonce:032x}\n"),
    )
    .with_context(|| format!("writing {}", payload.display()))?;

    let umoci_run = |args: Vec<&str>| {
        let mut cmd = Command::new(&umoci);
        cmd.args(args);
        cmd
    };
    run(
        "umoci init",
        &mut umoci_run(vec!["init", "--layout", &layout_str]),
        UMOCI_TIMEOUT,
    )
    .await?;
    let base = format!("{layout_str}:base");
    run(
        "umoci new",
        &mut umoci_run(vec!["new", "--image", &base]),
        UMOCI_TIMEOUT,
    )
    .await?;
    let payload_str = path_str(&payload)?;
    run(
        "umoci insert",
        &mut umoci_run(vec![
            "insert",
            "--image",
            &base,
            "--tag",
            tag,
            payload_str,
            "/portcullis-e2e.txt",
        ]),
        UMOCI_TIMEOUT,
    )
    .await?;
    let tagged = format!("{layout_str}:{tag}");
    run(
        "umoci config",
        &mut umoci_run(vec![
            "config",
            "--image",
            &tagged,
            "--config.cmd",
            "/bin/true",
            "--author",
            "portcullis-testkit",
        ]),
        UMOCI_TIMEOUT,
    )
    .await?;
    Ok(OciImage {
        reference: format!("oci:{tagged}"),
        dir,
    })
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}
