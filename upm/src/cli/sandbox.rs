//! `upm sandbox [--keep DIR] [--bind SRC[:DEST]]... -- CMD...`: run a command as root against
//! a throwaway overlay of this system, then summarise what it changed.

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use serde::Serialize;
use upm::ctx::Ctx;
use upm::pathtext::{self, JsonPath, quoted};
use upm::sandbox::{self, Bind, ChangeKind, Sandbox};

#[derive(clap::Args)]
pub struct Args {
    /// Keep the sandbox in DIR (upper/ holds the changes) and reuse it if it exists, so
    /// several commands can build on each other.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Show a host directory read-only inside the sandbox, at DEST (default: the same path).
    #[arg(long = "bind", value_name = "SRC[:DEST]")]
    binds: Vec<String>,
    /// The command to run (default: an interactive shell).
    #[arg(last = true)]
    command: Vec<String>,
}

/// The sandbox run in `--json` output.
#[derive(Serialize)]
struct Summary {
    exit_code: i32,
    /// The kept upper directory (with `--keep`).
    upper: Option<String>,
    changes: Vec<Changed>,
}

#[derive(Serialize)]
struct Changed {
    #[serde(flatten)]
    path: JsonPath,
    /// `added`, `modified` or `removed`.
    change: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let binds = args
        .binds
        .iter()
        .map(|b| Bind::parse(b))
        .collect::<Result<Vec<_>, _>>()?;
    let sb = Sandbox::new(&sandbox::Options {
        keep: args.keep.clone(),
        binds,
        temp_parent: None,
    })?;
    let argv = if args.command.is_empty() {
        vec!["/bin/sh".to_string(), "-i".to_string()]
    } else {
        args.command.clone()
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if p.json_mode() {
        // Keep stdout for the JSON summary; the command's output goes to stderr.
        cmd.stdout(std::io::stderr().as_fd().try_clone_to_owned()?);
    }
    let status = sb.status(cmd)?;
    let changes = sb.changes()?;
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if p.json_mode() {
        p.json(&Summary {
            exit_code: code,
            upper: args.keep.as_ref().map(|_| pathtext::text(sb.upper())),
            changes: changes
                .iter()
                .map(|c| Changed {
                    path: JsonPath::new(&c.path),
                    change: c.kind.name(),
                    kind: c.file_kind.name(),
                })
                .collect(),
        });
    } else {
        p.note(&format!(
            "the command exited with status {code}; it changed {} path(s): {} added, {} modified, {} removed",
            changes.len(),
            count(ChangeKind::Added),
            count(ChangeKind::Modified),
            count(ChangeKind::Removed)
        ));
        for c in &changes {
            let suffix = if c.file_kind == upm::fsutil::FileKind::Dir {
                "/"
            } else {
                ""
            };
            p.detail(&format!("  {} {}{suffix}", c.kind.mark(), quoted(&c.path)));
        }
        match &args.keep {
            Some(_) => p.note(&format!(
                "this system is unchanged; the changes are kept in {}",
                quoted(sb.upper())
            )),
            None => p.note("this system is unchanged; the sandbox was removed"),
        }
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
