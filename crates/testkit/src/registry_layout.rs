//! Writes distribution's filesystem storage layout directly, for benchmarks that
//! need far more repositories and tags than pushing could create in reasonable time
//! (10,000 repositories × 10 tags).
//!
//! Layout (distribution 2.8, `registry/storage/paths.go`), under
//! `ROOT/docker/registry/v2/`:
//!
//! ```text
//! blobs/sha256/<2 hex>/<hex>/data                               blob content
//! repositories/<name>/_layers/sha256/<hex>/link                 "sha256:<hex>" per config/layer blob
//! repositories/<name>/_manifests/revisions/sha256/<hex>/link    per manifest
//! repositories/<name>/_manifests/tags/<tag>/current/link        the tag's manifest
//! repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link
//! ```
//!
//! The catalog lists every folder under `repositories/` that has a `_layers` folder.
//! Content is deterministic: one shared (empty, gzipped) layer, one config blob per
//! repository naming it in a label, and one docker schema2 manifest per tag that names
//! its tag in an annotation, so every tag of every repository has its own digest.
//! [`manifest`] recomputes any of them for checks.

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// Docker's canonical empty layer: a gzipped empty tar archive (32 bytes).
const EMPTY_LAYER: [u8; 32] = [
    31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88, 0, 8, 0, 0, 255, 255,
    46, 175, 181, 239, 0, 4, 0, 0,
];
/// The uncompressed digest (`diff_id`) of [`EMPTY_LAYER`]: 1024 zero bytes.
const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

pub const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `bench/r00042`: the name of repository `index`.
pub fn repository_name(index: usize) -> String {
    format!("bench/r{index:05}")
}

/// `t003`: the name of tag `index`.
pub fn tag_name(index: usize) -> String {
    format!("t{index:03}")
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The config blob of `repository`.
pub fn config(repository: &str) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"portcullis.bench.repository": repository}},
        "rootfs": {"type": "layers", "diff_ids": [EMPTY_LAYER_DIFF_ID]},
    });
    config.to_string().into_bytes()
}

/// The manifest bytes `tag` of `repository` points at.
pub fn manifest(repository: &str, tag: &str) -> Vec<u8> {
    let config = config(repository);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": SCHEMA2,
        "config": {"mediaType": CONFIG_TYPE, "size": config.len(), "digest": digest(&config)},
        "layers": [{"mediaType": LAYER_TYPE, "size": EMPTY_LAYER.len(), "digest": digest(&EMPTY_LAYER)}],
        // Not part of schema2; the registry stores and serves manifests byte for byte
        // and ignores unknown fields, and this makes each tag's digest distinct.
        "annotations": {"portcullis.bench.tag": tag},
    });
    manifest.to_string().into_bytes()
}

/// Writes `repositories` repositories ([`repository_name`]) with `tags_per_repository`
/// tags each ([`tag_name`]) under `root/docker/registry/v2/`; `root` is the registry's
/// `storage.filesystem.rootdirectory`. Repositories are spread over all cores.
pub fn write_layout(root: &Path, repositories: usize, tags_per_repository: usize) -> Result<()> {
    let v2 = root.join("docker/registry/v2");
    let layer_digest = write_blob(&v2, &EMPTY_LAYER)?;
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(repositories.max(1));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let v2 = &v2;
                let layer_digest = &layer_digest;
                scope.spawn(move || -> Result<()> {
                    for index in (worker..repositories).step_by(threads) {
                        write_repository(v2, index, tags_per_repository, layer_digest)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a layout writer thread panicked"))??;
        }
        Ok(())
    })
}

fn write_repository(v2: &Path, index: usize, tags: usize, layer_digest: &str) -> Result<()> {
    let name = repository_name(index);
    let repo = v2.join("repositories").join(&name);
    let config_digest = write_blob(v2, &config(&name))?;
    for blob in [&config_digest, layer_digest] {
        write_link(&repo.join("_layers").join(digest_path(blob)), blob)?;
    }
    let manifests = repo.join("_manifests");
    for tag_index in 0..tags {
        let tag = tag_name(tag_index);
        let manifest_digest = write_blob(v2, &manifest(&name, &tag))?;
        let digest_dir = digest_path(&manifest_digest);
        write_link(
            &manifests.join("revisions").join(&digest_dir),
            &manifest_digest,
        )?;
        let tag_dir = manifests.join("tags").join(&tag);
        write_link(&tag_dir.join("current"), &manifest_digest)?;
        write_link(&tag_dir.join("index").join(&digest_dir), &manifest_digest)?;
    }
    Ok(())
}

/// `sha256/<hex>` for `sha256:<hex>`.
fn digest_path(digest: &str) -> PathBuf {
    Path::new("sha256").join(digest.trim_start_matches("sha256:"))
}

/// Stores `bytes` as a blob and returns its digest.
fn write_blob(v2: &Path, bytes: &[u8]) -> Result<String> {
    let digest = digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    let dir = v2.join("blobs/sha256").join(&hex[..2]).join(hex);
    write_file(&dir, "data", bytes)?;
    Ok(digest)
}

/// `dir/link` holding `digest` (no newline, like the registry writes it).
fn write_link(dir: &Path, digest: &str) -> Result<()> {
    write_file(dir, "link", digest.as_bytes())
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}
