//! A profile as text and back. The text is a ctree in TOML: `recorded = ["profile"]`, the recipe
//! as written, then the `[profile]` branch with keys in a fixed order — format, package,
//! version, source, host, timings, env, commands (numbered in the order they ran), root steps,
//! and the manifest sorted by path, one line per file:
//!
//! ```toml
//! manifest."/usr/bin/hello" = "file 0755 package:package 43432 5f1c…"
//! manifest."/usr/lib/libz.so" = "symlink 0777 package:package -> libz.so.1.3.1"
//! manifest."/usr/share/info" = "dir 1775 root:install"
//! ```

use std::path::Path;

use super::{Archive, BRANCH, Command, Error, FORMAT, File, Host, Profile, Step, Timings};
use crate::ctree::{Entry, Key, Loc, RECORDED, Syntax, Tree, Value};
use crate::db::Origin;

fn key(segs: &[&str]) -> Key {
    Key::new(segs.iter().map(|s| s.to_string()).collect())
}

fn put(t: &mut Tree, segs: &[&str], value: Value) {
    t.insert(Entry {
        key: key(segs),
        value,
        loc: Loc::none(),
        literal: true,
    });
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

/// The manifest line of a file (its path is the key).
fn manifest_line(f: &File) -> String {
    let mut line = format!("{} {:04o} {}:{}", f.kind, f.mode, f.owner, f.group);
    if let Some(size) = f.size {
        line.push_str(&format!(
            " {size} {}",
            f.sha256.as_deref().filter(|h| !h.is_empty()).unwrap_or("-")
        ));
    }
    if let Some(t) = &f.target {
        line.push_str(&format!(" -> {t}"));
    }
    line
}

/// The profile's text.
pub fn render(p: &Profile) -> String {
    let mut t = Tree::new();
    put(&mut t, &[RECORDED], Value::List(vec![BRANCH.into()]));
    for e in p.recipe.entries() {
        if e.key.first() == Some(BRANCH) || e.key.first() == Some(RECORDED) {
            continue;
        }
        t.insert(e.clone());
    }
    let b = BRANCH;
    put(&mut t, &[b, "format"], Value::Int(FORMAT));
    put(&mut t, &[b, "package"], s(&p.name));
    put(&mut t, &[b, "version"], s(&p.version));
    if let Some(h) = &p.recipe_hash {
        put(&mut t, &[b, "recipe_hash"], s(h));
    }
    if let Some(a) = &p.source {
        put(&mut t, &[b, "source", "file"], s(&a.file));
        put(&mut t, &[b, "source", "sha256"], s(&a.sha256));
    }
    put(&mut t, &[b, "host", "arch"], s(&p.host.arch));
    put(&mut t, &[b, "host", "libc"], s(&p.host.libc));
    put(&mut t, &[b, "host", "compiler"], s(&p.host.compiler));
    let tm = &p.timings;
    for (name, ms) in [
        ("build_ms", tm.build_ms),
        ("trial_ms", tm.trial_ms),
        ("install_ms", tm.install_ms),
        ("total_ms", tm.total_ms),
    ] {
        put(&mut t, &[b, "timings", name], Value::Int(ms as i64));
    }
    for (k, v) in &p.env {
        put(&mut t, &[b, "env", k], s(v));
    }
    for (i, c) in p.commands.iter().enumerate() {
        let n = (i + 1).to_string();
        let at = |f: &'static str| [b, "commands", n.as_str(), f];
        put(&mut t, &at("phase"), s(&c.phase));
        put(&mut t, &at("origin"), s(c.origin.name()));
        put(&mut t, &at("user"), s(&c.user));
        put(&mut t, &at("cwd"), s(&c.cwd));
        put(&mut t, &at("command"), s(&c.command));
        if let Some(st) = c.status {
            put(&mut t, &at("status"), Value::Int(st as i64));
        }
        if let Some(ms) = c.duration_ms {
            put(&mut t, &at("duration_ms"), Value::Int(ms));
        }
    }
    for (i, st) in p.root_steps.iter().enumerate() {
        let n = (i + 1).to_string();
        let at = |f: &'static str| [b, "root_steps", n.as_str(), f];
        put(&mut t, &at("step"), s(&st.step));
        put(&mut t, &at("arg"), s(&st.arg));
        put(&mut t, &at("path"), s(&st.path));
        put(&mut t, &at("applied"), Value::Bool(st.applied));
        if let Some(note) = &st.note {
            put(&mut t, &at("note"), s(note));
        }
    }
    let mut files: Vec<&File> = p.manifest.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in files {
        put(&mut t, &[b, "manifest", &f.path], s(&manifest_line(f)));
    }
    format!(
        "# upm profile of {name} {version}: the recipe it was built from (templates merged,\n\
         # references kept), then what the build recorded under [profile]. `upm install` this\n\
         # file to rebuild {name}; `inherit` it and change package.version and source.* to build\n\
         # another version. Written by upm after each install: edits here are not kept.\n",
        name = p.name,
        version = p.version
    ) + &t.to_toml()
}

/// Read a profile's text (`path` names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Profile, Error> {
    let tree = crate::ctree::parse_str(text, Syntax::Toml, path)?;
    let not = |why: String| Error::NotProfile {
        path: path.to_path_buf(),
        why,
    };
    match tree.get(&key(&[RECORDED])) {
        Some(Value::List(l)) if l.iter().any(|b| b == BRANCH) => {}
        _ => return Err(not(format!("no `{RECORDED} = [\"{BRANCH}\"]`"))),
    }
    let get = |segs: &[&str]| tree.get(&key(segs)).cloned();
    let string = |segs: &[&str]| match get(segs) {
        Some(Value::Str(v)) => Some(v),
        _ => None,
    };
    let int = |segs: &[&str]| match get(segs) {
        Some(Value::Int(v)) => Some(v),
        _ => None,
    };
    let b = BRANCH;
    match int(&[b, "format"]) {
        Some(FORMAT) => {}
        Some(f) => {
            return Err(not(format!(
                "format {f}, this upm reads format {FORMAT}: use a newer upm"
            )));
        }
        None => return Err(not(format!("no `{b}.format`"))),
    }
    let name = string(&[b, "package"]).ok_or_else(|| not(format!("no `{b}.package`")))?;
    let version = string(&[b, "version"]).ok_or_else(|| not(format!("no `{b}.version`")))?;
    let recipe = tree.without(|k| k.first() == Some(b) || k.first() == Some(RECORDED));
    let source = match (
        string(&[b, "source", "file"]),
        string(&[b, "source", "sha256"]),
    ) {
        (Some(file), Some(sha256)) => Some(Archive { file, sha256 }),
        _ => None,
    };
    let host = Host {
        arch: string(&[b, "host", "arch"]).unwrap_or_default(),
        libc: string(&[b, "host", "libc"]).unwrap_or_default(),
        compiler: string(&[b, "host", "compiler"]).unwrap_or_default(),
    };
    let ms = |n: &str| int(&[b, "timings", n]).unwrap_or(0).max(0) as u64;
    let timings = Timings {
        build_ms: ms("build_ms"),
        trial_ms: ms("trial_ms"),
        install_ms: ms("install_ms"),
        total_ms: ms("total_ms"),
    };
    let sub = |name: &str| tree.subtree(&key(&[b, name]));
    let env = sub("env")
        .entries()
        .iter()
        .map(|e| (e.key.to_string(), e.value.as_text()))
        .collect();
    let commands = numbered(&sub("commands"))
        .into_iter()
        .map(|t| Command {
            phase: str_of(&t, "phase"),
            origin: Origin::parse(&str_of(&t, "origin")),
            user: str_of(&t, "user"),
            cwd: str_of(&t, "cwd"),
            command: str_of(&t, "command"),
            status: int_of(&t, "status").map(|v| v as i32),
            duration_ms: int_of(&t, "duration_ms"),
        })
        .collect();
    let root_steps = numbered(&sub("root_steps"))
        .into_iter()
        .map(|t| Step {
            step: str_of(&t, "step"),
            arg: str_of(&t, "arg"),
            path: str_of(&t, "path"),
            applied: matches!(t.get_str("applied"), Some(Value::Bool(true))),
            note: t.get_str("note").map(Value::as_text),
        })
        .collect();
    let mut manifest = Vec::new();
    for e in sub("manifest").entries() {
        let [p] = e.key.segments() else {
            return Err(not(format!("manifest key `{}` is not one path", e.key)));
        };
        let line = e.value.as_text();
        manifest.push(
            parse_line(p, &line)
                .ok_or_else(|| not(format!("manifest line of {p} is not understood: {line:?}")))?,
        );
    }
    manifest.sort_by(|a: &File, b: &File| a.path.cmp(&b.path));
    Ok(Profile {
        name,
        version,
        recipe_hash: string(&[b, "recipe_hash"]),
        recipe,
        source,
        host,
        env,
        timings,
        commands,
        root_steps,
        manifest,
    })
}

fn str_of(t: &Tree, k: &str) -> String {
    t.get_str(k).map(Value::as_text).unwrap_or_default()
}

fn int_of(t: &Tree, k: &str) -> Option<i64> {
    match t.get_str(k) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

/// The subtrees `1`, `2`, … of a numbered list, in number order.
fn numbered(t: &Tree) -> Vec<Tree> {
    let mut ns: Vec<u64> = t
        .entries()
        .iter()
        .filter_map(|e| e.key.first().and_then(|f| f.parse().ok()))
        .collect();
    ns.sort_unstable();
    ns.dedup();
    ns.into_iter()
        .map(|n| t.subtree(&key(&[&n.to_string()])))
        .collect()
}

/// Parse a manifest line (see the module documentation).
fn parse_line(path: &str, line: &str) -> Option<File> {
    let (head, target) = match line.split_once(" -> ") {
        Some((h, t)) => (h, Some(t.to_string())),
        None => (line, None),
    };
    let mut w = head.split(' ');
    let kind = w.next()?.to_string();
    let mode = u32::from_str_radix(w.next()?, 8).ok()?;
    let (owner, group) = w.next()?.split_once(':')?;
    let (size, sha256) = match w.next() {
        Some(size) => {
            let sha = w.next()?;
            (
                Some(size.parse().ok()?),
                (sha != "-").then(|| sha.to_string()),
            )
        }
        None => (None, None),
    };
    if w.next().is_some() {
        return None;
    }
    Some(File {
        path: path.to_string(),
        kind,
        mode,
        owner: owner.to_string(),
        group: group.to_string(),
        size,
        sha256,
        target,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn sample() -> Profile {
        let recipe = crate::ctree::parse_str(
            "[package]\nname = \"hello\"\nversion = \"2.10\"\n[source]\nfile = \"hello-${package.version}.tar.gz\"\n\
             [phases]\nconfigure = \"./configure --prefix=${vars.prefix}\"\ninstall = \"\"\"\nmake install\nrm -f x\n\"\"\"\n\
             [vars]\nprefix = \"/usr\"\n",
            Syntax::Toml,
            Path::new("t.toml"),
        )
        .unwrap();
        Profile {
            name: "hello".into(),
            version: "2.10".into(),
            recipe_hash: Some("cd".repeat(32)),
            recipe,
            source: Some(Archive {
                file: "hello-2.10.tar.gz".into(),
                sha256: "ab".repeat(32),
            }),
            host: Host {
                arch: "x86_64".into(),
                libc: "glibc 2.36".into(),
                compiler: "gcc 12 (x86_64-linux-gnu)".into(),
            },
            env: vec![
                ("HOME".into(), "/usr/src/hello".into()),
                ("MAKEFLAGS".into(), "-j2".into()),
            ],
            timings: Timings {
                build_ms: 10,
                trial_ms: 2,
                install_ms: 5,
                total_ms: 20,
            },
            commands: vec![Command {
                phase: "configure".into(),
                origin: Origin::Recipe,
                user: "package".into(),
                cwd: "/usr/src/hello/build/hello-2.10".into(),
                command: "./configure --prefix=/usr ${x:-y} $$".into(),
                status: Some(0),
                duration_ms: Some(1234),
            }],
            root_steps: vec![Step {
                step: "ldconfig".into(),
                arg: String::new(),
                path: "/".into(),
                applied: false,
                note: Some("not allowed".into()),
            }],
            manifest: vec![
                File {
                    path: "/usr/share/info".into(),
                    kind: "dir".into(),
                    mode: 0o1775,
                    owner: "root".into(),
                    group: "install".into(),
                    size: None,
                    sha256: None,
                    target: None,
                },
                File {
                    path: "/usr/bin/hello".into(),
                    kind: "file".into(),
                    mode: 0o755,
                    owner: "package".into(),
                    group: "package".into(),
                    size: Some(100),
                    sha256: Some("cd".repeat(32)),
                    target: None,
                },
                File {
                    path: "/usr/bin/hi there".into(),
                    kind: "symlink".into(),
                    mode: 0o777,
                    owner: "package".into(),
                    group: "package".into(),
                    size: None,
                    sha256: None,
                    target: Some("hello -> x".into()),
                },
            ],
        }
    }

    #[test]
    fn text_round_trips_and_is_sorted() {
        let p = sample();
        let text = render(&p);
        assert!(text.contains("recorded = [\"profile\"]"), "{text}");
        assert!(text.contains("${vars.prefix}"), "references kept: {text}");
        let a = text.find("/usr/bin/hello").unwrap();
        let b = text.find("/usr/share/info").unwrap();
        assert!(a < b, "manifest sorted: {text}");
        let back = parse(&text, Path::new("p.toml")).unwrap();
        assert_eq!(back.commands, p.commands);
        assert_eq!(back.root_steps, p.root_steps);
        assert_eq!(back.env, p.env);
        assert_eq!(back.host, p.host);
        assert_eq!(back.timings, p.timings);
        assert_eq!(back.source, p.source);
        let mut files = p.manifest.clone();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(back.manifest, files);
        // Rendering what was read gives the same bytes.
        assert_eq!(render(&back), text);
    }

    #[test]
    fn not_a_profile_says_so() {
        let e = parse("[package]\nname = \"x\"\n", Path::new("r.toml"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a profile"), "{e}");
    }
}
