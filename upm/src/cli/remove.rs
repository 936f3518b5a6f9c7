//! `upm remove PKG [--dry-run] [--keep-user]`: remove what a package installed.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::remove::{self, Action, Options};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The package to remove.
    name: String,
    /// Only list what would be removed and kept.
    #[arg(long)]
    dry_run: bool,
    /// Keep the package user and its home (/usr/src/PKG) with its logs.
    #[arg(long)]
    keep_user: bool,
    /// Put back the files the package replaced that no package owned (the temporary tools, a
    /// distribution's files), kept under /var/lib/upm/replaced since its install.
    #[arg(long)]
    restore: bool,
    /// Remove even when other packages' files need a library (soname) only this package
    /// provides (`upm rdepends PKG` lists them).
    #[arg(long)]
    force: bool,
    /// Instead of the package: remove the old library files an upgrade with --force kept,
    /// once no other package needs them (with --force, even then).
    #[arg(long)]
    stale_libs: bool,
}

#[derive(Serialize)]
struct StaleLib {
    #[serde(flatten)]
    path: JsonPath,
    done: String,
}

fn stale_libs(ctx: &Ctx, args: &Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let done = upm::ops::upgrade::remove_stale_libs(ctx, &args.name, args.force)?;
    if p.json_mode() {
        p.json(
            &done
                .iter()
                .map(|(path, d)| StaleLib {
                    path: JsonPath::new(path),
                    done: d.clone(),
                })
                .collect::<Vec<_>>(),
        );
    } else if done.is_empty() {
        p.line(&format!("{}: no old library files kept", args.name));
    } else {
        for (path, d) in &done {
            p.line(&format!("{}: {d}", quoted(path)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The removal in `--json` output.
#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    dry_run: bool,
    user_removed: bool,
    paths: Vec<PathDone<'a>>,
}

/// What happened to one path.
#[derive(Serialize)]
struct PathDone<'a> {
    #[serde(flatten)]
    path: JsonPath,
    /// `removed`, `missing`, `kept` or `restored`.
    action: &'static str,
    /// Why it was kept.
    reason: Option<&'a str>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    if args.stale_libs {
        return stale_libs(ctx, &args);
    }
    let p = &ctx.printer;
    let done = remove::remove(
        ctx,
        &Options {
            name: args.name,
            dry_run: args.dry_run,
            keep_user: args.keep_user,
            restore: args.restore,
            force: args.force,
        },
    )?;
    if p.json_mode() {
        p.json(&Report {
            name: &done.name,
            dry_run: args.dry_run,
            user_removed: done.user_removed,
            paths: done
                .paths
                .iter()
                .map(|(path, a)| {
                    let (action, reason) = match a {
                        Action::Removed => ("removed", None),
                        Action::Missing => ("missing", None),
                        Action::Restored => ("restored", None),
                        Action::Kept(w) => ("kept", Some(w.as_str())),
                    };
                    PathDone {
                        path: JsonPath::new(path),
                        action,
                        reason,
                    }
                })
                .collect(),
        });
        return Ok(ExitCode::SUCCESS);
    }
    let removed = done
        .paths
        .iter()
        .filter(|(_, a)| *a == Action::Removed)
        .count();
    for (path, a) in &done.paths {
        match a {
            Action::Removed if args.dry_run => p.line(&format!("would remove {}", quoted(path))),
            Action::Removed => {}
            Action::Missing => p.note(&format!("{}: already gone", quoted(path))),
            Action::Kept(why) => p.line(&format!("kept {}: {why}", quoted(path))),
            Action::Restored if args.dry_run => {
                p.line(&format!("would put back the original {}", quoted(path)))
            }
            Action::Restored => p.line(&format!("put back the original {}", quoted(path))),
        }
    }
    for (path, kept) in &done.not_restored {
        match kept {
            Some(k) => p.note(&format!(
                "{}: the original it replaced stays in {} (`--restore` puts originals back)",
                quoted(path),
                quoted(k)
            )),
            None => p.note(&format!(
                "{}: the original it replaced was not kept (install.keep_replaced = false)",
                quoted(path)
            )),
        }
    }
    if args.dry_run {
        p.line(&format!(
            "{}: {removed} path(s) would be removed (dry run: nothing changed)",
            done.name
        ));
    } else {
        p.line(&format!(
            "removed {}: {removed} path(s){}",
            done.name,
            if done.user_removed {
                ", its package user and home"
            } else {
                ""
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}
