//! `upm tree get|set|convert|list`: configuration trees from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use super::SyntaxArg;
use anyhow::Context;
use upm::ctree::{self, Found, Key, Value};
use upm::ctx::Ctx;
use upm::pathtext::quoted;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Print a value (a key), or `key = value;` lines (a branch or a pattern such as `build.*`).
    Get {
        file: PathBuf,
        key: String,
        /// Do not apply templates, grafts or references: the file as written.
        #[arg(long)]
        raw: bool,
    },
    /// Set a key in place, keeping every other line and comment of the file.
    Set {
        file: PathBuf,
        key: String,
        /// A .ct literal (`4`, `true`, `["a", "b"]`, `"text"`) or plain text.
        value: String,
        /// Store VALUE as a string even if it reads as a number, boolean or list.
        #[arg(long)]
        string: bool,
    },
    /// Convert a file to the other syntax (printed, or written with -o).
    Convert {
        file: PathBuf,
        #[arg(long, value_enum)]
        to: SyntaxArg,
        /// Write here (atomically) instead of printing.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the keys of a file (under PREFIX, if given).
    List {
        file: PathBuf,
        prefix: Option<String>,
        #[arg(long)]
        raw: bool,
    },
}

fn load(ctx: &Ctx, file: &std::path::Path, raw: bool) -> anyhow::Result<ctree::Tree> {
    if raw {
        return Ok(ctree::parse_file(file)?);
    }
    let loaded = ctree::load(file)?;
    for w in &loaded.warnings {
        ctx.printer.warn(&w.to_string());
    }
    Ok(loaded.tree)
}

fn print_value(ctx: &Ctx, v: &Value) {
    match v {
        Value::List(items) => items.iter().for_each(|i| ctx.printer.line(i)),
        Value::Str(s) if s.ends_with('\n') => ctx.printer.raw(s),
        other => ctx.printer.line(&other.as_text()),
    }
}

/// Entries found by a pattern, in `--json` output: an object of dotted keys to values, in
/// tree order.
struct Entries<'a>(&'a [&'a ctree::Entry]);

impl serde::Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|e| (e.key.to_string(), &e.value)))
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    match args.cmd {
        Sub::Get { file, key, raw } => {
            let tree = load(ctx, &file, raw)?;
            match tree
                .find(&key)
                .map_err(|m| anyhow::anyhow!("{}: {m}", quoted(&file)))?
            {
                Found::Leaf(v) if p.json_mode() => p.json(v),
                Found::Leaf(v) => print_value(ctx, v),
                Found::Entries(entries) if p.json_mode() => {
                    p.json(&Entries(&entries));
                }
                Found::Entries(entries) => {
                    for e in entries {
                        p.line(&format!("{} = {};", e.key, e.value));
                    }
                }
            }
        }
        Sub::Set {
            file,
            key,
            value,
            string,
        } => {
            let key = Key::parse(&key).map_err(|m| anyhow::anyhow!("bad key {key:?}: {m}"))?;
            let value = if string {
                Value::Str(value)
            } else {
                Value::from_cli(&value)
            };
            ctree::set_in_file(&file, &key, &value)?;
        }
        Sub::Convert { file, to, output } => {
            let text = ctree::convert_file(&file, to.into())?;
            match output {
                Some(out) => upm::fsutil::write_atomic(&out, text.as_bytes())
                    .with_context(|| format!("cannot write {}", quoted(&out)))?,
                None => p.raw(&text),
            }
        }
        Sub::List { file, prefix, raw } => {
            let tree = load(ctx, &file, raw)?;
            let keys: Vec<String> = match &prefix {
                None => tree.entries().iter().map(|e| e.key.to_string()).collect(),
                Some(q) => match tree
                    .find(q)
                    .map_err(|m| anyhow::anyhow!("{}: {m}", quoted(&file)))?
                {
                    Found::Leaf(_) => vec![q.clone()],
                    Found::Entries(es) => es.iter().map(|e| e.key.to_string()).collect(),
                },
            };
            if p.json_mode() {
                p.json(&keys);
            } else {
                keys.iter().for_each(|k| p.line(k));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
