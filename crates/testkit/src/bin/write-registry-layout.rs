//! `write-registry-layout DIR REPOSITORIES TAGS`: writes distribution's filesystem
//! storage layout with REPOSITORIES repositories of TAGS tags each under DIR (the
//! registry's `storage.filesystem.rootdirectory`), as
//! [`portcullis_testkit::registry_layout::write_layout`] does. For `scripts/bench.sh`'s
//! catalog sync benchmark; prints one summary line.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, repositories, tags] = args.as_slice() else {
        bail!("usage: write-registry-layout DIR REPOSITORIES TAGS_PER_REPOSITORY");
    };
    let dir = PathBuf::from(dir);
    let repositories: usize = repositories
        .parse()
        .with_context(|| format!("REPOSITORIES {repositories:?} is not a number"))?;
    let tags: usize = tags
        .parse()
        .with_context(|| format!("TAGS_PER_REPOSITORY {tags:?} is not a number"))?;
    portcullis_testkit::registry_layout::write_layout(&dir, repositories, tags)
        .with_context(|| format!("writing the layout under {}", dir.display()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "wrote {repositories} repositories with {tags} tags each under {}",
        dir.display()
    )?;
    Ok(())
}
