//! `upm record PKG [--version V] [--allow STEP]... [-- CMD...]`: record a package built by hand
//! in an interactive shell as its package user, or one command.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::record::{self, Options};
use upm::recipe::{Phase, RootStep};

#[derive(clap::Args)]
pub struct Args {
    /// The package to record into (created, with its package user, when new).
    package: String,
    /// The version being built (needed for a package not installed yet).
    #[arg(long = "version", value_name = "VERSION")]
    pkg_version: Option<String>,
    /// A root step upm may apply at commit besides the package's root.allow (repeatable):
    /// chown, chgrp, setuid, setgid, ldconfig, mknod, install-info.
    #[arg(long, value_name = "STEP", value_parser = step)]
    allow: Vec<RootStep>,
    /// The shell: bash (the default when the root has it) or sh (a simpler loop upm drives).
    #[arg(long, value_name = "SHELL")]
    shell: Option<String>,
    /// Parallel make jobs for the recorded commands (MAKEFLAGS=-jN; default: the CPUs).
    #[arg(short, long, value_name = "N")]
    jobs: Option<u32>,
    /// The phase the command (or the shell's commands, until `phase NAME`) belongs to:
    /// prepare, configure, compile, check or install.
    #[arg(long, value_name = "PHASE", default_value = "install", value_parser = phase)]
    phase: Phase,
    /// One command to record and commit instead of a shell (after `--`).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn phase(s: &str) -> Result<Phase, String> {
    Phase::from_name(s)
        .ok_or_else(|| "not a phase; use prepare, configure, compile, check or install".to_string())
}

fn step(s: &str) -> Result<RootStep, String> {
    RootStep::from_name(s).ok_or_else(|| {
        "not a root step; use one of chown, chgrp, setuid, setgid, ldconfig, mknod, install-info".to_string()
    })
}

/// The session in `--json` output.
#[derive(Serialize)]
struct Report<'a> {
    name: &'a str,
    version: &'a str,
    status: i32,
    commits: Vec<Commit>,
    /// The profile written (inside the root), if any commit wrote one.
    profile: Option<String>,
}

#[derive(Serialize)]
struct Commit {
    commands: usize,
    lines: Vec<Line>,
    failed_commands: usize,
    files: usize,
    root_steps_applied: usize,
}

/// A committed command line.
#[derive(Serialize)]
struct Line {
    phase: &'static str,
    cwd: String,
    line: String,
    status: i32,
    seconds: f64,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let done = record::record(
        ctx,
        &Options {
            package: args.package,
            version: args.pkg_version,
            command: args.command,
            allow: args.allow,
            shell: args.shell,
            term: std::env::var(upm::envvars::TERM).ok(),
            jobs: args.jobs,
            phase: args.phase,
        },
    )?;
    let p = &ctx.printer;
    if p.json_mode() {
        p.json(&Report {
            name: &done.name,
            version: &done.version,
            status: done.status,
            profile: done.profile.as_deref().map(upm::pathtext::text),
            commits: done
                .commits
                .iter()
                .map(|c| Commit {
                    commands: c.commands,
                    lines: c
                        .lines
                        .iter()
                        .map(|l| Line {
                            phase: l.phase.name(),
                            cwd: upm::pathtext::text(&l.cwd),
                            line: l.line.clone(),
                            status: l.status,
                            seconds: l.seconds,
                        })
                        .collect(),
                    failed_commands: c.failed,
                    files: c.files.len(),
                    root_steps_applied: c.steps.iter().filter(|s| s.applied).count(),
                })
                .collect(),
        });
    } else if !done.commits.is_empty() {
        let files: usize = done.commits.iter().map(|c| c.files.len()).sum();
        let commands: usize = done.commits.iter().map(|c| c.commands).sum();
        p.line(&format!(
            "recorded {} {}: {commands} command(s), {files} path(s) in {} commit(s)",
            done.name,
            done.version,
            done.commits.len()
        ));
        if let Some(path) = &done.profile {
            p.line(&format!("profile: {}", upm::pathtext::quoted(path)));
        }
    }
    Ok(ExitCode::SUCCESS)
}
