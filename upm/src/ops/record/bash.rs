//! The interactive recording shell. With bash (when the root has `/bin/bash`), upm writes an
//! rcfile (`$HOME/.upm/record.bashrc`) whose DEBUG trap and PROMPT_COMMAND tell upm, through
//! two FIFOs in the package's home, when a command line starts and when it ends (see
//! [`super::protocol`]); `commit`, `rollback [--undo]` and `phase NAME` are shell functions
//! that set a control word the next record carries. At each end the shell waits until upm has
//! cut the command's paths (the watcher barrier) and done any control work, so nothing the next
//! command does is counted for this one. The FIFOs are opened per record, so the commands the
//! shell runs inherit no descriptor of upm's.
//!
//! Without bash (or with `--shell sh`), upm drives a simpler loop itself: it reads a line,
//! handles the same control words, `cd DIR` and `exit`, and runs any other line with
//! `sh -c` as the package user in the current directory (so variables do not carry over from
//! one line to the next).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Instant;

use crate::fsutil::on_host;
use crate::recipe::Phase;
use crate::runner::as_fs_user;

use super::protocol::{Control, End, Parser, Record};
use super::session::Session;
use super::{Options, Recorded, identity, report_commit, report_rollback};
use crate::ops::{Error, io};

/// The rcfile: history keeps every line whole; the trap and the prompt hook talk to upm.
const RCFILE: &str = r#"# The recording shell of `upm record` (written by upm for this session).
unset HISTFILE
HISTCONTROL=
HISTIGNORE=
shopt -s cmdhist lithist
__upm_seq=0
__upm_armed=1
__upm_started=
__upm_control=
commit() { __upm_control=commit; }
rollback() { __upm_control="rollback $*"; }
phase() { __upm_control="phase $*"; }
__upm_preexec() {
  [ -n "$__upm_armed" ] || return 0
  case "$BASH_COMMAND" in __upm_precmd*) return 0 ;; esac
  __upm_armed=
  __upm_started=1
  printf 'start\0%s\0' "$PWD" > "$__upm_in"
}
__upm_precmd() {
  local status=$? line reply
  __upm_armed=1
  [ -n "$__upm_started" ] || return 0
  __upm_started=
  line=$(HISTTIMEFORMAT= builtin history 1)
  [[ $line =~ ^[[:space:]]*[0-9]+\*?[[:space:]][[:space:]](.*)$ ]] && line=${BASH_REMATCH[1]}
  __upm_seq=$((__upm_seq + 1))
  printf 'end\0%s\0%s\0%s\0%s\0%s\0' "$__upm_seq" "$status" "$PWD" "$__upm_control" "$line" > "$__upm_in"
  __upm_control=
  while IFS= read -r reply < "$__upm_out"; do
    [ "$reply" = "$__upm_seq" ] && break
  done
}
PROMPT_COMMAND=__upm_precmd
trap __upm_preexec DEBUG
"#;

/// What the session loop hears: a record from the shell (and when it came), or the shell's end.
enum Msg {
    Record(Record, Instant),
    Exited(i32),
}

/// Run the recording shell until it exits; commits happen as the user asks.
pub(super) fn interactive(
    s: &mut Session<'_>,
    opts: &Options,
    env: &[(String, String)],
    out: &mut Recorded,
) -> Result<(), Error> {
    let shell = match opts.shell.as_deref() {
        Some("sh") => None,
        Some(other) => Some(PathBuf::from(other)),
        None => {
            let b = crate::runner::shell(&s.ctx.root, None);
            (b == Path::new("/bin/bash")).then_some(b)
        }
    };
    match shell {
        Some(bash) => with_bash(s, &bash, opts, env, out),
        None => line_loop(s, env, out),
    }
}

/// The two FIFOs (inside the root) and the rcfile, made fresh for this session.
struct Files {
    to_upm: PathBuf,
    from_upm: PathBuf,
    rcfile: PathBuf,
}

fn make_files(s: &Session<'_>, ps1: &str) -> Result<Files, Error> {
    let dir = s.user.home.join(".upm");
    let f = Files {
        to_upm: dir.join("record.in"),
        from_upm: dir.join("record.out"),
        rcfile: dir.join("record.bashrc"),
    };
    let host = |p: &Path| on_host(&s.ctx.root, p);
    for fifo in [&f.to_upm, &f.from_upm] {
        let h = host(fifo);
        let _ = std::fs::remove_file(&h);
        as_fs_user(s.user.uid, s.user.gid, || {
            nix::unistd::mkfifo(&h, nix::sys::stat::Mode::from_bits_truncate(0o600))
        })
        .map_err(|e| io(&h)(e.into()))?;
    }
    // The names first: the trap set at the end of the rcfile uses them.
    let text = format!(
        "__upm_in={}\n__upm_out={}\nPS1={}\n{RCFILE}",
        quote(&f.to_upm),
        quote(&f.from_upm),
        quote(Path::new(ps1))
    );
    let rc = host(&f.rcfile);
    crate::fsutil::write_atomic_new(&rc, text.as_bytes(), crate::fsutil::NewFile::root(0o644))
        .map_err(io(&rc))?;
    Ok(f)
}

/// A word for bash, single-quoted.
fn quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

fn with_bash(
    s: &mut Session<'_>,
    bash: &Path,
    opts: &Options,
    env: &[(String, String)],
    out: &mut Recorded,
) -> Result<(), Error> {
    let ps1 = format!("(upm record {}) \\w\\$ ", s.name);
    let files = make_files(s, &ps1)?;
    let host = |p: &Path| on_host(&s.ctx.root, p);
    // Held open for reading and writing, so neither side's open ever waits for the other.
    let open = |p: PathBuf| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .map_err(io(&p))
    };
    let records = open(host(&files.to_upm))?;
    let mut acks = open(host(&files.from_upm))?;
    let mut env = env.to_vec();
    env.push(("SHELL".into(), bash.display().to_string()));
    if let Some(t) = &opts.term {
        env.push(("TERM".into(), t.clone()));
    }
    let mut cmd = Command::new(bash);
    cmd.arg("--rcfile")
        .arg(&files.rcfile)
        .arg("-i")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let cwd = s.user.home.join("build");
    crate::runner::enter(&mut cmd, &s.ctx.root, &cwd, identity(s)).map_err(|e| {
        Error::Run(crate::runner::Error::Spawn {
            label: format!("{} record shell", s.name),
            source: e,
        })
    })?;
    let mut child = cmd.spawn().map_err(|e| {
        Error::Run(crate::runner::Error::Spawn {
            label: format!("{} record shell ({})", s.name, bash.display()),
            source: e,
        })
    })?;
    let _quiet = crate::sys::TerminalSignals::ignore();
    s.ctx.printer.note(&format!(
        "recording {} {} as {}: `phase NAME` labels what follows (install by default), \
         `commit` records, `rollback [--undo]` forgets, `exit` commits and ends",
        s.name, s.version, s.user.name
    ));
    let (tx, rx) = mpsc::channel();
    let reader = tx.clone();
    let mut from_shell = records.try_clone().map_err(io(&host(&files.to_upm)))?;
    std::thread::spawn(move || {
        let mut parser = Parser::default();
        let mut buf = [0u8; 4096];
        loop {
            let n = match from_shell.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let at = Instant::now();
            for r in parser.push(&buf[..n]) {
                if reader.send(Msg::Record(r, at)).is_err() {
                    return;
                }
            }
        }
    });
    std::thread::spawn(move || {
        let status = child.wait().map_or(1, |st| {
            st.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
            })
        });
        let _ = tx.send(Msg::Exited(status));
    });
    let mut started: Option<Start> = None;
    for msg in rx {
        match msg {
            Msg::Record(Record::Start(cwd), at) => {
                started = Some(Start {
                    at,
                    wall: crate::db::now(),
                    cwd: PathBuf::from(cwd),
                })
            }
            Msg::Record(Record::End(end), at) => {
                let start = started.take().unwrap_or_else(|| Start {
                    at,
                    wall: crate::db::now(),
                    cwd: PathBuf::from(&end.cwd),
                });
                if let Err(e) = ended(s, &end, &start, at.duration_since(start.at), out) {
                    s.ctx.printer.warn(&format!("upm record: {e}"));
                }
                let _ = writeln!(acks, "{}", end.seq);
            }
            Msg::Exited(status) => {
                out.status = status;
                break;
            }
        }
    }
    // The reader thread stays blocked on the FIFO (upm holds it open) and ends with upm.
    drop(records);
    Ok(())
}

/// Where and when a line started.
struct Start {
    at: Instant,
    wall: i64,
    /// The shell's directory when it started: where the line is replayed from.
    cwd: PathBuf,
}

/// Handle the end of a line: record it, or do its control work.
fn ended(
    s: &mut Session<'_>,
    end: &End,
    start: &Start,
    duration: std::time::Duration,
    out: &mut Recorded,
) -> Result<(), Error> {
    match &end.control {
        None => s.ended(&end.line, &start.cwd, end.status, start.wall, duration),
        Some(c) => {
            s.cut_loose()?;
            control(s, c, out)
        }
    }
}

/// Do what a control word asks.
fn control(s: &mut Session<'_>, c: &Control, out: &mut Recorded) -> Result<(), Error> {
    let p = &s.ctx.printer;
    match c {
        Control::Commit => match s.commit()? {
            Some(done) => {
                report_commit(s, &done);
                out.commits.push(done);
            }
            None => p.note("nothing to commit"),
        },
        Control::Rollback { undo } => {
            let r = s.rollback(*undo)?;
            report_rollback(s, &r, *undo);
        }
        Control::Phase(name) => match Phase::from_name(name) {
            Some(ph) => {
                s.phase = ph;
                p.note(&format!("the next commands belong to the {ph} phase"));
            }
            None => p.warn(&format!(
                "no phase {name:?}: use prepare, configure, compile, check or install"
            )),
        },
        Control::Unknown(text) => p.warn(&format!(
            "{text:?}: use `commit`, `rollback`, `rollback --undo` or `phase NAME`"
        )),
    }
    Ok(())
}

/// The loop upm drives when the root has no bash: one line at a time from upm's standard
/// input, each run with `sh -c` as the package user.
fn line_loop(
    s: &mut Session<'_>,
    env: &[(String, String)],
    out: &mut Recorded,
) -> Result<(), Error> {
    let mut cwd = s.user.home.join("build");
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    s.ctx.printer.note(&format!(
        "recording {} {} as {} (sh: each line runs on its own; `cd DIR` changes directory): \
         `phase NAME`, `commit`, `rollback [--undo]`, `exit`",
        s.name, s.version, s.user.name
    ));
    loop {
        eprint!("(upm record {}) {}$ ", s.name, cwd.display());
        let _ = std::io::stderr().flush();
        let Some(Ok(line)) = lines.next() else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let result = match words.as_slice() {
            [] => Ok(()),
            ["exit"] => break,
            ["cd"] | ["cd", _] => {
                let to = words
                    .get(1)
                    .map_or(s.user.home.join("build"), |d| cwd.join(d));
                let to = crate::fsutil::absolute(&to);
                if on_host(&s.ctx.root, &to).is_dir() {
                    cwd = to;
                } else {
                    s.ctx
                        .printer
                        .warn(&format!("cd: no directory {}", to.display()));
                }
                Ok(())
            }
            ["commit"] => control(s, &Control::Commit, out),
            ["rollback"] => control(s, &Control::Rollback { undo: false }, out),
            ["rollback", "--undo"] => control(s, &Control::Rollback { undo: true }, out),
            ["phase", name] => control(s, &Control::Phase(name.to_string()), out),
            _ => run_line(s, &line, &cwd, env),
        };
        if let Err(e) = result {
            s.ctx.printer.warn(&format!("upm record: {e}"));
        }
    }
    Ok(())
}

/// Run one line with `sh -c` as the package user, on upm's terminal, and record it.
fn run_line(
    s: &mut Session<'_>,
    line: &str,
    cwd: &Path,
    env: &[(String, String)],
) -> Result<(), Error> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(line)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let spawn_err = |e| {
        Error::Run(crate::runner::Error::Spawn {
            label: format!("{} record", s.name),
            source: e,
        })
    };
    crate::runner::enter(&mut cmd, &s.ctx.root, cwd, identity(s)).map_err(spawn_err)?;
    let wall = crate::db::now();
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // A Ctrl-C on the terminal ends the line, not the session.
    let quiet = crate::sys::TerminalSignals::ignore();
    let status = child.wait().map_err(spawn_err)?;
    drop(quiet);
    let status = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    s.ended(line, cwd, status, wall, t0.elapsed())
}
