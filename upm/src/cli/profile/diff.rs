//! `upm profile diff A B`: what differs between two profiles (installed packages or files);
//! `upm profile diff HOSTDIR`: how this host differs from a host profile.

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::pathtext::quoted;
use upm::profile::{self, Change};

#[derive(clap::Args)]
pub struct Args {
    /// An installed package, or a profile file; alone, a host profile (a directory holding
    /// host.toml, or the file).
    a: String,
    /// An installed package, or a profile file.
    b: Option<String>,
}

fn sign(change: &str) -> char {
    match change {
        "added" => '+',
        "removed" => '-',
        _ => '~',
    }
}

/// Continuation lines of a multi-line value, indented under its first.
fn indent(s: &str) -> String {
    s.trim_end().replace('\n', "\n         ")
}

fn show_change(c: &Change) -> String {
    match (c.a.as_deref(), c.b.as_deref()) {
        (Some(a), Some(b)) if !a.contains('\n') && !b.contains('\n') && a.len() + b.len() < 100 => {
            format!("  ~ {}: {a} -> {b}", c.what)
        }
        (Some(a), Some(b)) => format!(
            "  ~ {}:\n      A: {}\n      B: {}",
            c.what,
            indent(a),
            indent(b)
        ),
        (None, Some(b)) => format!("  + {}: {}", c.what, indent(b)),
        (Some(a), None) => format!("  - {}: {}", c.what, indent(a)),
        (None, None) => format!("  {} {}", sign(c.change), c.what),
    }
}

/// This host against a host profile.
fn host(ctx: &Ctx, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let h = profile::hostfile::read(dir)?;
    let db = upm::ops::query::open(ctx)?;
    let changes = profile::hostfile::compare(&db, &h)?;
    if p.json_mode() {
        p.json(&changes);
    } else {
        for c in &changes {
            let of = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            p.line(&match c.change {
                "missing" => format!("- {} {} (missing here)", c.name, of(&c.profile)),
                "extra" => format!("+ {} {} (not in the host profile)", c.name, of(&c.here)),
                _ => format!(
                    "~ {}: {} {} here, {} in the host profile",
                    c.name,
                    c.change,
                    of(&c.here),
                    of(&c.profile)
                ),
            });
        }
        p.line(&if changes.is_empty() {
            format!(
                "this host matches {} ({} package(s))",
                quoted(&h.file),
                h.packages.len()
            )
        } else {
            format!("this host differs from {}", quoted(&h.file))
        });
    }
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let Some(arg_b) = &args.b else {
        return host(ctx, std::path::Path::new(&args.a));
    };
    let (path_a, a) = profile::load(ctx, &args.a)?;
    let (path_b, b) = profile::load(ctx, arg_b)?;
    let d = profile::diff(&a, &b);
    if p.json_mode() {
        p.json(&d);
    } else {
        p.line(&format!(
            "A: {} ({} {})\nB: {} ({} {})",
            quoted(&path_a),
            a.name,
            a.version,
            quoted(&path_b),
            b.name,
            b.version
        ));
        for (title, changes) in [("recipe", &d.recipe), ("commands", &d.commands)] {
            if !changes.is_empty() {
                p.line(&format!("{title}:"));
                for c in changes {
                    p.line(&show_change(c));
                }
            }
        }
        if !d.manifest.is_empty() {
            p.line("manifest:");
            for f in &d.manifest {
                p.line(&format!(
                    "  {} {}: {}",
                    sign(f.change),
                    f.path,
                    f.details.join(", ")
                ));
            }
        }
        let content = d.manifest.iter().filter(|f| f.content_only).count();
        p.line(&if d.differs() {
            "the profiles differ".to_string()
        } else if content > 0 {
            format!(
                "same recipe, commands and manifest (paths, types, modes, owners); {content} file(s) \
                 differ in content only"
            )
        } else {
            "no differences".to_string()
        });
    }
    Ok(if d.differs() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
