//! An OpenLDAP slapd with the tests' directory (`Seed::default_directory`: alice, bob,
//! carol, … with the `*_PASSWORD`s of `portcullis_testkit::ldap`) for
//! `scripts/bench.sh`. Prints `HOST PORT` (plain LDAP) once it answers, then runs until
//! it gets SIGTERM or SIGINT, and stops slapd on the way out.

use anyhow::{Context, Result};
use portcullis_testkit::ldap::{Seed, Slapd};
use std::io::Write;

fn main() -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run())
}

async fn run() -> Result<()> {
    let mut slapd = Slapd::start(&Seed::default_directory()).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {}", slapd.host(), slapd.plain_port())?;
    out.flush()?;
    drop(out);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    slapd.stop().await;
    Ok(())
}
