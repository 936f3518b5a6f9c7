//! `upm user add PKG...` and `upm user list`: package users of the target root.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::pathtext::{self, quoted};
use upm::pkguser::{self, PkgUser};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Create package users (user and group named after the package, or by the naming rule
    /// `users.collision`/`users.prefix` when the system already has that name; member of
    /// `install`, home /usr/src/PKG); an existing package user is left as it is.
    Add {
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// List the package users (uids in `users.first`..`users.last` of upm.toml, by default
    /// 10000-19999): package, user, uid, gid, home.
    List,
}

/// A package user in `--json` output.
#[derive(Serialize)]
struct User<'a> {
    package: &'a str,
    name: &'a str,
    uid: u32,
    gid: u32,
    home: String,
}

impl<'a> User<'a> {
    fn new(u: &'a PkgUser) -> User<'a> {
        User {
            package: &u.package,
            name: &u.name,
            uid: u.uid,
            gid: u.gid,
            home: pathtext::text(&u.home),
        }
    }
}

/// " for package sudo" when the user is named otherwise (`pkg-sudo`).
fn for_package(u: &PkgUser) -> String {
    if u.name == u.package {
        String::new()
    } else {
        format!(" for package {}", u.package)
    }
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
                    out.push(u);
                } else if created {
                    p.line(&format!(
                        "created package user {}{} (uid {}, gid {}, home {})",
                        u.name,
                        for_package(&u),
                        u.uid,
                        u.gid,
                        quoted(&u.home)
                    ));
                } else {
                    p.line(&format!(
                        "package user {}{} exists (uid {})",
                        u.name,
                        for_package(&u),
                        u.uid
                    ));
                }
            }
            if p.json_mode() {
                p.json(&out.iter().map(User::new).collect::<Vec<_>>());
            }
        }
        Sub::List => {
            let users = pkguser::list(&ctx.root, &ctx.cfg.ids)?;
            if p.json_mode() {
                p.json(&users.iter().map(User::new).collect::<Vec<_>>());
            } else {
                for u in users {
                    p.line(&format!(
                        "{:<24} {:<24} {:>6} {:>6}  {}",
                        u.package,
                        u.name,
                        u.uid,
                        u.gid,
                        quoted(&u.home)
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
