//! `upm profile diff A B`: what differs between two profiles (installed packages or files).

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::pathtext::quoted;
use upm::profile::{self, Change};

#[derive(clap::Args)]
pub struct Args {
    /// An installed package, or a profile file.
    a: String,
    /// An installed package, or a profile file.
    b: String,
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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (path_a, a) = profile::load(ctx, &args.a)?;
    let (path_b, b) = profile::load(ctx, &args.b)?;
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
