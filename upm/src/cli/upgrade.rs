//! `upm upgrade PKG [RECIPE]`: build a newer version of an installed package and install it
//! over the old one.

use std::process::ExitCode;

use upm::ctx::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// The installed package to upgrade.
    name: String,
    /// The recipe or profile of the new version (a file, or a name in the recipe
    /// directories). Default: NAME in the recipe directories, then /usr/src/NAME/NAME.toml,
    /// then the newest /usr/src/NAME/NAME-VERSION.profile.toml newer than the installed one.
    recipe: Option<String>,
    #[command(flatten)]
    build: super::install::BuildArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let recipe = upm::ops::upgrade::find_recipe(ctx, &args.name, args.recipe.as_deref())?;
    ctx.printer.note(&format!(
        "{}: new version from {}",
        args.name,
        upm::pathtext::quoted(&recipe)
    ));
    super::install::build(ctx, recipe.display().to_string(), args.build)
}
