//! `upm rdepends PKG`: the installed packages whose files need a library PKG provides.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::{libs, query};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The installed package.
    name: String,
}

/// One needing file in `--json` output.
#[derive(Serialize)]
struct Use<'a> {
    package: &'a str,
    #[serde(flatten)]
    path: JsonPath,
    soname: &'a str,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let uses = libs::rdepends(ctx, &db, &args.name)?;
    if p.json_mode() {
        p.json(
            &uses
                .iter()
                .map(|u| Use {
                    package: &u.package,
                    path: JsonPath::new(&u.path),
                    soname: &u.soname,
                })
                .collect::<Vec<_>>(),
        );
    } else {
        let mut out = String::new();
        for u in &uses {
            out.push_str(&format!(
                "{}: {} needs {}\n",
                u.package,
                quoted(&u.path),
                u.soname
            ));
        }
        if uses.is_empty() {
            out.push_str(&format!(
                "no installed package needs a library of {}\n",
                args.name
            ));
        }
        p.raw(&out);
    }
    Ok(ExitCode::SUCCESS)
}
