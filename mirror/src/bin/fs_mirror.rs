//! fs_mirror: keep a copy of a mirrord host's trees under a directory, or report its changes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use upm_mirror::client::{self, Config, Mode};

#[derive(Clone, Copy, ValueEnum)]
enum SyncArg {
    /// Apply every change under --datadir.
    Apply,
    /// Print every change, touch nothing (a real-time tripwire).
    Report,
}

/// Mirror a mirrord host into DATADIR/<its paths>, resuming from DATADIR/sn.
#[derive(Parser)]
#[command(name = "fs_mirror", version)]
struct Args {
    /// The host running mirrord.
    #[arg(long)]
    host: String,
    /// mirrord's port.
    #[arg(long, default_value_t = 2123)]
    port: u16,
    /// Where the copy goes (the server's /a/b at DATADIR/a/b) and the resume point (DATADIR/sn).
    #[arg(long)]
    datadir: PathBuf,
    #[arg(long, value_enum, default_value = "apply")]
    sync: SyncArg,
    /// With --sync report: one JSON object a line.
    #[arg(long)]
    json: bool,
    /// The shared secret mirrord was given (mode 600).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Seconds of silence after which the server is taken for dead.
    #[arg(long, default_value_t = 60)]
    idle: u64,
    /// Say what is done, to stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn run(a: Args) -> anyhow::Result<()> {
    let cfg = Config {
        host: a.host,
        port: a.port,
        datadir: a.datadir,
        mode: match a.sync {
            SyncArg::Apply => Mode::Apply,
            SyncArg::Report => Mode::Report,
        },
        json: a.json,
        secret: a
            .secret_file
            .as_deref()
            .map(upm_mirror::secret::read)
            .transpose()?,
        verbose: a.verbose,
        idle: Duration::from_secs(a.idle.max(1)),
    };
    client::run(&cfg)?;
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fs_mirror: {e:#}");
            ExitCode::FAILURE
        }
    }
}
