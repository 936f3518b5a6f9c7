//! `upm key generate|show|trust`: this root's signing key for binary archives, and the keys
//! whose archives `upm import` accepts.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::profile::keys;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Make this root's ed25519 signing key (etc/upm/signing.key, root-only; the public half
    /// in etc/upm/signing.pub) and trust it.
    Generate {
        /// A comment stored with the public key (default: the host name).
        #[arg(long)]
        comment: Option<String>,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Print this root's public key (the line another root's `upm key trust` takes).
    Show,
    /// Trust a public key (a .pub file): archives it signed are accepted by `upm import`.
    Trust {
        /// The public key file.
        file: PathBuf,
    },
    /// List the trusted keys.
    List,
}

#[derive(Serialize)]
struct Key<'a> {
    id: String,
    comment: &'a str,
    public: String,
}

fn json(k: &keys::PublicKey) -> Key<'_> {
    Key {
        id: k.id(),
        comment: &k.comment,
        public: k.line().trim_end().to_string(),
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    match args.command {
        Sub::Generate { comment, force } => {
            let comment = comment.unwrap_or_else(|| {
                nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let k = keys::generate(&ctx.root, &comment, force)?;
            if p.json_mode() {
                p.json(&json(&k));
            } else {
                p.line(&format!(
                    "generated signing key {} ({}); public key in {}",
                    k.id(),
                    k.comment,
                    keys::PUBLIC
                ));
                p.note("copy it to the hosts that import this root's archives: `upm key trust FILE` there");
            }
        }
        Sub::Show => {
            let k = keys::own_public(&ctx.root)?;
            if p.json_mode() {
                p.json(&json(&k));
            } else {
                p.raw(&k.line());
            }
        }
        Sub::Trust { file } => {
            let k = keys::read_public(&file)?;
            let at = keys::trust(&ctx.root, &k)?;
            if p.json_mode() {
                p.json(&json(&k));
            } else {
                p.line(&format!(
                    "trusting key {} ({}): {}",
                    k.id(),
                    k.comment,
                    at.display()
                ));
            }
        }
        Sub::List => {
            let ks = keys::trusted(&ctx.root);
            if p.json_mode() {
                p.json(&ks.iter().map(json).collect::<Vec<_>>());
            } else {
                for k in &ks {
                    p.line(&format!("{} {}", k.id(), k.comment));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
