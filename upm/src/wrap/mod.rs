//! The wrappers put first in PATH during every phase, so that the classic package-user failures
//! just work without editing upstream makefiles. The `upm` binary is the wrapper: invoked under
//! the name of one of [`NAMES`], it acts as that tool.
//!
//! As a package user:
//! - `install -d DIR` and `chmod MODE DIR` on a directory the package does not own (an install
//!   directory) leave it alone instead of failing;
//! - `install -o/-g`, `chown` and `chgrp` install or leave the file as the package user's and
//!   record a root step (`chown root:root /usr/bin/su`) that upm applies afterwards when the
//!   recipe allows it;
//! - `chmod u+s`/`chmod 4755` and `install -m 4755` on a file are run, and recorded as a
//!   `setuid` (or `setgid`) step: upm keeps the bit only on a file a root step made root's;
//! - `ldconfig`, `mknod` and `install-info` (which edits the info `dir` file every package
//!   shares) are recorded, not run.
//!
//! As root (the recipe's `root` commands) every wrapper runs the real tool untouched.
//! Root steps are lines `STEP<TAB>ARG<TAB>PATH` in the file named by `UPM_STEPS`.

mod elf;
mod install;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::envvars;
use crate::fsutil::absolute;
use crate::pathtext::quoted;

/// The tools upm wraps.
pub const NAMES: &[&str] = &[
    "install",
    "chmod",
    "chown",
    "chgrp",
    "ldconfig",
    "mknod",
    "install-info",
];

/// Separates the arguments of a recorded `install-info` step.
pub const ARG_SEP: char = '\u{1f}';

/// A recorded root step as the command it stands for, its words quoted as a shell needs them:
/// `install-info --info-dir=/usr/share/info /usr/share/info/x.info`, `chown -R root:root
/// /usr/bin/su`. For messages and `upm info`.
pub fn command(step: &str, arg: &str, path: &Path) -> String {
    let mut words = vec![step.to_string()];
    match step {
        "ldconfig" => {}
        // Its arguments hold the file already.
        "install-info" => words.extend(arg.split(ARG_SEP).map(|w| quoted(w).to_string())),
        _ => {
            words.extend(arg.split_whitespace().map(|w| quoted(w).to_string()));
            words.push(quoted(path).to_string());
        }
    }
    words.join(" ")
}

/// A recorded root step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `chown`, `chgrp`, `setuid`, `setgid`, `ldconfig`, `mknod` or `install-info`.
    pub step: String,
    /// The owner spec (`root:root`), group, mode (`u+s`, `4755`) or node spec (`c 4 64`); `-R `
    /// in front means recursive.
    pub arg: String,
    pub path: PathBuf,
}

impl Step {
    /// The step as a record line (the format of `upm-rootstep`, shared with the shim).
    pub fn line(&self) -> Vec<u8> {
        upm_rootstep::Record::new(
            &self.step,
            self.arg.as_bytes(),
            self.path.as_os_str().as_bytes(),
        )
        .line()
        .unwrap_or_default()
    }

    /// Parse a steps file; lines that are not steps are skipped.
    pub fn parse_all(data: &[u8]) -> Vec<Step> {
        upm_rootstep::Record::parse_all(data)
            .into_iter()
            .filter_map(|r| {
                Some(Step {
                    step: String::from_utf8(r.kind).ok()?,
                    arg: String::from_utf8(r.arg).ok()?,
                    path: PathBuf::from(OsStr::from_bytes(&r.path)),
                })
            })
            .collect()
    }
}

/// If this process was invoked as a wrapper, act as it and return the exit code.
pub fn dispatch() -> Option<i32> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?.to_string();
    if !NAMES.contains(&name.as_str()) {
        return None;
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Some(run(&name, args))
}

fn run(name: &str, args: Vec<OsString>) -> i32 {
    if nix::unistd::geteuid().is_root() || shim_reaches(name) {
        return exec_real(name, &args);
    }
    match name {
        "install" => install::run(args),
        "chmod" => chmod(args),
        "chown" | "chgrp" => own(name, args),
        "ldconfig" => {
            record(&[Step {
                step: "ldconfig".into(),
                arg: String::new(),
                path: PathBuf::from("/"),
            }]);
            0
        }
        "mknod" => mknod(args),
        "install-info" => install_info(args),
        _ => exec_real(name, &args),
    }
}

/// Whether the LD_PRELOAD shim turns this tool's refused calls into root steps itself: it is
/// loaded (its log variable is set) and the real tool is not statically linked. Then the
/// wrapper steps aside, so a step is never recorded twice; `ldconfig` and `install-info`, which
/// the shim does not know, stay wrapped.
fn shim_reaches(name: &str) -> bool {
    matches!(name, "install" | "chmod" | "chown" | "chgrp" | "mknod")
        && std::env::var_os(envvars::SHIM_LOG).is_some()
        && std::env::var_os(envvars::LD_PRELOAD).is_some()
        && real(name).is_some_and(|p| elf::dynamic(&p))
}

/// The real tool: the first `name` in PATH outside the wrapper directory.
fn real(name: &str) -> Option<PathBuf> {
    let wrap = std::env::var_os(envvars::WRAP_DIR).map(PathBuf::from);
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|d| Some(d) != wrap.as_ref())
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

fn exec_real(name: &str, args: &[OsString]) -> i32 {
    match real(name) {
        Some(p) => {
            let e = std::process::Command::new(&p).arg0(name).args(args).exec();
            eprintln!("upm wrapper: cannot run {}: {e}", p.display());
            126
        }
        None => {
            eprintln!("upm wrapper: {name}: command not found in PATH");
            127
        }
    }
}

/// Run the real tool and wait for it.
fn run_real(name: &str, args: &[OsString]) -> i32 {
    match real(name) {
        Some(p) => match std::process::Command::new(&p)
            .arg0(name)
            .args(args)
            .status()
        {
            Ok(s) => s.code().unwrap_or(1),
            Err(e) => {
                eprintln!("upm wrapper: cannot run {}: {e}", p.display());
                126
            }
        },
        None => {
            eprintln!("upm wrapper: {name}: command not found in PATH");
            127
        }
    }
}

/// Append steps to the steps file. Without one (a wrapper run by hand), say what would have
/// been recorded.
fn record(steps: &[Step]) {
    if steps.is_empty() {
        return;
    }
    let Some(file) = std::env::var_os(envvars::STEPS) else {
        for s in steps {
            eprintln!(
                "upm wrapper: not recording root step `{}` (no {} set)",
                command(&s.step, &s.arg, &s.path),
                envvars::STEPS
            );
        }
        return;
    };
    let mut data = Vec::new();
    for s in steps {
        data.extend(s.line());
    }
    // One write per call with O_APPEND: lines from parallel make jobs never interleave.
    match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&file)
    {
        Ok(mut f) => {
            if let Err(e) = f.write_all(&data) {
                eprintln!("upm wrapper: cannot record root steps in {file:?}: {e}");
            }
        }
        Err(e) => eprintln!("upm wrapper: cannot record root steps in {file:?}: {e}"),
    }
}

/// Whether `p` exists and belongs to someone else (an install directory, another package).
fn foreign(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() != nix::unistd::geteuid().as_raw())
}

/// `chmod`: leave paths that are not the package's alone; change the rest.
fn chmod(args: Vec<OsString>) -> i32 {
    let mut out = Vec::new();
    let mut mode_seen = false;
    let mut kept = 0;
    let mut dropped = Vec::new();
    let mut options_done = false;
    for a in args {
        let s = a.as_bytes();
        if !options_done && s == b"--" {
            options_done = true;
            out.push(a);
            continue;
        }
        let looks_mode = s.first() == Some(&b'-')
            && s.len() > 1
            && s[1..].iter().all(|c| b"rwxXstugo".contains(c));
        let is_mode = looks_mode && !mode_seen;
        if !options_done && s.first() == Some(&b'-') && !is_mode {
            out.push(a);
            continue;
        }
        if !mode_seen && !s.starts_with(b"--reference") {
            mode_seen = true;
            out.push(a);
            continue;
        }
        if foreign(Path::new(&a)) {
            dropped.push(a);
        } else {
            kept += 1;
            out.push(a);
        }
    }
    for d in &dropped {
        eprintln!(
            "upm wrapper: chmod: leaving {} alone (it is not this package's)",
            Path::new(d).display()
        );
    }
    if kept == 0 && !dropped.is_empty() {
        return 0;
    }
    let code = run_real("chmod", &out);
    if code == 0 {
        record(&setid_steps(&out));
    }
    code
}

/// Which of the setuid and setgid bits a chmod-style mode (`4755`, `u+s`, `a=rx,g+s`) sets.
pub fn setid_bits(mode: &str) -> (bool, bool) {
    if !mode.is_empty() && mode.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
        let m = u32::from_str_radix(mode, 8).unwrap_or(0);
        return (m & 0o4000 != 0, m & 0o2000 != 0);
    }
    let (mut uid, mut gid) = (false, false);
    for clause in mode.split(',') {
        let who_end = clause.find(['+', '-', '=']).unwrap_or(clause.len());
        let who = &clause[..who_end];
        let (u, g) = (
            who.is_empty() || who.contains(['u', 'a']),
            who.is_empty() || who.contains(['g', 'a']),
        );
        // `u+s-x`: each operator applies to the permissions that follow it.
        let mut adding = false;
        for c in clause[who_end..].chars() {
            match c {
                '+' | '=' => adding = true,
                '-' => adding = false,
                's' if adding => {
                    uid |= u;
                    gid |= g;
                }
                _ => {}
            }
        }
    }
    (uid, gid)
}

/// The `setuid`/`setgid` steps of a chmod command line (options, mode, paths) run by a
/// package user: one per regular file whose bit it set. `-R` and `--reference` are left out.
fn setid_steps(args: &[OsString]) -> Vec<Step> {
    let mut mode: Option<String> = None;
    let mut files = Vec::new();
    let mut options_done = false;
    for a in args {
        let s = a.to_string_lossy();
        if !options_done && s == "--" {
            options_done = true;
        } else if mode.is_none() {
            if !options_done && (s == "-R" || s == "--recursive" || s.starts_with("--reference")) {
                return Vec::new();
            }
            let is_option = !options_done
                && s.starts_with('-')
                && !s[1..].chars().all(|c| "rwxXstugo".contains(c));
            if !is_option {
                mode = Some(s.into_owned());
            }
        } else {
            files.push(absolute(Path::new(a)));
        }
    }
    let (uid, gid) = setid_bits(mode.as_deref().unwrap_or(""));
    let arg = mode.unwrap_or_default();
    let mut steps = Vec::new();
    for path in files.into_iter().filter(|p| p.is_file()) {
        for (set, name) in [(uid, "setuid"), (gid, "setgid")] {
            if set {
                steps.push(Step {
                    step: name.into(),
                    arg: arg.clone(),
                    path: path.clone(),
                });
            }
        }
    }
    steps
}

/// `chown`/`chgrp` as a package user: record the change as a root step, change nothing.
fn own(name: &str, args: Vec<OsString>) -> i32 {
    let mut recursive = false;
    let mut spec: Option<String> = None;
    let mut paths = Vec::new();
    let mut options_done = false;
    for a in args {
        let s = a.to_string_lossy().into_owned();
        if !options_done && s == "--" {
            options_done = true;
        } else if !options_done && s.starts_with('-') && s.len() > 1 {
            if s == "-R"
                || s == "--recursive"
                || (s.starts_with('-') && !s.starts_with("--") && s.contains('R'))
            {
                recursive = true;
            }
        } else if spec.is_none() {
            spec = Some(s);
        } else {
            paths.push(absolute(Path::new(&a)));
        }
    }
    let Some(spec) = spec else {
        return run_real(name, &[]);
    };
    let arg = if recursive {
        format!("-R {spec}")
    } else {
        spec
    };
    let steps: Vec<Step> = paths
        .into_iter()
        .map(|path| Step {
            step: name.into(),
            arg: arg.clone(),
            path,
        })
        .collect();
    record(&steps);
    0
}

/// `install-info [--info-dir=DIR] FILE` as a package user: recorded, run by upm as root, so the
/// info `dir` file stays the system's rather than the first package's. Paths are made absolute.
fn install_info(args: Vec<OsString>) -> i32 {
    // Without a real install-info there is nothing to defer (build systems probe for it).
    if real("install-info").is_none() {
        return exec_real("install-info", &args);
    }
    let original = args.clone();
    let mut out = Vec::new();
    let mut file = None;
    let mut it = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        if let Some((opt, value)) = a.split_once('=').filter(|(o, _)| o.starts_with("--")) {
            let v = if opt.ends_with("dir") || opt.ends_with("file") {
                absolute(Path::new(value)).display().to_string()
            } else {
                value.to_string()
            };
            out.push(format!("{opt}={v}"));
        } else if matches!(
            a.as_str(),
            "--info-dir" | "--dir-file" | "--section" | "--entry"
        ) {
            let v = it.next().unwrap_or_default();
            let v = if a.ends_with("dir") || a.ends_with("file") {
                absolute(Path::new(&v)).display().to_string()
            } else {
                v
            };
            out.push(format!("{a}={v}"));
        } else if a.starts_with('-') {
            out.push(a);
        } else {
            let p = absolute(Path::new(&a));
            if file.is_none() {
                file = Some(p.clone());
            }
            out.push(p.display().to_string());
        }
    }
    // `install-info --version` and the like: nothing is changed, run it.
    let Some(file) = file else {
        return exec_real("install-info", &original);
    };
    record(&[Step {
        step: "install-info".into(),
        arg: out.join(&ARG_SEP.to_string()),
        path: file,
    }]);
    0
}

/// `mknod NAME TYPE [MAJOR MINOR]` as a package user: recorded, made by upm if allowed.
fn mknod(args: Vec<OsString>) -> i32 {
    let mut mode = String::new();
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        if s == "-m" {
            mode = it
                .next()
                .map(|m| m.to_string_lossy().into_owned())
                .unwrap_or_default();
        } else if let Some(m) = s.strip_prefix("--mode=") {
            mode = m.into();
        } else if s.starts_with('-') {
            continue;
        } else {
            rest.push(a);
        }
    }
    if rest.len() < 2 {
        return run_real("mknod", &rest);
    }
    let spec: Vec<String> = rest[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut arg = spec.join(" ");
    if !mode.is_empty() {
        arg = format!("{arg} mode={mode}");
    }
    record(&[Step {
        step: "mknod".into(),
        arg,
        path: absolute(Path::new(&rest[0])),
    }]);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip() {
        let s = Step {
            step: "chown".into(),
            arg: "-R root:root".into(),
            path: "/usr/bin/su".into(),
        };
        let mut data = s.line();
        data.extend(b"garbage\n");
        assert_eq!(Step::parse_all(&data), vec![s]);
    }

    #[test]
    fn steps_show_as_quoted_commands() {
        let args = ["--info-dir=/usr/share/info", "/usr/share/info/a b.info"];
        assert_eq!(
            command(
                "install-info",
                &args.join(&ARG_SEP.to_string()),
                Path::new("/usr/share/info/a b.info")
            ),
            "install-info --info-dir=/usr/share/info '/usr/share/info/a b.info'"
        );
        assert_eq!(
            command("chown", "-R root:root", Path::new("/usr/bin/su")),
            "chown -R root:root /usr/bin/su"
        );
        assert_eq!(command("ldconfig", "", Path::new("/")), "ldconfig");
        assert_eq!(
            command("chgrp", "it's", Path::new("/a\nb")),
            "chgrp 'it'\\''s' $'/a\\nb'"
        );
    }

    #[test]
    fn setid_bits_of_modes() {
        assert_eq!(setid_bits("4755"), (true, false));
        assert_eq!(setid_bits("2711"), (false, true));
        assert_eq!(setid_bits("6755"), (true, true));
        assert_eq!(setid_bits("755"), (false, false));
        assert_eq!(setid_bits("u+s"), (true, false));
        assert_eq!(setid_bits("g+s"), (false, true));
        assert_eq!(setid_bits("+s"), (true, true));
        assert_eq!(setid_bits("a=rx,u+ws"), (true, false));
        assert_eq!(setid_bits("a+s"), (true, true));
        assert_eq!(setid_bits("u-s"), (false, false));
        assert_eq!(setid_bits("go-w,u+s-x"), (true, false));
    }

    #[test]
    fn chmod_records_setid_on_files_only() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("su");
        std::fs::write(&f, "").unwrap();
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let fs = f.display().to_string();
        let ds = d.path().display().to_string();
        let steps = setid_steps(&args(&["-v", "4755", &fs, &ds]));
        assert_eq!(
            steps,
            vec![Step {
                step: "setuid".into(),
                arg: "4755".into(),
                path: f.clone()
            }]
        );
        assert_eq!(setid_steps(&args(&["g+s", &fs]))[0].step, "setgid");
        assert!(setid_steps(&args(&["-R", "u+s", &fs])).is_empty());
        assert!(setid_steps(&args(&["755", &fs])).is_empty());
    }

    #[test]
    fn absolute_is_lexical() {
        assert_eq!(
            absolute(Path::new("/usr/lib/../bin/./x")),
            PathBuf::from("/usr/bin/x")
        );
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        /// Whatever a package writes into the steps file, reading it never panics.
        #[test]
        fn any_steps_file_reads(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = super::Step::parse_all(&data);
        }
    }
}
