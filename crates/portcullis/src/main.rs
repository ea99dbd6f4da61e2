//! `portcullis`: the one binary. Subcommands start the server, run migrations, manage
//! keys, print a registry configuration and administer users.

mod app;
mod cli;

use std::process::ExitCode;
use std::time::Duration;

/// mimalloc, not the system allocator: with glibc malloc the 19 MiB argon2 buffers of
/// password checks stayed resident in per-thread arenas for good (measured: 15 MB →
/// 55 MB idle after the first logins). mimalloc gives freed memory back, but lazily: a
/// freed range is purged once its delay (1 s in mimalloc 3) has passed *and* some thread
/// calls into mimalloc's collection (a page freed, a thread exiting). An idle server
/// makes no such call, so see [`BLOCKING_THREAD_KEEP_ALIVE`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long an idle thread of tokio's blocking pool, where password checks run, waits
/// for more work before it exits (tokio's default: 10 s). Its exit is what lets mimalloc
/// purge the argon2 buffers freed before, so idle memory after a burst of logins comes
/// back within this time (measured after 20 logins: 25 → 72 MB, then 32 MB at 1.3 s)
/// instead of staying up until the 10 s default ran out (72–92 MB at 3 s). It must stay
/// above mimalloc's purge delay, or the exit comes before the buffers may be purged and
/// nothing purges them later. Under steady logins the threads stay busy and keep their
/// memory, as before.
const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_millis(1250);

fn main() -> ExitCode {
    let cli = <cli::Cli as clap::Parser>::parse();
    // One TLS provider for the HTTPS listener, whatever else the dependencies enable.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming what was wrong; details are in the log.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
