//! Applying the root steps the wrappers recorded during an install: chown, chgrp, setuid,
//! setgid and mknod, on paths of this package's own manifest only, and only the kinds the
//! recipe allows (`root.allow`). Each step becomes a row saying whether it was applied and why
//! not. A setuid/setgid bit is kept only on a file a chown made root's; what is left owned by
//! the package user loses it afterwards ([`super::guard::setid`]).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::db::StepRow;
use crate::fsutil::on_host;
use crate::pathtext::quoted;
use crate::pkguser::Names;
use crate::recipe::RootStep;
use crate::wrap::{ARG_SEP, Step};

pub struct Applied {
    pub rows: Vec<StepRow>,
    /// Whether `ldconfig` was recorded and is allowed (the caller runs it, once).
    pub ldconfig: bool,
    /// Paths the steps created (device nodes), to add to the manifest.
    pub created: Vec<PathBuf>,
    /// `install-info` runs to make as root (their arguments).
    pub install_info: Vec<Vec<String>>,
}

fn row(s: &Step, applied: bool, note: Option<String>) -> StepRow {
    StepRow {
        step: s.step.clone(),
        arg: s.arg.clone(),
        path: s.path.clone(),
        applied,
        note,
    }
}

/// Apply `steps` in `root`. `mine` is the set of paths this install owns.
pub fn apply(
    root: &Path,
    allow: &[RootStep],
    steps: &[Step],
    mine: &BTreeSet<PathBuf>,
    names: &Names,
) -> Applied {
    let mut out = Applied {
        rows: Vec::new(),
        ldconfig: false,
        created: Vec::new(),
        install_info: Vec::new(),
    };
    let allowed = |r: RootStep| allow.contains(&r);
    let mut ldconfig_seen = false;
    let mut setid = Vec::new();
    for s in steps {
        let kind = RootStep::from_name(&s.step);
        let Some(kind) = kind else {
            out.rows.push(row(s, false, Some("unknown step".into())));
            continue;
        };
        if !allowed(kind) {
            if kind == RootStep::Ldconfig && ldconfig_seen {
                continue;
            }
            ldconfig_seen |= kind == RootStep::Ldconfig;
            out.rows.push(row(
                s,
                false,
                Some(format!(
                    "not allowed by the recipe: add \"{}\" to root.allow",
                    kind.name()
                )),
            ));
            continue;
        }
        match kind {
            RootStep::Ldconfig => {
                if !ldconfig_seen {
                    ldconfig_seen = true;
                    out.ldconfig = true;
                    out.rows.push(row(s, true, None));
                }
            }
            RootStep::Chown | RootStep::Chgrp => {
                let (recursive, spec) = match s.arg.strip_prefix("-R ") {
                    Some(rest) => (true, rest),
                    None => (false, s.arg.as_str()),
                };
                let ids = if kind == RootStep::Chown {
                    let (u, g) = match spec.split_once([':', '.']) {
                        Some((u, g)) => (u, Some(g)),
                        None => (spec, None),
                    };
                    match (names.user(u), g.map(|g| names.group(g))) {
                        (Some((uid, _)), None) => Some((Some(uid), None)),
                        (Some((uid, _)), Some(Some(g))) => Some((Some(uid), Some(g))),
                        _ => None,
                    }
                } else {
                    names.group(spec).map(|g| (None, Some(g)))
                };
                let Some((uid, gid)) = ids else {
                    out.rows.push(row(
                        s,
                        false,
                        Some(format!("{spec}: no such user or group in the target root")),
                    ));
                    continue;
                };
                let targets: Vec<&PathBuf> = mine
                    .iter()
                    .filter(|p| **p == s.path || (recursive && p.starts_with(&s.path)))
                    .collect();
                if targets.is_empty() {
                    out.rows.push(row(
                        s,
                        false,
                        Some("not a path this package installed; left alone".into()),
                    ));
                    continue;
                }
                let mut failed = None;
                let mut dropped = Vec::new();
                for t in targets {
                    match chown_keeping_mode(&on_host(root, t), uid, gid, allow) {
                        Ok(lost) => dropped.extend(lost.into_iter().map(|k| (k, t))),
                        Err(e) => failed = Some(format!("{}: {e}", quoted(&t))),
                    }
                }
                out.rows.push(row(s, failed.is_none(), failed));
                for (k, t) in dropped {
                    out.rows.push(StepRow {
                        step: k.name().into(),
                        arg: String::new(),
                        path: t.clone(),
                        applied: false,
                        note: Some(format!(
                            "the bit was dropped when the file was given to {spec}: add \"{}\" \
                             to root.allow to keep it",
                            k.name()
                        )),
                    });
                }
            }
            RootStep::Mknod => {
                let host = on_host(root, &s.path);
                let res = if !mine
                    .iter()
                    .any(|p| s.path.starts_with(p.parent().unwrap_or(p)))
                    && host.exists()
                {
                    Err("the path exists and is not this package's".to_string())
                } else {
                    mknod(&host, &s.arg)
                };
                match res {
                    Ok(()) => {
                        out.created.push(s.path.clone());
                        out.rows.push(row(s, true, None));
                    }
                    Err(e) => out.rows.push(row(s, false, Some(e))),
                }
            }
            RootStep::InstallInfo => {
                if mine.contains(&s.path) {
                    out.install_info
                        .push(s.arg.split(ARG_SEP).map(String::from).collect());
                    out.rows.push(row(s, true, None));
                } else {
                    out.rows.push(row(
                        s,
                        false,
                        Some("not an info file this package installed; left alone".into()),
                    ));
                }
            }
            // After every chown: the bit goes on once the file is root's.
            RootStep::Setuid | RootStep::Setgid => setid.push((s, kind)),
        }
    }
    for (s, kind) in setid {
        let res = if mine.contains(&s.path) {
            set_bit(&on_host(root, &s.path), kind)
        } else {
            Err("not a path this package installed; left alone".into())
        };
        match res {
            Ok(()) => out.rows.push(row(s, true, None)),
            Err(e) => out.rows.push(row(s, false, Some(e))),
        }
    }
    out
}

/// Set the setuid or setgid bit of a regular file root owns (a chown step made it root's).
fn set_bit(p: &Path, kind: RootStep) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).map_err(|e| e.to_string())?;
    if !m.file_type().is_file() {
        return Err("not a regular file; left alone".into());
    }
    if m.uid() != 0 {
        return Err(format!(
            "the file is uid {}'s, not root's (no chown to root was applied), so the bit is removed",
            m.uid()
        ));
    }
    let bit = if kind == RootStep::Setuid {
        0o4000
    } else {
        0o2000
    };
    std::fs::set_permissions(
        p,
        std::fs::Permissions::from_mode((m.mode() & 0o7777) | bit),
    )
    .map_err(|e| e.to_string())
}

/// chown a path (not following symlinks), then put back the setuid/setgid bits the kernel
/// cleared, when the recipe allows them. Returns the bits dropped because it does not.
fn chown_keeping_mode(
    p: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    allow: &[RootStep],
) -> std::io::Result<Vec<RootStep>> {
    let mut dropped = Vec::new();
    let before = std::fs::symlink_metadata(p)?;
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        uid.map(Uid::from_raw),
        gid.map(Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if before.file_type().is_file() {
        let mut mode = before.permissions().mode() & 0o7777;
        for (kind, bit) in [(RootStep::Setuid, 0o4000), (RootStep::Setgid, 0o2000)] {
            if mode & bit != 0 && !allow.contains(&kind) {
                mode &= !bit;
                dropped.push(kind);
            }
        }
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(dropped)
}

/// Make a device node from a recorded spec: `c|b|p MAJOR MINOR [mode=MODE]`.
fn mknod(p: &Path, spec: &str) -> Result<(), String> {
    let mut parts = spec.split_whitespace();
    let kind = match parts.next() {
        Some("c") | Some("u") => SFlag::S_IFCHR,
        Some("b") => SFlag::S_IFBLK,
        Some("p") => SFlag::S_IFIFO,
        other => return Err(format!("unknown node type {other:?}")),
    };
    let mut nums = Vec::new();
    let mut mode = 0o666;
    for w in parts {
        if let Some(m) = w.strip_prefix("mode=") {
            mode = u32::from_str_radix(m, 8).map_err(|_| format!("bad mode {m:?}"))?;
        } else {
            nums.push(w.parse::<u64>().map_err(|_| format!("bad number {w:?}"))?);
        }
    }
    let dev = match (kind, nums.as_slice()) {
        (SFlag::S_IFIFO, []) => 0,
        (_, [major, minor]) => nix::sys::stat::makedev(*major, *minor),
        _ => return Err("expected a major and a minor number".into()),
    };
    nix::sys::stat::mknod(p, kind, Mode::from_bits_truncate(mode), dev).map_err(|e| e.to_string())
}
