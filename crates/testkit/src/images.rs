//! Tiny OCI images built with `umoci` (no container engine needed).

use crate::server::{require_tool, run};
use anyhow::{Context, Result};
use rand::Rng;
use sha2::{Digest as _, Sha256};
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
    let (dir, layout) = new_layout().await?;
    add_image(&dir, &layout, label, tag, None).await?;
    Ok(OciImage {
        reference: format!("oci:{layout}:{tag}"),
        dir,
    })
}

/// One platform of a multi-platform image: `os`/`architecture` go into the image
/// config (`umoci config --os/--architecture`), all three into the index entry.
#[derive(Debug, Clone, Copy)]
pub struct PlatformSpec<'a> {
    pub os: &'a str,
    pub architecture: &'a str,
    pub variant: Option<&'a str>,
}

/// Like [`build_image`], with the config's `os`/`architecture` set.
pub async fn build_platform_image(
    label: &str,
    tag: &str,
    os: &str,
    architecture: &str,
) -> Result<OciImage> {
    let (dir, layout) = new_layout().await?;
    add_image(&dir, &layout, label, tag, Some((os, architecture))).await?;
    Ok(OciImage {
        reference: format!("oci:{layout}:{tag}"),
        dir,
    })
}

/// A multi-platform image: one single-layer image per entry of `platforms` (each with
/// its own layer), and an OCI image index referencing them with their platforms,
/// tagged `tag` in the layout. Push it with `skopeo copy --all`. A platform
/// `unknown/unknown` makes an entry that looks like buildkit's attestation manifests.
pub async fn build_index(
    label: &str,
    tag: &str,
    platforms: &[PlatformSpec<'_>],
) -> Result<OciImage> {
    let (dir, layout) = new_layout().await?;
    let mut entries = Vec::new();
    for (i, p) in platforms.iter().enumerate() {
        let platform_tag = format!("{tag}-platform-{i}");
        add_image(
            &dir,
            &layout,
            &format!("{label} {}/{}", p.os, p.architecture),
            &platform_tag,
            Some((p.os, p.architecture)),
        )
        .await?;
        let mut descriptor = tagged_descriptor(&layout, &platform_tag)?;
        let mut platform = serde_json::json!({"os": p.os, "architecture": p.architecture});
        if let Some(variant) = p.variant {
            platform["variant"] = variant.into();
        }
        descriptor["platform"] = platform;
        if let Some(annotations) = descriptor
            .get_mut("annotations")
            .and_then(serde_json::Value::as_object_mut)
        {
            annotations.remove(REF_NAME);
        }
        entries.push(descriptor);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    let bytes = serde_json::to_vec(&index)?;
    let hex = hex::encode(Sha256::digest(&bytes));
    let blob = Path::new(&layout).join("blobs/sha256").join(&hex);
    std::fs::write(&blob, &bytes).with_context(|| format!("writing {}", blob.display()))?;
    let index_json = Path::new(&layout).join("index.json");
    let mut layout_index = read_json(&index_json)?;
    let manifests = layout_index
        .get_mut("manifests")
        .and_then(serde_json::Value::as_array_mut)
        .context("the layout's index.json has no manifests list")?;
    manifests.push(serde_json::json!({
        "mediaType": OCI_INDEX,
        "digest": format!("sha256:{hex}"),
        "size": bytes.len(),
        "annotations": {REF_NAME: tag},
    }));
    std::fs::write(&index_json, serde_json::to_vec(&layout_index)?)
        .with_context(|| format!("writing {}", index_json.display()))?;
    Ok(OciImage {
        reference: format!("oci:{layout}:{tag}"),
        dir,
    })
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The descriptor `index.json` of `layout` holds for `tag`.
fn tagged_descriptor(layout: &str, tag: &str) -> Result<serde_json::Value> {
    let index = read_json(&Path::new(layout).join("index.json"))?;
    index
        .get("manifests")
        .and_then(serde_json::Value::as_array)
        .and_then(|m| {
            m.iter()
                .find(|d| d["annotations"][REF_NAME].as_str() == Some(tag))
        })
        .cloned()
        .with_context(|| format!("no manifest tagged {tag} in {layout}/index.json"))
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// A temporary folder with an empty OCI layout in `layout/`.
async fn new_layout() -> Result<(tempfile::TempDir, String)> {
    let umoci = require_tool("umoci")?;
    let dir = tempfile::Builder::new()
        .prefix("portcullis-image-")
        .tempdir()
        .context("creating a temporary folder")?;
    let layout = path_str(&dir.path().join("layout"))?.to_owned();
    run(
        "umoci init",
        Command::new(&umoci).args(["init", "--layout", &layout]),
        UMOCI_TIMEOUT,
    )
    .await?;
    Ok((dir, layout))
}

/// Adds a one-layer image tagged `tag` to `layout` (see [`build_image`]), with the
/// config's os/architecture set when `platform` is given.
async fn add_image(
    dir: &tempfile::TempDir,
    layout: &str,
    label: &str,
    tag: &str,
    platform: Option<(&str, &str)>,
) -> Result<()> {
    let umoci = require_tool("umoci")?;
    let nonce: u128 = rand::rng().random();
    let payload = dir.path().join(format!("payload-{tag}.txt"));
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
    let base = format!("{layout}:base");
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
    let tagged = format!("{layout}:{tag}");
    let mut args = vec![
        "config",
        "--image",
        &tagged,
        "--config.cmd",
        "/bin/true",
        "--author",
        "portcullis-testkit",
    ];
    if let Some((os, architecture)) = platform {
        args.extend(["--os", os, "--architecture", architecture]);
    }
    run("umoci config", &mut umoci_run(args), UMOCI_TIMEOUT).await?;
    Ok(())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}
