//! The harness of upm's end-to-end scenarios: scenarios that span crates (install → profile →
//! replay, install → mirror) and run the real binaries, as a user would, inside the overlay
//! sandbox (`upm sandbox`). Each crate's own integration tests stay with that crate; what is
//! here drives the workspace's binaries from outside.
//!
//! The binaries are not this package's, so Cargo does not hand over their paths
//! (`CARGO_BIN_EXE_*` is per package): [`bin`] builds the one asked for with the same Cargo,
//! profile and target directory as the running test, and returns its path. A checkout under
//! `/tmp` works: the sandbox replaces `/tmp` with its own, so [`sandbox`] binds the checkout and
//! the target directory into it read-only at their own paths.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace's top directory.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The profile directory this test was built into (`target/debug`, `target/release`, or
/// under `CARGO_TARGET_DIR`): the test binary is `PROFILE_DIR/deps/NAME-HASH`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in PROFILE_DIR/deps")
        .to_path_buf()
}

/// The path of the workspace binary `name` (of package `package`), built now if it is missing
/// or out of date. `UPM_SCENARIO_BIN_DIR` points at a directory of ready binaries instead.
pub fn bin(package: &str, name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("UPM_SCENARIO_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let profile = profile_dir();
    if !built.iter().any(|b| b == name) {
        let target = profile
            .parent()
            .expect("the profile dir is in the target dir");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(repo())
            .args(["build", "--quiet", "--package", package, "--bin", name])
            .arg("--target-dir")
            .arg(target);
        match profile.file_name().and_then(OsStr::to_str) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => panic!("no profile in {}", profile.display()),
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "cannot build {name}: {cmd:?} failed");
        built.push(name.to_string());
    }
    let path = profile.join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The `upm` binary of this workspace.
pub fn upm() -> PathBuf {
    bin("upm", "upm")
}

/// True when the scenario may run (it needs root for the sandbox and package users).
/// Otherwise it says so loudly; under CI, which runs as root, a missing root is a failure.
pub fn have_root(scenario: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{scenario}: needs root, and CI must run as root"
    );
    eprintln!("*** SKIPPED {scenario}: needs root (run the scenarios as root) ***");
    false
}

/// What `upm --json sandbox -- CMD...` showed: the command's output (on stderr, as `--json`
/// keeps stdout for the summary) and the summary of what it changed.
pub struct SandboxRun {
    pub output: Output,
    /// The command's output, stdout and stderr together.
    pub text: String,
    /// `{"exit_code", "changes": [{"path", "change", "type"}]}`.
    pub summary: serde_json::Value,
}

impl SandboxRun {
    /// The paths the command added, with their type.
    pub fn added(&self) -> Vec<(String, String)> {
        self.summary["changes"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|c| c["change"] == "added")
            .map(|c| {
                (
                    c["path"].as_str().unwrap_or_default().to_string(),
                    c["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// Run `argv` with `env` in a throwaway overlay of this system through `upm sandbox`, the
/// checkout and the binaries' directory bound in read-only.
pub fn sandbox(env: &[(&str, &OsStr)], argv: &[&OsStr]) -> SandboxRun {
    let upm = upm();
    let repo = repo();
    let bins = upm.parent().expect("upm is in a directory").to_path_buf();
    let mut cmd = Command::new(&upm);
    cmd.args(["--json", "sandbox", "--bind"]).arg(&repo);
    if !bins.starts_with(&repo) {
        cmd.arg("--bind").arg(&bins);
    }
    cmd.args(["--", "env"]);
    for (k, v) in env {
        let mut kv = std::ffi::OsString::from(k);
        kv.push("=");
        kv.push(v);
        cmd.arg(kv);
    }
    cmd.args(argv).current_dir("/");
    let output = cmd.output().expect("upm sandbox runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "`{cmd:?}` printed no JSON summary ({e}), status {:?}:\n{text}",
            output.status
        )
    });
    SandboxRun {
        output,
        text,
        summary,
    }
}

#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::have_root(module_path!()) {
            return;
        }
    };
}
