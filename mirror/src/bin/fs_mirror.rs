//! fs_mirror: keep a copy of a mirrord host's trees under a directory, or report its changes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use upm_mirror::client::rotate::{self, Schedule};
use upm_mirror::client::tunnel::Ssh;
use upm_mirror::client::{self, Config, Mode};

#[derive(Clone, Copy, ValueEnum)]
enum SyncArg {
    /// Apply every change under --datadir.
    Apply,
    /// Print every change, touch nothing (a real-time tripwire).
    Report,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make a dated hard-link snapshot of the mirror in DIR/../snapshots/HOST/ (e.g.
    /// 2026-11-23T0300) and drop the oldest beyond --keep.
    Rotate {
        /// The mirror (fs_mirror's --datadir); no fs_mirror may be running on it.
        dir: PathBuf,
        /// Snapshots to keep.
        #[arg(long)]
        keep: usize,
        /// The mirrored host's name (default: DIR's own name).
        #[arg(long)]
        name: Option<String>,
    },
}

/// Mirror a mirrord host into DATADIR/<its paths>, resuming from DATADIR/sn.
#[derive(Parser)]
#[command(
    name = "fs_mirror",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// The host running mirrord (with --ssh: its address as seen from the ssh host; default
    /// 127.0.0.1 there).
    #[arg(long, required_unless_present = "ssh")]
    host: Option<String>,
    /// mirrord's port.
    #[arg(long, default_value_t = 2123)]
    port: u16,
    /// Where the copy goes (the server's /a/b at DATADIR/a/b) and the resume point (DATADIR/sn).
    #[arg(long, required = true)]
    datadir: Option<PathBuf>,
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
    /// Tunnel through `ssh -W HOST:PORT USER@SSHHOST` (encryption and host keys from ssh; the
    /// shared secret still authenticates the mirror).
    #[arg(long, value_name = "USER@SSHHOST")]
    ssh: Option<String>,
    /// An ssh option, given to ssh as `-o OPTION` (IdentityFile=..., Port=...); repeatable.
    #[arg(long, value_name = "OPTION", requires = "ssh")]
    ssh_opt: Vec<String>,
    /// Changed files of at least this many bytes are fetched as an rsync-style delta against
    /// the mirror's copy (0: always whole).
    #[arg(long, value_name = "BYTES", default_value_t = upm_mirror::client::delta::DELTA_MIN)]
    delta_min: u64,
    /// Each day at HH:MM (local time), at a quiet point between batches, make a hard-link
    /// snapshot as `fs_mirror rotate` does.
    #[arg(long, value_name = "HH:MM", value_parser = rotate::parse_at)]
    rotate_at: Option<(u32, u32)>,
    /// Snapshots --rotate-at keeps.
    #[arg(long, default_value_t = 14)]
    keep: usize,
    /// The mirrored host's name for its snapshots (default: DATADIR's own name).
    #[arg(long)]
    name: Option<String>,
    /// Say what is done, to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Write messages to this file instead of stderr (without systemd's journal), each line
    /// with its time; renamed to FILE.1 when it reaches --log-max-size.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// The log file's cap (10M, 512k, 1G, bytes).
    #[arg(long, default_value = "10M", value_parser = upm_mirror::log::parse_size, requires = "log_file")]
    log_max_size: u64,
}

fn run(a: Args) -> anyhow::Result<()> {
    if let Some(Cmd::Rotate { dir, keep, name }) = a.cmd {
        let p = rotate::rotate_now(&dir, name.as_deref(), keep)?;
        println!("{}", p.display());
        return Ok(());
    }
    let Some(datadir) = a.datadir else {
        anyhow::bail!("--datadir DIR is required");
    };
    if a.rotate_at.is_some() && matches!(a.sync, SyncArg::Report) {
        anyhow::bail!("--rotate-at snapshots a mirror: it needs --sync apply");
    }
    let rotate = match a.rotate_at {
        Some(at) => Some(Schedule::new(
            at,
            a.keep,
            rotate::host_name(&datadir, a.name.as_deref())?,
        )),
        None => None,
    };
    let cfg = Config {
        host: a.host.unwrap_or_else(|| "127.0.0.1".into()),
        port: a.port,
        datadir,
        rotate,
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
        delta_min: (a.delta_min > 0).then_some(a.delta_min),
        ssh: a.ssh.map(|dest| Ssh {
            dest,
            opts: a.ssh_opt,
        }),
    };
    client::run(&cfg)?;
    Ok(())
}

fn main() -> ExitCode {
    let a = Args::parse();
    let log = match a
        .log_file
        .as_deref()
        .map(|f| upm_mirror::log::to_file(f, a.log_max_size))
    {
        Some(Err(e)) => {
            eprintln!("fs_mirror: {e}");
            return ExitCode::FAILURE;
        }
        l => l.and_then(Result::ok),
    };
    let code = match run(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fs_mirror: {e:#}");
            ExitCode::FAILURE
        }
    };
    drop(log);
    code
}
