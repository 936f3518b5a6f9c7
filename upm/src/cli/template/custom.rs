//! `upm template custom [--force | --track | --track-end=NAME] [CMD...] TARGET`: the last
//! argument is always the target; without a command, `$EDITOR` edits it. The questions are
//! asked on the terminal.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::Repo;
use upm::template::custom::{self, Ask, Impacted, Inherited, Mode};
use upm::template::impact::Impact;

#[derive(clap::Args)]
pub struct Args {
    /// Cut an inherited file off without asking, and go on whatever the impact.
    #[arg(long, conflicts_with_all = ["track", "track_end"])]
    force: bool,
    /// Track an inherited file upwards to the template it really comes from, and edit it there.
    #[arg(long, conflicts_with = "track_end")]
    track: bool,
    /// Track upwards until template NAME and cut off there.
    #[arg(long, value_name = "NAME")]
    track_end: Option<String>,
    /// The command to run, then the target (a file or directory in a template or host) — the
    /// last argument is always the target: `upm template custom -- cp -r /tmp/httpd/conf
    /// templates/httpd/etc/httpd/`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "[CMD...] TARGET"
    )]
    words: Vec<OsString>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (target, cmd) = args.words.split_last().expect("required");
    let cmd = if cmd.is_empty() {
        custom::editor_command()
    } else {
        cmd.to_vec()
    };
    let mode = if args.force {
        Mode::Force
    } else if args.track {
        Mode::Track
    } else if let Some(n) = args.track_end {
        Mode::TrackEnd(n)
    } else {
        Mode::Ask
    };
    let (repo, rel) = Repo::locate(Path::new(target))?;
    let mut ask = Terminal {
        tty: std::io::stdin().is_terminal(),
        refused: None,
    };
    let Some(prep) = custom::prepare(&repo, &rel, &mode, &mut ask)? else {
        if let Some(why) = ask.refused {
            anyhow::bail!(
                "{why}: a question needs a terminal; run it on one, or pass --force (cut off \
                 and go on) or --track"
            );
        }
        p.note("cancelled; nothing changed");
        return Ok(ExitCode::FAILURE);
    };
    if prep.path != rel {
        p.note(&format!("editing {}", prep.path.display()));
    }
    for u in &prep.excluded {
        p.note(&format!("{} keeps its current copy (cut off)", u.display()));
    }
    if !prep.impact.is_empty() && mode == Mode::Force {
        p.note("these templates and hosts will see this change:");
        for i in &prep.impact {
            p.detail(&format!("  {}", i.unit.display()));
        }
    }
    let dir = target.as_encoded_bytes().ends_with(b"/");
    custom::run(&repo, &cmd, &prep.path, dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Questions on the terminal (stderr), answers from stdin.
struct Terminal {
    tty: bool,
    refused: Option<String>,
}

impl Terminal {
    fn answer(&mut self, question: &str, about: &Path) -> Option<String> {
        if !self.tty {
            self.refused = Some(about.display().to_string());
            return None;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question} ");
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_lowercase()),
        }
    }
}

impl Ask for Terminal {
    fn inherited(&mut self, path: &Path, from: &Path) -> Inherited {
        if !self.tty {
            self.refused = Some(path.display().to_string());
            return Inherited::Cancel;
        }
        eprintln!(
            "upm: {} is inherited from {}.\n  Cut off the relationship (a copy of its own), \
             or track upwards (edit it there)?",
            path.display(),
            from.display()
        );
        loop {
            match self.answer("(cut/track/cancel)", path).as_deref() {
                None | Some("cancel" | "no" | "n" | "c") => return Inherited::Cancel,
                Some("cut" | "yes" | "y") => return Inherited::CutOff,
                Some("track" | "t") => return Inherited::Track,
                Some(_) => eprintln!("answer cut, track or cancel"),
            }
        }
    }

    fn impacted(&mut self, path: &Path, units: &[Impact]) -> Impacted {
        if !self.tty {
            self.refused = Some(path.display().to_string());
            return Impacted::No;
        }
        eprintln!("upm: these templates and hosts will be impacted by this modification:");
        for (i, u) in units.iter().enumerate() {
            eprintln!("  {}. {}", i + 1, u.unit.display());
        }
        loop {
            let Some(a) = self.answer("do you want to continue? (yes/no/exclude N...)", path)
            else {
                return Impacted::No;
            };
            let mut words = a.split_whitespace();
            match words.next() {
                Some("yes" | "y") => return Impacted::Yes,
                Some("no" | "n") => return Impacted::No,
                Some("exclude" | "e") => {
                    let picked: Option<Vec<PathBuf>> = words
                        .map(|w| {
                            w.parse::<usize>()
                                .ok()
                                .and_then(|n| units.get(n.wrapping_sub(1)))
                                .map(|u| u.unit.clone())
                        })
                        .collect();
                    match picked {
                        Some(p) if !p.is_empty() => return Impacted::Exclude(p),
                        _ => eprintln!("exclude which? give their numbers: exclude 3"),
                    }
                }
                _ => eprintln!("answer yes, no or exclude N..."),
            }
        }
    }
}
