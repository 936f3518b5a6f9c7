//! A small fluent harness: `upm().args(["tree", "get", ..]).run().success().stdout_has(..)`,
//! a temporary directory per test, and the root check that makes sandbox tests say loudly
//! when they are skipped (and fail under CI, which runs as root).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_upm")
}

/// The repository's top directory.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The upstream source archives the tests build (`sources/` of the project's shared
/// directory): `$UPM_SHARED/sources`, else `../shared/sources` beside the checkout.
pub fn sources() -> PathBuf {
    let shared = match std::env::var_os("UPM_SHARED") {
        Some(d) => PathBuf::from(d),
        None => repo().join("../shared"),
    };
    let p = shared.join("sources");
    assert!(
        p.join("SHA256SUMS").is_file(),
        "the shared source archives are missing: expected {}/SHA256SUMS (put the project's \
         shared directory beside the checkout, or set UPM_SHARED=DIR to it)",
        p.display()
    );
    p.canonicalize().unwrap()
}

pub struct Cmd {
    cmd: Command,
    line: String,
}

pub fn upm() -> Cmd {
    Cmd {
        cmd: Command::new(bin()),
        line: "upm".into(),
    }
}

impl Cmd {
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.line.push(' ');
        self.line.push_str(&a.as_ref().to_string_lossy());
        self.cmd.arg(a);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Cmd {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn current_dir(mut self, d: &Path) -> Cmd {
        self.cmd.current_dir(d);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.cmd.env(k, v);
        self
    }

    /// Run inside an overlay sandbox (as root, chrooted into the merged view).
    pub fn run_in(self, sb: &upm::sandbox::Sandbox) -> Out {
        let output = sb.output(self.cmd).expect("upm runs in the sandbox");
        Out {
            line: self.line,
            output,
        }
    }

    pub fn run(mut self) -> Out {
        let output = self.cmd.output().expect("upm runs");
        Out {
            line: self.line,
            output,
        }
    }
}

pub struct Out {
    pub line: String,
    pub output: Output,
}

impl Out {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn explain(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.line,
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }

    pub fn success(self) -> Out {
        assert!(self.output.status.success(), "{}", self.explain());
        self
    }

    pub fn failure(self) -> Out {
        assert!(
            !self.output.status.success(),
            "expected failure: {}",
            self.explain()
        );
        self
    }

    pub fn code(self, code: i32) -> Out {
        assert_eq!(self.output.status.code(), Some(code), "{}", self.explain());
        self
    }

    pub fn stdout_is(self, s: &str) -> Out {
        assert_eq!(self.stdout(), s, "{}", self.explain());
        self
    }

    pub fn stdout_has(self, s: &str) -> Out {
        assert!(
            self.stdout().contains(s),
            "stdout lacks {s:?}: {}",
            self.explain()
        );
        self
    }

    pub fn stderr_has(self, s: &str) -> Out {
        assert!(
            self.stderr().contains(s),
            "stderr lacks {s:?}: {}",
            self.explain()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.explain()))
    }
}

/// A temporary directory for one test.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A directory the overlay sandbox sees too (the sandbox has its own /tmp), readable by
    /// package users.
    pub fn shared() -> Dir {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::Builder::new()
            .prefix("upm-it-")
            .tempdir_in("/var/tmp")
            .expect("temp dir in /var/tmp");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir { tmp }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// Write a file (making its directories) and return its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap()
    }
}

/// True when the test may use root-only features. Otherwise says so loudly; under CI (which
/// runs as root) a missing root is a failure, never a silent pass.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: needs root, and CI must run as root"
    );
    eprintln!("*** SKIPPED {test}: needs root (run the tests as root to exercise the sandbox) ***");
    false
}

#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::harness::have_root(module_path!()) {
            return;
        }
    };
}
