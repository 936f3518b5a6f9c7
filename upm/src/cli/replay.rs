//! `upm replay DIR|FILE...`: rebuild a set of packages in dependency order, resumably.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::replay::{self, Options, Report};

#[derive(clap::Args)]
pub struct Args {
    /// Directories of recipes or profiles (a directory holding a host.toml is a host
    /// profile), host profiles, or recipe files.
    #[arg(value_name = "DIR|FILE", required_unless_present = "resume")]
    inputs: Vec<PathBuf>,
    /// Resume the last replay where it stopped (its state is kept in the database).
    #[arg(long = "continue", id = "resume")]
    resume: bool,
    /// Start at this package of the build order.
    #[arg(long, value_name = "PKG")]
    from: Option<String>,
    /// Only these packages, in build order.
    #[arg(long, value_name = "PKG", num_args = 1..)]
    only: Vec<String>,
    /// After a failure, go on with the packages that do not depend on it.
    #[arg(long)]
    keep_going: bool,
    /// Print the build order and what would be skipped; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Parallel make jobs of each build (MAKEFLAGS=-jN; default: the recipe's, else the number
    /// of CPUs).
    #[arg(short, long, value_name = "N")]
    jobs: Option<u32>,
    /// Another directory to look for source archives in (repeatable).
    #[arg(long = "sources-dir", value_name = "DIR")]
    sources_dirs: Vec<PathBuf>,
    /// Skip the check phases.
    #[arg(long)]
    no_check: bool,
    /// Build every package, even when the binary host (binhost.url) has an archive of the
    /// same recipe hash.
    #[arg(long)]
    build: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let report = replay::replay(
        ctx,
        &Options {
            inputs: args.inputs,
            resume: args.resume,
            from: args.from,
            only: args.only,
            keep_going: args.keep_going,
            dry_run: args.dry_run,
            jobs: args.jobs,
            sources_dirs: args.sources_dirs,
            no_check: args.no_check,
            build: args.build,
        },
    )?;
    if p.json_mode() {
        p.json(&report);
    } else if report.dry_run {
        for s in &report.steps {
            let note = s
                .note
                .as_deref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default();
            p.line(&format!(
                "{:>3}. {:<5} {} {}{note}",
                s.seq, s.state, s.name, s.version
            ));
        }
    } else {
        table(ctx, &report);
    }
    let failed = report
        .steps
        .iter()
        .any(|s| matches!(s.state.as_str(), "failed" | "blocked"));
    if let Some(f) = &report.failed
        && !p.json_mode()
    {
        let stopped = report.steps.iter().any(|s| s.state == "pending");
        p.note(&format!(
            "{}: {} failed in its {} phase:\n{}",
            if stopped {
                "replay stopped"
            } else {
                "replay finished with failures; the first"
            },
            f.name,
            f.phase,
            f.message
        ));
        p.note("fix it, then `upm replay --continue` resumes from there");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn size(b: Option<i64>) -> String {
    match b {
        None => "-".into(),
        Some(b) if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        Some(b) => format!("{}K", (b + 1023) / 1024),
    }
}

/// The summary table.
fn table(ctx: &Ctx, r: &Report) {
    let p = &ctx.printer;
    p.line(&format!(
        "{:<3} {:<16} {:<10} {:<8} {:>8} {:>6} {:>8} {:>9}",
        "#", "package", "version", "state", "time", "SBU", "build", "installed"
    ));
    for s in &r.steps {
        p.line(&format!(
            "{:<3} {:<16} {:<10} {:<8} {:>8} {:>6} {:>8} {:>9}",
            s.seq,
            s.name,
            s.version,
            s.state,
            s.seconds.map(|t| format!("{t:.1}s")).unwrap_or("-".into()),
            s.sbu.map(|t| format!("{t:.2}")).unwrap_or("-".into()),
            size(s.build_bytes),
            size(s.installed_bytes),
        ));
    }
    let built = r.steps.iter().filter(|s| s.state == "done").count();
    let skipped = r.steps.iter().filter(|s| s.state == "skipped").count();
    p.line(&format!(
        "{built} built, {skipped} skipped, {} left of {}; this run {:.1}s (phases {:.1}s)",
        r.steps
            .iter()
            .filter(|s| !matches!(s.state.as_str(), "done" | "skipped"))
            .count(),
        r.steps.len(),
        r.wall_seconds,
        r.phase_seconds
    ));
}
