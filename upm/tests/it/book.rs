//! `upm book import|list|diff` against the real books in `../shared/lfs-book`: every chapter 8
//! version and md5 checked against `packages.ent` (read here on its own), phases in the
//! book's order, the report of the pages that are not packages, chapters 5–7, BLFS
//! dependencies for ten pages read by hand from the XML, the whole BLFS book, and chapter-8
//! recipes built exactly as imported with `--source` from `../shared/sources` as package
//! users in the overlay sandbox.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::harness::{Dir, repo, sources, upm};
use crate::install::{Root, paths};
use crate::needs_root;

fn books() -> PathBuf {
    let shared = match std::env::var_os("UPM_SHARED") {
        Some(d) => PathBuf::from(d),
        None => repo().join("../shared"),
    };
    let p = shared.join("lfs-book");
    assert!(
        p.join("lfs/index.xml").is_file() && p.join("blfs/index.xml").is_file(),
        "the books are missing: expected {}/lfs and /blfs",
        p.display()
    );
    p
}

/// `packages.ent` read on its own: `<!ENTITY name "value">` lines, values expanded from the
/// same file (`&gnu;` and the like resolve from general.ent, which these checks do not need).
fn packages_ent() -> HashMap<String, String> {
    let mut text = std::fs::read_to_string(books().join("lfs/packages.ent")).unwrap();
    // Commented-out declarations do not count.
    while let Some(start) = text.find("<!--") {
        let end = text[start..].find("-->").unwrap() + start + 3;
        text.replace_range(start..end, "");
    }
    let mut raw = HashMap::new();
    for decl in text.split("<!ENTITY ").skip(1) {
        let mut it = decl.splitn(2, char::is_whitespace);
        let name = it.next().unwrap().to_string();
        let rest = it.next().unwrap_or("").trim_start();
        if let Some(body) = rest.strip_prefix('"') {
            // The first declaration of a name wins.
            raw.entry(name)
                .or_insert_with(|| body[..body.find('"').unwrap()].to_string());
        }
    }
    let expand = |v: &str| {
        let mut s = v.to_string();
        for _ in 0..5 {
            for (k, val) in &raw {
                s = s.replace(&format!("&{k};"), val);
            }
        }
        s
    };
    raw.iter().map(|(k, v)| (k.clone(), expand(v))).collect()
}

fn import(book: &str, out: &Path, extra: &[&str]) -> crate::harness::Out {
    upm()
        .args(["book", "import"])
        .arg(books().join(book))
        .arg("-o")
        .arg(out)
        .args(extra)
        .run()
}

/// The recipes of an import by package name (the first of a name, in book order).
fn recipes(dir: &Path) -> BTreeMap<String, (PathBuf, upm::recipe::Recipe)> {
    let mut out = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for f in files {
        let loaded = upm::recipe::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            loaded.warnings.is_empty(),
            "{}: {:?}",
            f.display(),
            loaded.warnings
        );
        out.entry(loaded.recipe.package.name.clone())
            .or_insert((f, loaded.recipe));
    }
    out
}

#[test]
fn lfs_chapter_8_versions_md5s_phases_and_report() {
    let dir = Dir::new();
    let out = dir.join("lfs8");
    import("lfs", &out, &["--chapter", "8"])
        .success()
        .stdout_has("lfs recipe(s)")
        .stderr_has("reported: ch-system-stripping (8.84)");
    let ent = packages_ent();
    // Archives by file name (the URLs' hosts come from general.ent, not read here).
    let file_of = |u: &str| u.rsplit('/').next().unwrap().to_string();
    let by_file: HashMap<String, &str> = ent
        .iter()
        .filter_map(|(k, v)| k.strip_suffix("-url").map(|p| (file_of(v), p)))
        .collect();
    let got = recipes(&out);

    // Every package page of chapter 8, from the list: a recipe, or reported with a reason.
    let list = upm()
        .args(["--json", "book", "list"])
        .arg(books().join("lfs"))
        .args(["--chapter", "8"])
        .run()
        .success()
        .json();
    let rows = list.as_array().unwrap();
    let mut checked = 0;
    for r in rows {
        let name = r["name"].as_str().unwrap();
        let Some(version) = r["version"].as_str() else {
            assert!(!r["package"].as_bool().unwrap(), "{r}");
            continue;
        };
        if r["package"] == false {
            // Package pages the importer refuses: a placeholder or an interactive step.
            assert!(
                ["glibc", "shadow", "groff"].contains(&name),
                "{name} unexpectedly reported: {r}"
            );
            let entity = if name == "glibc" { "glibc" } else { name };
            assert_eq!(ent[&format!("{entity}-version")], version, "{name}");
            continue;
        }
        let (path, recipe) = &got[name];
        let url = recipe.source.url.as_deref().unwrap();
        let prefix = by_file
            .get(&file_of(url))
            .unwrap_or_else(|| panic!("{}: url {url} is not in packages.ent", path.display()));
        assert_eq!(ent[&format!("{prefix}-version")], version, "{name}");
        assert_eq!(recipe.package.version, version, "{name}");
        assert_eq!(
            recipe.source.md5.as_deref(),
            Some(ent[&format!("{prefix}-md5")].as_str()),
            "{name}: md5"
        );
        assert!(url.ends_with(recipe.source.file.as_deref().unwrap()));
        checked += 1;
    }
    let in_ch8 = rows.iter().filter(|r| r["version"].is_string()).count();
    assert_eq!(checked + 3, in_ch8);
    assert!(checked >= 75, "only {checked} chapter-8 recipes");

    // Phases in the book's order (read from chapter08/bzip2.xml and sed.xml).
    let phases = |n: &str| -> Vec<(String, String)> {
        got[n]
            .1
            .phases
            .iter()
            .map(|(p, s)| (p.to_string(), s.clone()))
            .collect()
    };
    let bz = phases("bzip2");
    let names: Vec<&str> = bz.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["prepare", "compile", "install"]);
    assert!(
        bz[0]
            .1
            .starts_with("patch -Np1 -i ../bzip2-1.0.8-install_docs-1.patch\nsed -i")
    );
    assert_eq!(bz[1].1, "make -f Makefile-libbz2_so\nmake clean\nmake\n");
    assert!(
        bz[2]
            .1
            .starts_with("make PREFIX=/usr install\ncp -av libbz2.so.* /usr/lib\n")
    );
    assert!(bz[2].1.ends_with("rm -fv /usr/lib/libbz2.a\n"));
    assert_eq!(
        got["bzip2"].1.source.patches,
        ["bzip2-1.0.8-install_docs-1.patch"]
    );
    let sed = phases("sed");
    assert_eq!(
        sed.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["configure", "compile", "check", "install"]
    );
    assert_eq!(sed[1].1, "make\nmake html\n");
    assert_eq!(
        sed[3].1,
        "make install\ninstall -d -m755           /usr/share/doc/sed-4.9\n\
         install -m644 doc/sed.html /usr/share/doc/sed-4.9\n"
    );

    // The report: the pages that are not packages, with the reason.
    let report = std::fs::read_to_string(out.join("import-report.txt")).unwrap();
    for page in [
        "ch-system-introduction (8.1)",
        "ch-system-pkgmgt (8.2)",
        "ch-system-aboutdebug (8.83)",
        "ch-system-stripping (8.84)",
        "ch-system-cleanup (8.85)",
    ] {
        assert!(
            report.contains(&format!("{page} ")) && report.contains("no source"),
            "{page} not reported:\n{report}"
        );
    }
    assert!(report.contains("glibc: a command needs a value the book leaves to the reader: <xxx>"));
    assert!(report.contains("groff: a command needs a value"));
    assert!(report.contains("shadow: needs interaction"));
}

#[test]
fn lfs_chapters_5_to_7_import_and_the_whole_book_reports_its_one_unreadable_page() {
    let dir = Dir::new();
    let out = dir.join("tools");
    import(
        "lfs",
        &out,
        &["--chapter", "5", "--chapter", "6", "--chapter", "7"],
    )
    .success();
    let got = recipes(&out);
    let ent = packages_ent();
    assert_eq!(got.len(), 28, "{:?}", got.keys());
    assert_eq!(
        got["binutils-pass1"].1.package.version,
        ent["binutils-version"]
    );
    assert_eq!(got["gcc-pass2"].1.package.version, ent["gcc-version"]);
    assert!(
        got["binutils-pass1"]
            .1
            .phase(upm::recipe::Phase::Configure)
            .unwrap()
            .contains("--target=$LFS_TGT")
    );

    // The whole book: chapter 9's usage page needs a file the book's Makefile generates.
    let all = dir.join("all");
    let run = import("lfs", &all, &[]).code(1);
    let text = run.stderr();
    assert!(
        text.contains("failed: usage.xml (9.6)") && text.contains("rc.site.script"),
        "{text}"
    );
    let written = std::fs::read_dir(&all)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(written > 100, "{written} recipes");
    recipes(&all);
}

#[test]
fn blfs_imports_whole_with_dependencies_by_level() {
    let dir = Dir::new();
    let out = dir.join("blfs");
    let run = import("blfs", &out, &[]).success();
    assert!(run.stdout().contains(" 0 failed"), "{}", run.stdout());
    let got = recipes(&out);
    assert!(got.len() > 600, "{}", got.len());

    // Ten pages, read by hand from their XML (`<para role=…>` and the xrefs' own roles).
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    type Levels<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let expected: [(&str, Levels); 10] = [
        ("libxml2", (&[], &["icu"], &["valgrind"], &[])),
        (
            "wget",
            (
                &[],
                &["libpsl"],
                &[
                    "gnutls",
                    "perl-http-daemon",
                    "perl-io-socket-ssl",
                    "libidn2",
                    "libproxy",
                    "pcre2",
                    "valgrind",
                ],
                &["make-ca"],
            ),
        ),
        (
            "libxslt",
            (
                &["libxml2"],
                &[],
                &["libgcrypt"],
                &["docbook", "docbook-xsl"],
            ),
        ),
        (
            "sudo",
            (&[], &[], &["linux-pam", "mitkrb", "openldap"], &[]),
        ),
        ("pcre2", (&[], &[], &["valgrind"], &[])),
        (
            "libarchive",
            (&[], &[], &["libxml2", "lzo", "nettle", "pcre2"], &[]),
        ),
        (
            "curl",
            (
                &[],
                &["libpsl"],
                &[
                    "brotli", "c-ares", "gnutls", "libidn2", "libssh2", "mitkrb", "nghttp2",
                    "openldap", "apache", "stunnel", "openssh", "valgrind",
                ],
                &["make-ca", "samba"],
            ),
        ),
        (
            "cmake",
            (
                &[],
                &["curl", "libarchive", "libuv", "nghttp2"],
                &[
                    "gcc",
                    "git",
                    "mercurial",
                    "openjdk",
                    "qt6",
                    "sphinx",
                    "subversion",
                ],
                &[],
            ),
        ),
        (
            "gnutls",
            (
                &["nettle"],
                &["make-ca", "libunistring", "libtasn1", "p11-kit"],
                &[
                    "brotli",
                    "doxygen",
                    "gtk-doc",
                    "libidn",
                    "libidn2",
                    "libseccomp",
                    "net-tools",
                    "texlive",
                    "tl-installer",
                    "unbound",
                    "valgrind",
                ],
                &[],
            ),
        ),
        (
            "libpsl",
            (
                &[],
                &["libidn2", "libunistring"],
                &["gtk-doc", "icu", "libidn", "valgrind"],
                &[],
            ),
        ),
    ];
    for (name, (req, rec, opt, run)) in expected {
        let (path, _) = &got[name];
        let tree = upm::ctree::load(path).unwrap().tree;
        let list = |k: &str| match tree.get_str(k) {
            Some(upm::ctree::Value::List(l)) => l.clone(),
            _ => Vec::new(),
        };
        assert_eq!(list("depends.required"), s(req), "{name}: required");
        assert_eq!(list("depends.recommended"), s(rec), "{name}: recommended");
        assert_eq!(list("depends.optional"), s(opt), "{name}: optional");
        assert_eq!(list("depends.runtime"), s(run), "{name}: runtime");
        // What a build needs first: required, then recommended.
        let mut build = s(req);
        build.extend(s(rec));
        assert_eq!(
            got[name].1.package.depends, build,
            "{name}: package.depends"
        );
    }
}

#[test]
fn book_diff_names_versions_commands_and_dependencies() {
    // A "new book": the LFS checkout with sed's version and a command changed.
    let dir = Dir::new();
    let new = dir.join("new");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(books().join("lfs"))
        .arg(&new)
        .status()
        .unwrap();
    assert!(status.success());
    let ent = new.join("packages.ent");
    let text = std::fs::read_to_string(&ent).unwrap();
    std::fs::write(
        &ent,
        text.replace(
            "<!ENTITY sed-version \"4.9\">",
            "<!ENTITY sed-version \"4.10\">",
        ),
    )
    .unwrap();
    let page = new.join("chapter08/gzip.xml");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        text.replace(
            ">./configure --prefix=/usr<",
            ">./configure --prefix=/usr --disable-gcc-warnings<",
        ),
    )
    .unwrap();
    let out = upm()
        .args(["book", "diff"])
        .arg(books().join("lfs"))
        .arg(&new)
        .run()
        .success();
    let text = out.stdout();
    assert!(
        text.contains("sed (ch-system-sed): version 4.9 -> 4.10"),
        "{text}"
    );
    assert!(
        text.contains("gzip (ch-system-gzip): phase configure:\n  - ./configure --prefix=/usr\n  + ./configure --prefix=/usr --disable-gcc-warnings"),
        "{text}"
    );
    assert!(!text.contains("m4 (ch-system-m4)"), "{text}");
}

/// The Debian archive in ../shared/sources for a package, and its sha256 from SHA256SUMS.
fn debian_source(prefix: &str) -> (PathBuf, String) {
    let sums = std::fs::read_to_string(sources().join("SHA256SUMS")).unwrap();
    let (sum, file) = sums
        .lines()
        .filter_map(|l| l.split_once("  "))
        .find(|(_, f)| f.starts_with(prefix))
        .unwrap();
    (sources().join(file), sum.to_string())
}

#[test]
fn chapter_8_recipes_build_as_imported_from_other_archives() {
    needs_root!();
    let dir = Dir::shared();
    let out = dir.join("recipes");
    let mut args = vec!["--chapter", "8"];
    let names = ["gzip", "m4", "patch"];
    for n in names {
        args.extend(["--package", n]);
    }
    import("lfs", &out, &args).success();
    let got = recipes(&out);
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["gzip", "m4", "patch"]
    );

    let root = Root::new();
    // A wrong --sha256 stops before anything is changed.
    let clean = root.state();
    let (gz, gz_sum) = debian_source("gzip_");
    let wrong = "0".repeat(64);
    root.upm([
        "install".as_ref(),
        got["gzip"].0.as_os_str(),
        "--source".as_ref(),
        gz.as_os_str(),
        "--sha256".as_ref(),
        wrong.as_ref(),
    ])
    .failure()
    .stderr_has("wrong sha256");
    assert_eq!(root.state(), clean);

    let mut before = clean;
    for name in names {
        let (archive, sum) = debian_source(&format!("{name}_"));
        let (recipe, _) = &got[name];
        let run = root
            .upm([
                "install".as_ref(),
                recipe.as_os_str(),
                "--source".as_ref(),
                archive.as_os_str(),
                "--sha256".as_ref(),
                sum.as_ref(),
                "--no-check".as_ref(),
            ])
            .success()
            .stdout_has(&format!("installed {name}"));
        // The recipe's checksums are the book's: they do not apply to Debian's archive, and
        // upm says so with the archive's own sha256.
        assert!(
            run.stderr().contains("the recipe's checksums do not apply")
                && run.stderr().contains(&sum),
            "{}",
            run.stderr()
        );
        let after = root.state();
        let changed: BTreeSet<String> = after
            .iter()
            .filter(|(p, c)| before.get(*p) != Some(c))
            .map(|(p, _)| p.clone())
            .collect();
        let files = root.upm(["--json", "files", name]).success().json();
        let manifest = paths(&files);
        // The info directory's `dir` file is shared by every package with info pages: the
        // recorded install-info root step updates it, no manifest holds it.
        let changed: BTreeSet<String> = changed
            .into_iter()
            .filter(|p| p != "/usr/share/info/dir")
            .collect();
        assert!(
            manifest.iter().any(|p| p.starts_with("/usr/bin/")),
            "{name}: {manifest:?}"
        );
        assert_eq!(
            manifest, changed,
            "{name}: the manifest differs from the overlay's upper directory"
        );
        root.upm(["check", name]).success();
        before = after;
    }
    // The archive's sha256 the test gave was the one upm checked.
    assert_eq!(gz_sum.len(), 64);
}

#[test]
fn patches_and_extra_archives_are_put_beside_the_source_and_checked() {
    needs_root!();
    let dir = Dir::shared();
    let patch = "--- /dev/null\n+++ b/upm-patched.txt\n@@ -0,0 +1 @@\n+patched by upm\n";
    let patch_path = dir.write("extras/fix-1.patch", patch);
    let md5 = {
        let out = std::process::Command::new("md5sum")
            .arg(&patch_path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_string()
    };
    let (hello, hello_sum) = debian_source("hello_");
    let (_, tree_sum) = debian_source("tree_");
    let recipe = |md5: &str| {
        format!(
            "[package]\nname = \"hello\"\nversion = \"2.10\"\n\n[source]\nfile = \"hello_2.10.orig.tar.gz\"\n\
             sha256 = \"{hello_sum}\"\npatches = [\"fix-1.patch\"]\nextra = [\"tree_2.1.0.orig.tar.gz\"]\n\n\
             [source.md5sums]\n\"fix-1.patch\" = \"{md5}\"\n\n[phases]\n\
             prepare = '''\npatch -Np1 -i ../fix-1.patch\nsha256sum ../tree_2.1.0.orig.tar.gz > extra.sum\n'''\n\
             install = '''\ninstall -Dm644 upm-patched.txt /usr/local/share/upm-patched/upm-patched.txt\n\
             install -m644 extra.sum /usr/local/share/upm-patched/extra.sum\n'''\n"
        )
    };
    let root = Root::new();
    let clean = root.state();
    let sources_dirs: [std::ffi::OsString; 4] = [
        "--sources-dir".into(),
        sources().into_os_string(),
        "--sources-dir".into(),
        dir.join("extras").into_os_string(),
    ];

    // A patch whose md5 is not the recipe's stops the install before anything changes.
    let bad = dir.write("bad/hello.toml", &recipe(&"0".repeat(32)));
    let mut args: Vec<std::ffi::OsString> = vec!["install".into(), bad.into_os_string()];
    args.extend(sources_dirs.iter().cloned());
    root.upm(&args)
        .failure()
        .stderr_has("fix-1.patch: wrong md5 checksum");
    assert_eq!(root.state(), clean);

    let good = dir.write("good/hello.toml", &recipe(&md5));
    let mut args: Vec<std::ffi::OsString> = vec!["install".into(), good.into_os_string()];
    args.extend(sources_dirs.iter().cloned());
    root.upm(&args).success().stdout_has("installed hello");
    let patched =
        std::fs::read_to_string(root.upper("usr/local/share/upm-patched/upm-patched.txt")).unwrap();
    assert_eq!(patched, "patched by upm\n");
    let sum = std::fs::read_to_string(root.upper("usr/local/share/upm-patched/extra.sum")).unwrap();
    assert!(sum.starts_with(&tree_sum), "{sum}");
    let _ = hello;
}
