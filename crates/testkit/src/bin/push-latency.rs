//! Push-to-visible latency for `scripts/bench.sh`: COUNT times, `PUT`s a manifest
//! under a new tag straight to the registry, then polls Portcullis's API until the tag
//! is listed. Prints one line per push, `TAG PUT-MS VISIBLE-MS`, where VISIBLE-MS
//! runs from the moment the `PUT` answered to the first API answer listing the tag.
//!
//! ```text
//! push-latency --registry http://127.0.0.1:5000 --repository ns/repo \
//!   --manifest FILE --media-type TYPE --tags-url http://PORTCULLIS/api/v1/repositories/ID/tags \
//!   --count 100 [--tag-prefix l] [--poll-ms 2] [--timeout-s 20]
//! ```
//!
//! Environment: `BENCH_REGISTRY_TOKEN` (Bearer token with push on the repository) and
//! `BENCH_API_AUTH` (the `Portus-Auth` value `user:application-token` for the API).

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(&options))
}

struct Options {
    registry: String,
    repository: String,
    manifest: Vec<u8>,
    media_type: String,
    tags_url: String,
    count: usize,
    tag_prefix: String,
    poll: Duration,
    timeout: Duration,
    registry_token: String,
    api_auth: String,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut flags = BTreeMap::new();
        let mut args = args;
        while let Some(flag) = args.next() {
            let Some(name) = flag.strip_prefix("--") else {
                bail!("unexpected argument {flag:?} (see the usage in the source)");
            };
            let value = args
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            flags.insert(name.to_owned(), value);
        }
        let mut take = |name: &str| {
            flags
                .remove(name)
                .with_context(|| format!("--{name} is required"))
        };
        let number = |name: &str, value: String| -> Result<u64> {
            value
                .parse()
                .with_context(|| format!("--{name} {value:?} is not a number"))
        };
        let manifest_path = take("manifest")?;
        let options = Self {
            registry: take("registry")?.trim_end_matches('/').to_owned(),
            repository: take("repository")?,
            manifest: std::fs::read(&manifest_path)
                .with_context(|| format!("reading --manifest {manifest_path}"))?,
            media_type: take("media-type")?,
            tags_url: take("tags-url")?,
            count: usize::try_from(number("count", take("count")?)?)?,
            tag_prefix: take("tag-prefix").unwrap_or_else(|_| "l".to_owned()),
            poll: Duration::from_millis(number(
                "poll-ms",
                take("poll-ms").unwrap_or_else(|_| "2".to_owned()),
            )?),
            timeout: Duration::from_secs(number(
                "timeout-s",
                take("timeout-s").unwrap_or_else(|_| "20".to_owned()),
            )?),
            registry_token: std::env::var("BENCH_REGISTRY_TOKEN")
                .context("BENCH_REGISTRY_TOKEN is not set")?,
            api_auth: std::env::var("BENCH_API_AUTH").context("BENCH_API_AUTH is not set")?,
        };
        if let Some(unknown) = flags.keys().next() {
            bail!("unknown option --{unknown}");
        }
        Ok(options)
    }
}

async fn run(o: &Options) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building an HTTP client")?;
    let mut stdout = std::io::stdout().lock();
    for i in 1..=o.count {
        let tag = format!("{}{i:04}", o.tag_prefix);
        let url = format!("{}/v2/{}/manifests/{tag}", o.registry, o.repository);
        let put_start = Instant::now();
        let response = client
            .put(&url)
            .bearer_auth(&o.registry_token)
            .header(reqwest::header::CONTENT_TYPE, &o.media_type)
            .body(o.manifest.clone())
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status != reqwest::StatusCode::CREATED {
            bail!("PUT {url} answered {status}: {body}");
        }
        let pushed = Instant::now();
        let put_ms = (pushed - put_start).as_secs_f64() * 1000.0;
        let deadline = pushed + o.timeout;
        loop {
            if listed(&client, o, &tag).await? {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{tag} was not listed at {} within {:?}",
                    o.tags_url,
                    o.timeout
                );
            }
            tokio::time::sleep(o.poll).await;
        }
        let visible_ms = pushed.elapsed().as_secs_f64() * 1000.0;
        writeln!(stdout, "{tag} {put_ms:.2} {visible_ms:.2}")?;
    }
    Ok(())
}

/// Whether the API lists `tag` now.
async fn listed(client: &reqwest::Client, o: &Options, tag: &str) -> Result<bool> {
    let response = client
        .get(&o.tags_url)
        .header("Portus-Auth", &o.api_auth)
        .send()
        .await
        .with_context(|| format!("GET {}", o.tags_url))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !status.is_success() {
        bail!("GET {} answered {status}", o.tags_url);
    }
    let tags: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("GET {}: not JSON", o.tags_url))?;
    Ok(tags
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t["name"] == tag)))
}
