//! `upm install RECIPE|NAME`: build and install a package as its own package user.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::install::{self, Options};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// A recipe file, or a package name looked up in the recipe directories.
    recipe: String,
    #[command(flatten)]
    build: BuildArgs,
}

/// How to build (shared with `upm upgrade`).
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Another directory to look for the source archive in (repeatable).
    #[arg(long = "sources-dir", value_name = "DIR")]
    sources_dirs: Vec<PathBuf>,
    /// Use this source archive. When its name differs from the recipe's `source.file` (a
    /// newer release, a distribution's copy), the recipe's checksums do not apply: upm prints
    /// its sha256 and records the file and its sums as the install's source.
    #[arg(long, value_name = "FILE")]
    source: Option<PathBuf>,
    /// The sha256 the source archive must have (64 hexadecimal digits).
    #[arg(long, value_name = "HEX", value_parser = sha256_arg)]
    sha256: Option<String>,
    /// Parallel make jobs (MAKEFLAGS=-jN; default: the recipe's, else the number of CPUs).
    #[arg(short, long, value_name = "N")]
    jobs: Option<u32>,
    /// Skip the check phase.
    #[arg(long)]
    no_check: bool,
    /// Keep the build tree in /usr/src/PKG/build.
    #[arg(long)]
    keep_build: bool,
    /// Leave a failed install's files in place (for debugging) instead of undoing it.
    #[arg(long)]
    keep_failed: bool,
    /// Set a recipe key before it is resolved, e.g. `--set vars.prefix=/usr/local`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Show, per path, which signals saw it (the watcher, the LD_PRELOAD shim, ownership) and
    /// where they disagree.
    #[arg(long)]
    explain_tracking: bool,
    /// Build from source even when the binary host (binhost.url) has the package.
    #[arg(long)]
    build: bool,
    /// Upgrade even when the new version no longer provides a library (soname) other
    /// packages' files need: the old library files are kept.
    #[arg(long)]
    force: bool,
    /// Build and install again a package installed at the same version.
    #[arg(long)]
    reinstall: bool,
}

/// The install in `--json` output.
#[derive(Serialize)]
struct Installed<'a> {
    name: &'a str,
    version: &'a str,
    user: User<'a>,
    /// How many paths its manifest holds.
    files: usize,
    root_steps_applied: usize,
    root_steps_skipped: usize,
    reports: Vec<super::JsonReport<'a>>,
    /// Files no package owned that it replaced (kept for `upm remove --restore`).
    replaced: Vec<JsonPath>,
    seconds: f64,
    timings: Timings,
    /// The profile written, as this process opens it.
    profile: Option<JsonPath>,
    /// When the recipe was a profile: what differs in the new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuilt: Option<&'a upm::profile::Diff>,
    /// With --explain-tracking: per path, which signals saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<Vec<super::tracking::JsonTracking>>,
    /// The archive's URL when it was imported from the binary host instead of built.
    binhost: Option<&'a str>,
    /// When it upgraded an installed version: what happened to the old version's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    upgraded: Option<Upgraded>,
}

#[derive(Serialize)]
struct Upgraded {
    from: String,
    /// Stale files removed.
    removed: Vec<JsonPath>,
    /// Stale files kept, with why.
    kept: Vec<KeptPath>,
    /// Configuration files: unchanged ones replaced, changed ones kept with the new one
    /// beside them (`new`), changed ones whose new version is the old one's.
    configs_replaced: Vec<JsonPath>,
    configs_kept: Vec<KeptConfig>,
    configs_unchanged_upstream: Vec<JsonPath>,
    /// Old library files kept (--force) because other packages need them.
    kept_libs: Vec<KeptPath>,
    /// Stale files whose original (a file no package owned) was put back.
    restored: Vec<JsonPath>,
}

#[derive(Serialize)]
struct KeptPath {
    #[serde(flatten)]
    path: JsonPath,
    why: String,
}

#[derive(Serialize)]
struct KeptConfig {
    #[serde(flatten)]
    path: JsonPath,
    new: JsonPath,
}

impl Upgraded {
    fn new(d: &upm::ops::upgrade::Done) -> Upgraded {
        let paths = |v: &[std::path::PathBuf]| v.iter().map(|p| JsonPath::new(p)).collect();
        Upgraded {
            from: d.old_version.clone(),
            removed: paths(&d.removed),
            kept: d
                .kept
                .iter()
                .map(|(p, why)| KeptPath {
                    path: JsonPath::new(p),
                    why: why.clone(),
                })
                .collect(),
            configs_replaced: paths(&d.configs.replaced),
            configs_kept: d
                .configs
                .kept
                .iter()
                .map(|(p, n)| KeptConfig {
                    path: JsonPath::new(p),
                    new: JsonPath::new(n),
                })
                .collect(),
            configs_unchanged_upstream: paths(&d.configs.kept_same),
            kept_libs: d
                .kept_libs
                .iter()
                .map(|k| KeptPath {
                    path: JsonPath::new(&k.path),
                    why: k.needed_by.clone(),
                })
                .collect(),
            restored: paths(&d.restored),
        }
    }
}

/// Where the time went, in milliseconds.
#[derive(Serialize)]
struct Timings {
    /// Unpacking and the phases before the install phase.
    build_ms: u64,
    /// The install phase's trial run.
    trial_ms: u64,
    /// From the trial's start to the last database write (takeover, watcher, install phase,
    /// hashing, root steps, recording).
    install_ms: u64,
    /// Reading the ELF files' dynamic sections (part of install_ms), in microseconds.
    elf_scan_us: u64,
}

#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn sha256_arg(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{s:?} is not a sha256: expected 64 hexadecimal digits"
        ))
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    build(ctx, args.recipe, args.build)
}

/// Install (or upgrade to) `recipe` and print what was done.
pub fn build(ctx: &Ctx, recipe: String, args: BuildArgs) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let overrides = super::overrides(&args.sets)?;
    let done = install::install(
        ctx,
        &Options {
            recipe,
            overrides,
            sources_dirs: args.sources_dirs,
            source: args.source,
            sha256: args.sha256,
            jobs: args.jobs,
            no_check: args.no_check,
            keep_build: args.keep_build,
            keep_failed: args.keep_failed,
            build: args.build,
            force: args.force,
            reinstall: args.reinstall,
        },
    )?;
    let applied = done.steps.iter().filter(|s| s.applied).count();
    if p.json_mode() {
        p.json(&Installed {
            name: &done.name,
            version: &done.version,
            user: User {
                name: &done.user.name,
                uid: done.user.uid,
                gid: done.user.gid,
            },
            files: done.files.len(),
            root_steps_applied: applied,
            root_steps_skipped: done.steps.len() - applied,
            reports: done.reports.iter().map(super::JsonReport::new).collect(),
            replaced: done.replaced.iter().map(|p| JsonPath::new(p)).collect(),
            seconds: done.seconds,
            timings: Timings {
                build_ms: done.timings.build_ms,
                trial_ms: done.timings.trial_ms,
                install_ms: done.timings.install_ms,
                elf_scan_us: done.timings.elf_us,
            },
            profile: done
                .profile
                .as_deref()
                .map(|i| JsonPath::new(&upm::fsutil::on_host(&ctx.root, i))),
            rebuilt: done.rebuilt.as_ref(),
            tracking: args.explain_tracking.then(|| {
                done.tracking
                    .iter()
                    .map(super::tracking::JsonTracking::new)
                    .collect()
            }),
            binhost: done.binhost.as_deref(),
            upgraded: done.upgraded.as_ref().map(Upgraded::new),
        });
    } else {
        let dirs = done
            .files
            .iter()
            .filter(|f| f.kind == upm::fsutil::FileKind::Dir)
            .count();
        p.line(&format!(
            "installed {} {}{} as package user {} (uid {}): {} paths ({} files and links, {} directories), \
             {} root step(s) applied, in {:.1} s",
            done.name,
            done.version,
            match &done.binhost {
                Some(url) => format!(" from the binary host ({url})"),
                None => String::new(),
            },
            done.user.name,
            done.user.uid,
            done.files.len(),
            done.files.len() - dirs,
            dirs,
            applied,
            done.seconds
        ));
        if let Some(path) = &done.profile {
            p.note(&format!("profile: {}", quoted(path)));
        }
        if let Some(u) = &done.upgraded {
            upgraded(p, &done.name, &done.version, u);
        }
        if let Some(d) = &done.rebuilt {
            rebuilt(p, d);
        }
        if args.explain_tracking {
            super::tracking::show(p, &done.tracking);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// After an upgrade: what happened to the old version's files.
fn upgraded(p: &upm::printer::Printer, name: &str, version: &str, u: &upm::ops::upgrade::Done) {
    p.line(&format!(
        "upgraded {name} {} to {version}: {} stale path(s) removed, {} kept; {} configuration \
         file(s) replaced, {} kept with the new one as .upmnew",
        u.old_version,
        u.removed.len(),
        u.kept.len(),
        u.configs.replaced.len(),
        u.configs.kept.len()
    ));
    for (path, why) in &u.kept {
        p.warn(&format!("{}: kept: {why}", quoted(path)));
    }
    for (path, new) in &u.configs.kept {
        p.warn(&format!(
            "{}: changed since it was installed, kept; the new version is {} (`upm configs --diff`)",
            quoted(path),
            quoted(new)
        ));
    }
    for path in &u.configs.kept_same {
        p.note(&format!(
            "{}: changed since it was installed, kept (the new version's is the same as the old one's)",
            quoted(path)
        ));
    }
    for path in &u.restored {
        p.note(&format!(
            "{}: no longer installed; the file it had replaced was put back",
            quoted(path)
        ));
    }
    if !u.kept_libs.is_empty() {
        p.warn(&upm::ops::upgrade::kept_libs_advice(name, &u.kept_libs));
    }
}

/// After an install from a profile: whether the manifest came out the same.
fn rebuilt(p: &upm::printer::Printer, d: &upm::profile::Diff) {
    let content = d.manifest.iter().filter(|f| f.content_only).count();
    if d.same_manifest() {
        p.note(&format!(
            "same manifest as the profile it was built from (paths, types, modes, owners){}",
            if content > 0 {
                format!("; {content} file(s) differ in content (build embeds timestamps?)")
            } else {
                String::new()
            }
        ));
    } else {
        p.warn("the manifest differs from the profile it was built from:");
    }
    for f in &d.manifest {
        p.detail(&format!(
            "{} {}: {}",
            f.change,
            f.path,
            f.details.join(", ")
        ));
    }
}
