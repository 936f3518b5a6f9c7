//! mirrord: watch the identities' trees and serve their changes to fs_mirror clients.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use upm_mirror::ctl::{Change, Request};
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
    /// The snapshot and wmLog (sqlite), and the control socket (ctl.sock).
    #[arg(long, default_value = "/var/lib/mirrord", global = true)]
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
    /// Keep only the last N records of the log, or those of the last N days (`30d`); a client
    /// further behind gets a differential INIT. Default: keep everything.
    #[arg(long, value_name = "N|Nd")]
    log_keep: Option<upm_mirror::store::wmlog::Keep>,
    /// Refuse to start when the trees need more directory watches than N (the kernel's
    /// fs.inotify.max_user_watches applies in any case).
    #[arg(long, value_name = "N")]
    max_watches: Option<u64>,
    /// Log each record and each client's commands to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// The kernel interface to watch with: inotify (a watch per directory), fanotify (one
    /// mark per file system; root, Linux 5.17 or later), or auto (fanotify where it works,
    /// else inotify).
    #[arg(long, default_value = "inotify", value_parser = ["inotify", "fanotify", "auto"])]
    backend: String,
    /// Write messages to this file instead of stderr (without systemd's journal), each line
    /// with its time; renamed to FILE.1 when it reaches --log-max-size.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// The log file's cap (10M, 512k, 1G, bytes).
    #[arg(long, default_value = "10M", value_parser = upm_mirror::log::parse_size, requires = "log_file")]
    log_max_size: u64,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Talk to the running mirrord of --state-dir (as root).
    Ctl {
        #[command(subcommand)]
        what: CtlCmd,
    },
}

#[derive(Subcommand)]
enum CtlCmd {
    /// Mirror PATH too: walked now, its paths logged as created; kept in fs_info.
    Include {
        path: PathBuf,
        /// The identity to record it in (default: the first mirrord serves).
        #[arg(long)]
        identity: Option<String>,
    },
    /// Stop mirroring PATH: no longer watched, forgotten by the snapshot without DELETE
    /// records (mirrors keep their copy); kept in fs_info.
    Exclude {
        path: PathBuf,
        /// The identity to record it in (default: the one that includes PATH).
        #[arg(long)]
        identity: Option<String>,
    },
    /// Clients and their lag, watches, the log's size, the backend.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn ctl(state_dir: &std::path::Path, what: CtlCmd) -> anyhow::Result<()> {
    let (req, json) = match what {
        CtlCmd::Include { path, identity } => (
            Request::Change {
                change: Change::Include,
                path,
                identity,
            },
            false,
        ),
        CtlCmd::Exclude { path, identity } => (
            Request::Change {
                change: Change::Exclude,
                path,
                identity,
            },
            false,
        ),
        CtlCmd::Status { json } => (Request::Status, json),
    };
    print!("{}", upm_mirror::ctl::client::run(state_dir, &req, json)?);
    Ok(())
}

fn run(a: Args) -> anyhow::Result<()> {
    if let Some(Cmd::Ctl { what }) = a.cmd {
        return ctl(&a.state_dir, what);
    }
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
        log_keep: a.log_keep,
        max_watches: a.max_watches,
    };
    daemon::run(&cfg)?;
    Ok(())
}

fn main() -> ExitCode {
    let a = Args::parse();
    let log = match a.log_file.as_deref().filter(|_| a.cmd.is_none()) {
        Some(f) => match upm_mirror::log::to_file(f, a.log_max_size) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("mirrord: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let code = match run(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mirrord: {e:#}");
            ExitCode::FAILURE
        }
    };
    drop(log);
    code
}
