//! The `install` wrapper: GNU install's options read well enough to drop `-o`/`-g` (recorded as
//! root steps instead) and to leave alone directories given to `install -d` that the package
//! does not own, then the real `install` does the work. A setuid/setgid `-m` on files is
//! recorded as a `setuid`/`setgid` step too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Step, absolute, foreign, record, run_real, setid_bits};

/// Short options that take a value.
const SHORT_WITH_VALUE: &[u8] = b"gmoSt";

#[derive(Default, Debug)]
struct Parsed {
    /// Arguments to pass on, without owner and group.
    pass: Vec<OsString>,
    owner: Option<String>,
    group: Option<String>,
    mode: Option<String>,
    directory: bool,
    no_target: bool,
    target: Option<PathBuf>,
    /// Index in `pass` of each operand.
    operands: Vec<usize>,
}

fn parse(args: Vec<OsString>) -> Parsed {
    let mut p = Parsed::default();
    let mut it = args.into_iter();
    let mut options_done = false;
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        if options_done || s == "-" || !s.starts_with('-') {
            p.operands.push(p.pass.len());
            p.pass.push(a);
            continue;
        }
        if s == "--" {
            options_done = true;
            p.pass.push(a);
            continue;
        }
        if let Some(long) = s.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let takes = matches!(
                name,
                "owner" | "group" | "mode" | "suffix" | "target-directory" | "strip-program"
            );
            let value = match (takes, value) {
                (true, None) => it.next().map(|v| v.to_string_lossy().into_owned()),
                (_, v) => v,
            };
            match name {
                "owner" => p.owner = value,
                "group" => p.group = value,
                _ => {
                    if name == "directory" {
                        p.directory = true;
                    }
                    if name == "no-target-directory" {
                        p.no_target = true;
                    }
                    if name == "target-directory" {
                        p.target = value.as_ref().map(PathBuf::from);
                    }
                    if name == "mode" {
                        p.mode = value.clone();
                    }
                    match (takes, value) {
                        (true, Some(v)) => p.pass.push(format!("--{name}={v}").into()),
                        _ => p.pass.push(a),
                    }
                }
            }
            continue;
        }
        // A cluster of short options: -Dm644, -dv, -o root.
        let bytes = s.as_bytes();
        let mut kept = String::from("-");
        let mut i = 1;
        while i < bytes.len() {
            let c = bytes[i];
            if SHORT_WITH_VALUE.contains(&c) {
                let value = if i + 1 < bytes.len() {
                    s[i + 1..].to_string()
                } else {
                    it.next()
                        .map(|v| v.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                match c {
                    b'o' => p.owner = Some(value),
                    b'g' => p.group = Some(value),
                    _ => {
                        if c == b't' {
                            p.target = Some(PathBuf::from(&value));
                        }
                        if c == b'm' {
                            p.mode = Some(value.clone());
                        }
                        if kept.len() > 1 {
                            p.pass.push(std::mem::replace(&mut kept, "-".into()).into());
                        }
                        p.pass.push(format!("-{}", c as char).into());
                        p.pass.push(value.into());
                    }
                }
                break;
            }
            match c {
                b'd' => p.directory = true,
                b'T' => p.no_target = true,
                _ => {}
            }
            kept.push(c as char);
            i += 1;
        }
        if kept.len() > 1 {
            p.pass.push(kept.into());
        }
    }
    p
}

impl Parsed {
    fn operand_paths(&self) -> Vec<PathBuf> {
        self.operands
            .iter()
            .map(|&i| PathBuf::from(&self.pass[i]))
            .collect()
    }

    /// Where the files end up, for recording ownership steps.
    fn destinations(&self) -> Vec<PathBuf> {
        let ops = self.operand_paths();
        if self.directory {
            return ops;
        }
        let base = |src: &Path| src.file_name().map(PathBuf::from).unwrap_or_default();
        if let Some(t) = &self.target {
            return ops.iter().map(|s| t.join(base(s))).collect();
        }
        match ops.split_last() {
            Some((last, srcs)) if !srcs.is_empty() => {
                if !self.no_target && last.is_dir() {
                    srcs.iter().map(|s| last.join(base(s))).collect()
                } else {
                    vec![last.clone()]
                }
            }
            _ => Vec::new(),
        }
    }
}

pub fn run(args: Vec<OsString>) -> i32 {
    let mut p = parse(args);
    if p.directory {
        // `install -d /usr/bin`: an existing directory that is not ours is left as it is.
        let drop: Vec<usize> = p
            .operands
            .iter()
            .copied()
            .filter(|&i| {
                let d = Path::new(&p.pass[i]);
                d.is_dir() && foreign(d)
            })
            .collect();
        if !drop.is_empty() {
            if drop.len() == p.operands.len() {
                return 0;
            }
            let (mut pass, mut operands) = (Vec::new(), Vec::new());
            for (i, a) in std::mem::take(&mut p.pass).into_iter().enumerate() {
                if drop.contains(&i) {
                    continue;
                }
                if p.operands.contains(&i) {
                    operands.push(pass.len());
                }
                pass.push(a);
            }
            (p.pass, p.operands) = (pass, operands);
        }
    }
    let code = run_real("install", &p.pass);
    if code == 0 && (p.owner.is_some() || p.group.is_some()) {
        let (step, arg) = match (&p.owner, &p.group) {
            (Some(o), Some(g)) => ("chown", format!("{o}:{g}")),
            (Some(o), None) => ("chown", o.clone()),
            (None, Some(g)) => ("chgrp", g.clone()),
            (None, None) => unreachable!(),
        };
        let steps: Vec<Step> = p
            .destinations()
            .iter()
            .map(|d| Step {
                step: step.into(),
                arg: arg.clone(),
                path: absolute(d),
            })
            .collect();
        record(&steps);
    }
    if code == 0 && !p.directory {
        let (uid, gid) = setid_bits(p.mode.as_deref().unwrap_or(""));
        let mut steps = Vec::new();
        for d in p.destinations() {
            for (set, step) in [(uid, "setuid"), (gid, "setgid")] {
                if set {
                    steps.push(Step {
                        step: step.into(),
                        arg: p.mode.clone().unwrap_or_default(),
                        path: absolute(&d),
                    });
                }
            }
        }
        record(&steps);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn owner_and_group_are_taken_out() {
        let p = parse(args("-v -o root -groot -m 4755 su /usr/bin/su"));
        assert_eq!(p.owner.as_deref(), Some("root"));
        assert_eq!(p.group.as_deref(), Some("root"));
        let pass: Vec<String> = p.pass.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(pass, ["-v", "-m", "4755", "su", "/usr/bin/su"]);
        assert_eq!(p.destinations(), [PathBuf::from("/usr/bin/su")]);
        assert_eq!(p.mode.as_deref(), Some("4755"));
        assert_eq!(parse(args("-Dm2755 a b")).mode.as_deref(), Some("2755"));
        assert_eq!(parse(args("--mode=u+s a b")).mode.as_deref(), Some("u+s"));
    }

    #[test]
    fn clusters_and_directories() {
        let p = parse(args("-Dm644 a b"));
        let pass: Vec<String> = p.pass.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(pass, ["-D", "-m", "644", "a", "b"]);
        let p = parse(args("-dm755 /usr/bin /usr/share/x"));
        assert!(p.directory);
        assert_eq!(p.operand_paths().len(), 2);
        let p = parse(args("--owner=root --mode=755 -t /usr/bin a b"));
        assert_eq!(p.owner.as_deref(), Some("root"));
        assert_eq!(
            p.destinations(),
            [PathBuf::from("/usr/bin/a"), PathBuf::from("/usr/bin/b")]
        );
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        /// Any argument list parses without a panic, and owner and group never reach the
        /// real install.
        #[test]
        fn any_arguments_parse(args in proptest::collection::vec("[-a-zA-Z0-9=/.]{0,12}", 0..8)) {
            let p = super::parse(args.iter().map(std::ffi::OsString::from).collect());
            let _ = p.destinations();
            for a in &p.pass {
                let a = a.to_string_lossy();
                prop_assert!(a != "--owner" && a != "--group");
                prop_assert!(!a.starts_with("--owner=") && !a.starts_with("--group="));
            }
        }
    }
}
