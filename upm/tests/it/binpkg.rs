//! Binary archives against real installs in overlay sandboxes: tree (from the shared sources,
//! with a hard link and a symlink added by its recipe) built and exported in one sandbox,
//! imported in another to the same manifest, contents and profile; tampered, unsigned, wrongly
//! signed, checksum-breaking and conflicting archives refused with nothing written; and
//! `upm install` with `binhost.url` on a real HTTP server on 127.0.0.1 importing instead of
//! building, and building when the recipe hash differs or `--build` is given.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::harness::{Dir, sources};
use crate::install::{Root, script_recipe, succeeds};
use crate::needs_root;

/// tree's recipe, with a hard link and a symlink to its program; `extra` is added to its
/// install phase (another recipe, another recipe hash).
fn tree_recipe(dir: &Dir, file: &str, extra: &str) -> PathBuf {
    let more = format!(
        "ln ${{vars.prefix}}/bin/tree ${{vars.prefix}}/bin/tree-hard\nln -s tree ${{vars.prefix}}/bin/tree-soft\n{extra}"
    );
    crate::install::tree_recipe(dir, file, &more)
}

fn sh(root: &Root, script: &str) {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-ec", script]);
    succeeds(&root.sb, cmd);
}

fn install(root: &Root, recipe: &Path, more: &[&str]) -> crate::harness::Out {
    let mut args: Vec<std::ffi::OsString> = vec![
        "install".into(),
        recipe.into(),
        "--sources-dir".into(),
        sources().into(),
        "--no-check".into(),
    ];
    args.extend(more.iter().map(|s| s.into()));
    root.upm(args)
}

/// A build host: tree installed and exported, the archive, its signature, the binary host's
/// directory and the public key copied out of the sandbox into `dir`.
struct Built {
    dir: Dir,
    root: Root,
    recipe: PathBuf,
    archive: PathBuf,
    public: PathBuf,
    host_dir: PathBuf,
}

fn build_and_export() -> Built {
    let dir = Dir::shared();
    let recipe = tree_recipe(&dir, "tree.toml", "");
    let root = Root::new();
    root.upm(["key", "generate", "--comment", "builder"])
        .success();
    install(&root, &recipe, &[]).success();
    let inside = dir.join("tree.upm.tar.zst");
    root.upm([
        "export".as_ref(),
        "tree".as_ref(),
        "-o".as_ref(),
        inside.as_os_str(),
    ])
    .success()
    .stdout_has("exported tree 2.1.0 (4 paths");
    // The same install exports to the same bytes.
    let again = dir.join("again.upm.tar.zst");
    root.upm([
        "export".as_ref(),
        "tree".as_ref(),
        "-o".as_ref(),
        again.as_os_str(),
    ])
    .success();
    let host_dir = dir.join("host");
    root.upm([
        "export".as_ref(),
        "--all".as_ref(),
        "-o".as_ref(),
        host_dir.as_os_str(),
    ])
    .success();
    let up = |p: &Path| root.upper(&p.display().to_string());
    let bytes = std::fs::read(up(&inside)).unwrap();
    assert_eq!(bytes, std::fs::read(up(&again)).unwrap(), "deterministic");
    let archive = dir.join("out/tree.upm.tar.zst");
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    std::fs::write(&archive, &bytes).unwrap();
    std::fs::copy(up(&dir.join("tree.upm.tar.zst.sig")), sig(&archive)).unwrap();
    let public = dir.join("out/builder.pub");
    std::fs::copy(root.upper("etc/upm/signing.pub"), &public).unwrap();
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    for e in std::fs::read_dir(up(&host_dir)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), served.join(e.file_name())).unwrap();
    }
    Built {
        dir,
        root,
        recipe,
        archive,
        public,
        host_dir: served,
    }
}

fn sig(archive: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", archive.display()))
}

/// A fresh root trusting the builder's key.
fn importer(b: &Built) -> Root {
    let root = Root::new();
    root.upm(["key".as_ref(), "trust".as_ref(), b.public.as_os_str()])
        .success()
        .stdout_has("trusting key ");
    root
}

/// A manifest from `upm files --json` without owner ids and times.
fn shape(files: &serde_json::Value) -> Vec<String> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {} {}",
                f["path"], f["type"], f["mode"], f["size"], f["sha256"], f["target"]
            )
        })
        .collect()
}

#[test]
fn an_exported_archive_imports_on_another_root_to_the_same_manifest_contents_and_profile() {
    needs_root!();
    let b = build_and_export();
    let a = &b.root;
    let to = importer(&b);
    // Another package user first, so tree's local ids differ from the build host's; and a
    // man page no package owns where tree's goes (a distribution's, say): taken over.
    to.upm(["user", "add", "other"]).success();
    sh(
        &to,
        "printf 'old page\\n' > /usr/local/share/man/man1/tree.1",
    );
    to.upm(["import".as_ref(), b.archive.as_os_str()])
        .success()
        .stdout_has("imported tree 2.1.0 (signed by key ");
    let info = to.upm(["--json", "info", "tree"]).success().json();
    assert_eq!(
        info["replaced"][0]["path"], "/usr/local/share/man/man1/tree.1",
        "{info}"
    );

    let built = a.upm(["--json", "files", "tree"]).success().json();
    let imported = to.upm(["--json", "files", "tree"]).success().json();
    assert_eq!(shape(&built), shape(&imported));
    let (uid_a, uid_b) = (a.uid_of("tree"), to.uid_of("tree"));
    assert_ne!(uid_a, uid_b, "the ids are each root's own");
    for f in imported.as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        assert_eq!(f["uid"].as_u64(), Some(uid_b), "{p}");
        let on_disk = std::fs::symlink_metadata(to.upper(p)).unwrap();
        assert_eq!(on_disk.uid() as u64, uid_b, "{p}");
        if f["type"] == "file" {
            assert_eq!(
                std::fs::read(to.upper(p)).unwrap(),
                std::fs::read(a.upper(p)).unwrap(),
                "{p}"
            );
        }
    }
    // The hard link is one inode again; the symlink points where it did.
    let ino = |p: &str| std::fs::metadata(to.upper(p)).unwrap().ino();
    assert_eq!(ino("usr/local/bin/tree"), ino("usr/local/bin/tree-hard"));
    assert_eq!(
        std::fs::read_link(to.upper("usr/local/bin/tree-soft")).unwrap(),
        Path::new("tree")
    );
    to.upm(["check", "tree"]).success();
    // The profile comes along unchanged: the build's commands, recipe and recipe hash.
    let text = |r: &Root| r.upm(["profile", "show", "tree"]).success().stdout();
    assert_eq!(text(a), text(&to));
    let info = to.upm(["--json", "info", "tree"]).success().json();
    let hash = a.upm(["--json", "info", "tree"]).success().json()["recipe_hash"].clone();
    assert_eq!(info["recipe_hash"], hash);
    assert_eq!(hash.as_str().unwrap().len(), 64);
    // Imported again: already installed. Removed: gone as a built package would be.
    to.upm(["import".as_ref(), b.archive.as_os_str()])
        .failure()
        .stderr_has("tree 2.1.0 is already installed");
    to.upm(["remove", "tree", "--restore"]).success();
    let list = to.upm(["--json", "list"]).success().json();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    assert!(!to.upper("usr/local/bin/tree").exists());
    assert!(!to.upper("usr/local/bin/tree-hard").exists());
    assert_eq!(
        std::fs::read_to_string(to.upper("usr/local/share/man/man1/tree.1")).unwrap(),
        "old page\n"
    );
}

/// A copy of the archive under `name` in the test's directory, changed by `f`, with `sig`
/// (None: no signature file).
fn variant(b: &Built, name: &str, f: impl Fn(&mut Vec<u8>), sig_text: Option<String>) -> PathBuf {
    let mut bytes = std::fs::read(&b.archive).unwrap();
    f(&mut bytes);
    let p = b.dir.join(&format!("variants/{name}.upm.tar.zst"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    if let Some(s) = sig_text {
        std::fs::write(sig(&p), s).unwrap();
    }
    p
}

/// The archive with one byte of the man page's content changed (same length), re-compressed.
fn with_changed_content(bytes: &mut Vec<u8>) {
    let mut tar = zstd::stream::decode_all(&bytes[..]).unwrap();
    let needle = b".TH TREE";
    let at = tar
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the man page is in the archive");
    tar[at + 1] = b'X';
    *bytes = zstd::stream::encode_all(&tar[..], 3).unwrap();
}

#[test]
fn tampered_unsigned_wrongly_signed_and_conflicting_archives_are_refused_with_nothing_written() {
    needs_root!();
    let b = build_and_export();
    let good_sig = std::fs::read_to_string(sig(&b.archive)).unwrap();
    // The builder's key, to sign crafted archives as the build host would (its root is the
    // build sandbox's upper directory).
    let builder = b.root.sb.upper().to_path_buf();
    let stranger = tempfile::tempdir().unwrap();
    upm::profile::keys::generate(stranger.path(), "stranger", false).unwrap();

    let tampered = variant(
        &b,
        "tampered",
        |x| {
            let n = x.len() / 2;
            x[n] ^= 0x55;
        },
        Some(good_sig.clone()),
    );
    let unsigned = variant(&b, "unsigned", |_| {}, None);
    let other_sig = upm::profile::keys::sign(&builder, b"another archive").unwrap();
    let wrong = variant(&b, "wrong", |_| {}, Some(other_sig));
    let original = std::fs::read(&b.archive).unwrap();
    let untrusted_sig = upm::profile::keys::sign(stranger.path(), &original).unwrap();
    let untrusted = variant(&b, "untrusted", |_| {}, Some(untrusted_sig));
    let mut changed = original.clone();
    with_changed_content(&mut changed);
    let resigned = upm::profile::keys::sign(&builder, &changed).unwrap();
    let checksum = variant(&b, "checksum", with_changed_content, Some(resigned));

    let to = importer(&b);
    let clean = to.state();
    let cases: [(&Path, &str); 5] = [
        (&tampered, "the signature does not match"),
        (&unsigned, "is not signed"),
        (&wrong, "the signature does not match"),
        (&untrusted, "which this root does not trust"),
        (&checksum, "does not match its sha256"),
    ];
    for (archive, why) in cases {
        to.upm(["import".as_ref(), archive.as_os_str()])
            .failure()
            .stderr_has(why)
            .stderr_has("nothing was written");
        assert_eq!(to.state(), clean, "{}", archive.display());
        let users = to.upm(["--json", "user", "list"]).success().json();
        assert_eq!(users.as_array().unwrap().len(), 0, "{users}");
        let list = to.upm(["--json", "list"]).success().json();
        assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    }

    // Another package's file where the archive has one: refused before anything is written.
    let squatter = script_recipe(
        &b.dir,
        "squatter",
        "printf 'not tree\\n' > /usr/local/bin/tree-hard",
    );
    to.upm(["install".as_ref(), squatter.as_os_str()]).success();
    let before = to.state();
    to.upm(["import".as_ref(), b.archive.as_os_str()])
        .failure()
        .stderr_has("/usr/local/bin/tree-hard, which belongs to package squatter")
        .stderr_has("nothing was changed");
    assert_eq!(to.state(), before);
    assert_eq!(
        std::fs::read_to_string(to.upper("usr/local/bin/tree-hard")).unwrap(),
        "not tree\n"
    );
    let users = to.upm(["--json", "user", "list"]).success().json();
    assert_eq!(users.as_array().unwrap().len(), 1, "only squatter: {users}");
    let list = to.upm(["--json", "list"]).success().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // A directory of the archive that is a symlink in this root, leading elsewhere: refused.
    let linked = importer(&b);
    sh(
        &linked,
        "rmdir /usr/local/share/man/man1 && ln -s /etc /usr/local/share/man/man1",
    );
    let before = linked.state();
    linked
        .upm(["import".as_ref(), b.archive.as_os_str()])
        .failure()
        .stderr_has("lies under /usr/local/share/man/man1, a symlink in this root (to /etc)");
    assert_eq!(linked.state(), before);
    assert!(!linked.upper("etc/tree.1").exists());
}

/// A static file server on 127.0.0.1, port 0: GET /NAME answers `dir/NAME`, else 404. It
/// serves until the test ends. Returns its base URL.
fn serve(dir: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            if BufReader::new(&conn).read_line(&mut line).is_err() {
                continue;
            }
            // The rest of the request is not needed: the reply closes the connection.
            let name = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let file = (!name.contains("..") && !name.is_empty())
                .then(|| std::fs::read(dir.join(&name)).ok())
                .flatten();
            let _ = match file {
                Some(body) => conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|()| conn.write_all(&body)),
                None => conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn phases(root: &Root) -> Vec<String> {
    let info = root.upm(["--json", "info", "tree"]).success().json();
    info["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn install_imports_from_the_binary_host_and_builds_when_the_recipe_differs() {
    needs_root!();
    let b = build_and_export();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.host_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["packages"][0]["name"], "tree", "{index}");
    let url = serve(b.host_dir.clone());
    let to = importer(&b);
    to.upm(["tree", "set", "/etc/upm/upm.toml", "binhost.url", &url])
        .success();

    // The same recipe: imported, nothing built — no source archive needed on this host (the
    // recipe's declared sha256 stands for it).
    to.upm([
        "install".as_ref(),
        b.recipe.as_os_str(),
        "--no-check".as_ref(),
    ])
    .success()
    .stdout_has("installed tree 2.1.0 from the binary host (");
    assert!(
        !phases(&to).contains(&"compile".to_string()),
        "{:?}",
        phases(&to)
    );
    to.upm(["check", "tree"]).success();
    assert!(std::fs::metadata(to.upper("usr/local/bin/tree-hard")).is_ok());

    // --build builds even so.
    to.upm(["remove", "tree"]).success();
    install(&to, &b.recipe, &["--build"])
        .success()
        .stdout_has("installed tree 2.1.0 as package user");
    assert!(phases(&to).contains(&"compile".to_string()));

    // Another recipe (one more command): another recipe hash, so it is built.
    to.upm(["remove", "tree"]).success();
    let other = tree_recipe(&b.dir, "tree-other.toml", "true\n");
    install(&to, &other, &[])
        .success()
        .stderr_has("has no tree built from this recipe")
        .stdout_has("installed tree 2.1.0 as package user");
    assert!(phases(&to).contains(&"compile".to_string()));
}
