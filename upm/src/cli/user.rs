//! `upm user add PKG...` and `upm user list`: package users of the target root.

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::pkguser::{self, PkgUser};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Create package users (user and group named after the package, member of `install`,
    /// home /usr/src/PKG); an existing package user is left as it is.
    Add {
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// List the package users (uids in `users.first`..`users.last` of upm.toml, by default
    /// 10000-19999).
    List,
}

fn json(u: &PkgUser) -> serde_json::Value {
    serde_json::json!({
        "name": u.name, "uid": u.uid, "gid": u.gid, "home": u.home.display().to_string(),
    })
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    match args.cmd {
        Sub::Add { packages } => {
            let mut out = Vec::new();
            for name in &packages {
                if !upm::recipe::valid_name(name) {
                    anyhow::bail!(
                        "{name:?} cannot be a user name: use letters, digits, '_' and '-', \
                         starting with a letter, at most 32 characters"
                    );
                }
                let (u, created) = pkguser::add(&ctx.root, name, &ctx.cfg.ids)?;
                if p.json_mode() {
                    out.push(json(&u));
                } else if created {
                    p.line(&format!(
                        "created package user {} (uid {}, gid {}, home {})",
                        u.name,
                        u.uid,
                        u.gid,
                        u.home.display()
                    ));
                } else {
                    p.line(&format!("package user {} exists (uid {})", u.name, u.uid));
                }
            }
            if p.json_mode() {
                p.json(&serde_json::Value::from(out));
            }
        }
        Sub::List => {
            let users = pkguser::list(&ctx.root, &ctx.cfg.ids)?;
            if p.json_mode() {
                p.json(&serde_json::Value::from(
                    users.iter().map(json).collect::<Vec<_>>(),
                ));
            } else {
                for u in users {
                    p.line(&format!(
                        "{:<24} {:>6} {:>6}  {}",
                        u.name,
                        u.uid,
                        u.gid,
                        u.home.display()
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
