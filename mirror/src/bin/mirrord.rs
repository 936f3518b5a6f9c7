//! mirrord: watch the identities' trees and serve their changes to fs_mirror clients.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use upm_mirror::daemon::{self, Config};

/// Watch what fs_info selects, log every change with a serial, serve it to fs_mirror.
#[derive(Parser)]
#[command(name = "mirrord", version)]
struct Args {
    /// fs_info identities to mirror (repeatable).
    #[arg(long = "identity", default_value = "system")]
    identity: Vec<String>,
    /// Where fs_info keeps the identities.
    #[arg(long, default_value = "/var/lib/fs_info")]
    fs_info_dir: PathBuf,
    /// The snapshot and wmLog (sqlite).
    #[arg(long, default_value = "/var/lib/mirrord")]
    state_dir: PathBuf,
    /// Address and port to serve fs_mirror on (port 0: any free port, printed at start).
    #[arg(long, default_value = "0.0.0.0:2123")]
    listen: String,
    /// A shared secret clients must prove (mode 600).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Seconds between keep-alives to a client waiting for changes.
    #[arg(long, default_value_t = 15)]
    keepalive: u64,
    /// Log each record and each client's commands to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// The kernel interface to watch with: inotify (a watch per directory), fanotify (one
    /// mark per file system; root, Linux 5.17 or later), or auto (fanotify where it works,
    /// else inotify).
    #[arg(long, default_value = "inotify", value_parser = ["inotify", "fanotify", "auto"])]
    backend: String,
}

fn run(a: Args) -> anyhow::Result<()> {
    let cfg = Config {
        identities: a.identity,
        fs_info_dir: a.fs_info_dir,
        state_dir: a.state_dir,
        listen: a.listen,
        secret: a
            .secret_file
            .as_deref()
            .map(upm_mirror::secret::read)
            .transpose()?,
        keepalive: Duration::from_secs(a.keepalive.max(1)),
        verbose: a.verbose,
        backend: a.backend.parse().map_err(anyhow::Error::msg)?,
    };
    daemon::run(&cfg)?;
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mirrord: {e:#}");
            ExitCode::FAILURE
        }
    }
}
