//! `upm tree`: both syntaxes on the seed's examples, references, cycles, wildcards, cross-file
//! grafts, TOML edits that keep comments, inheritance and its conflicts.

use std::path::Path;

use crate::harness::{Dir, Out, upm};

/// `upm tree get FILE KEY`, run.
fn tree_get(file: &Path, key: &str) -> Out {
    upm().args(["tree", "get"]).arg(file).arg(key).run()
}

const SEED: &str = r#"# fs_backup, as the seed wrote its configuration
fs_backup.type.default = "full";   # used when no type is given
fs_backup.type = ${fs_backup.type.default};
fs_backup.datadir = "/var/backup";
fs_backup.logdir = "$datadir/log";          # sibling reference
fs_backup.tmpdir = "${datadir}/tmp";
fs_backup.keep = 7;
fs_backup.compress = true;
fs_backup.exclude = ["/proc", "/sys", "${fs_backup.datadir}"];
fs_backup.script = """
tar -C / -cf ${fs_backup.datadir}/full.tar .
echo "$HOME is not a key"
""";
"#;

#[test]
fn seed_values_references_and_multiline() {
    let d = Dir::new();
    let f = d.write("seed.ct", SEED);
    tree_get(&f, "fs_backup.type").success().stdout_is("full\n");
    tree_get(&f, "fs_backup.logdir")
        .success()
        .stdout_is("/var/backup/log\n");
    tree_get(&f, "fs_backup.tmpdir")
        .success()
        .stdout_is("/var/backup/tmp\n");
    tree_get(&f, "fs_backup.exclude")
        .success()
        .stdout_is("/proc\n/sys\n/var/backup\n");
    tree_get(&f, "fs_backup.script")
        .success()
        .stdout_is("tar -C / -cf /var/backup/full.tar .\necho \"$HOME is not a key\"\n");
    let j = upm()
        .args(["--json", "tree", "get"])
        .arg(&f)
        .arg("fs_backup.keep")
        .run()
        .success()
        .json();
    assert_eq!(j, serde_json::json!(7));
    // --raw shows the file as written.
    upm()
        .args(["tree", "get", "--raw"])
        .arg(&f)
        .arg("fs_backup.type")
        .run()
        .success()
        .stdout_is("${fs_backup.type.default}\n");
}

#[test]
fn wildcards_and_listing() {
    let d = Dir::new();
    let f = d.write("seed.ct", SEED);
    let out = tree_get(&f, "fs_backup.type.*").success();
    assert_eq!(out.stdout(), "fs_backup.type.default = \"full\";\n");
    let out = tree_get(&f, "fs_backup.*").success();
    assert_eq!(
        out.stdout()
            .lines()
            .filter(|l| l.starts_with("fs_backup."))
            .count(),
        9
    );
    assert!(out.stdout().contains("fs_backup.keep = 7;\n"));
    assert!(out.stdout().contains("fs_backup.compress = true;\n"));
    let j = upm()
        .args(["--json", "tree", "get"])
        .arg(&f)
        .arg("*.datadir")
        .run()
        .success()
        .json();
    assert_eq!(j, serde_json::json!({"fs_backup.datadir": "/var/backup"}));
    upm()
        .args(["tree", "list"])
        .arg(&f)
        .arg("fs_backup.type")
        .run()
        .success()
        .stdout_is("fs_backup.type\n");
    tree_get(&f, "fs_backup.datdir")
        .failure()
        .stderr_has("did you mean `fs_backup.datadir`?");
}

#[test]
fn cycles_are_named_and_errors_located() {
    let d = Dir::new();
    let f = d.write("c.ct", "a.x = \"${a.y}\";\na.y = \"$z\";\na.z = ${a.x};\n");
    tree_get(&f, "a.x")
        .failure()
        .stderr_has("reference cycle: a.x -> a.y -> a.z -> a.x");
    let f = d.write("bad.ct", "ok = 1;\nthis.is = broken\n");
    tree_get(&f, "ok")
        .failure()
        .stderr_has("bad.ct:2:11: expected a value");
    let f = d.write("unk.ct", "a = \"${no.such.key}\";\n");
    tree_get(&f, "a")
        .failure()
        .stderr_has("unk.ct:1:1: `a`: unknown reference ${no.such.key}");
    let f = d.write("bad.toml", "[a]\nx = 1\n[a]\n");
    tree_get(&f, "a.x").failure().stderr_has("bad.toml:3:");
}

#[test]
fn cross_file_references() {
    let d = Dir::new();
    d.write(
        "etc/db.ct",
        "db.host = \"localhost\";\ndb.port = 5432;\ndb.url = \"pg://${db.host}:${db.port}\";\n",
    );
    d.write(
        "etc/limits.toml",
        "[root.branch]\nmax = 10\nname = \"b\"\n[root.other]\nx = 1\n",
    );
    let abs = d.join("etc/limits.toml");
    let main = d.write(
        "conf/main.ct",
        &format!(
            "app.database = \"ftree://../etc/db.ct\";\napp.limits = \"ftree://{}/root.branch\";\napp.limits.name = \"mine\";\n",
            abs.display()
        ),
    );
    let out = tree_get(&main, "app.*").success();
    assert_eq!(
        out.stdout(),
        "app.database.db.host = \"localhost\";\napp.database.db.port = 5432;\n\
         app.database.db.url = \"pg://localhost:5432\";\napp.limits.max = 10;\napp.limits.name = \"mine\";\n"
    );
    let missing = d.write("conf/missing.ct", "x = \"ftree://nope.ct\";\n");
    tree_get(&missing, "x")
        .failure()
        .stderr_has("missing.ct:1:1: cannot read");
    let looped = d.write("conf/loop.ct", "x = \"ftree://loop.ct\";\n");
    tree_get(&looped, "x")
        .failure()
        .stderr_has("include each other");
}

#[test]
fn convert_both_ways_and_set_keeps_toml_comments() {
    let d = Dir::new();
    let f = d.write("seed.ct", SEED);
    let toml = upm()
        .args(["tree", "convert"])
        .arg(&f)
        .args(["--to", "toml"])
        .run()
        .success()
        .stdout();
    let tf = d.write("seed.toml", &toml);
    for key in [
        "fs_backup.type",
        "fs_backup.logdir",
        "fs_backup.exclude",
        "fs_backup.script",
        "fs_backup.keep",
    ] {
        let a = tree_get(&f, key).success().stdout();
        let b = tree_get(&tf, key).success().stdout();
        assert_eq!(a, b, "{key}");
    }
    let back = d.join("back.ct");
    upm()
        .args(["tree", "convert"])
        .arg(&tf)
        .args(["--to", "ct", "-o"])
        .arg(&back)
        .run()
        .success();
    let a = upm()
        .args(["tree", "get", "--raw"])
        .arg(&f)
        .arg("*")
        .run()
        .success()
        .stdout();
    let b = upm()
        .args(["tree", "get", "--raw"])
        .arg(&back)
        .arg("*")
        .run()
        .success()
        .stdout();
    assert_eq!(a, b);

    let text = "# zlib recipe\n\n[package]\nname = \"zlib\"   # the name\nversion = \"1.2.12\"\n\n# how to build\n[phases]\ninstall = \"make install\"\n";
    let r = d.write("r.toml", text);
    upm()
        .args(["tree", "set"])
        .arg(&r)
        .args(["package.version", "1.2.13"])
        .run()
        .success();
    assert_eq!(d.read("r.toml"), text.replace("1.2.12", "1.2.13"));
    upm()
        .args(["tree", "set"])
        .arg(&r)
        .args(["options.jobs", "4"])
        .run()
        .success();
    tree_get(&r, "options.jobs").success().stdout_is("4\n");
    assert!(
        d.read("r.toml")
            .starts_with(&text.replace("1.2.12", "1.2.13"))
    );
    let c = d.write("s.ct", "# keep me\na.b = \"x\"; # and me\n\nz = 1;\n");
    upm()
        .args(["tree", "set"])
        .arg(&c)
        .args(["a.c", "--string", "7"])
        .run()
        .success();
    assert_eq!(
        d.read("s.ct"),
        "# keep me\na.b = \"x\"; # and me\na.c = \"7\";\n\nz = 1;\n"
    );
}

#[test]
fn inheritance_order_and_conflicts() {
    let d = Dir::new();
    d.write("t/base.toml", "[vars]\nprefix = \"/usr\"\n[phases]\nconfigure = \"./configure --prefix=${vars.prefix}\"\ninstall = \"make install\"\n");
    d.write(
        "t/a.toml",
        "inherit = \"base.toml\"\n[phases]\ncompile = \"make\"\ncheck = \"make check\"\n",
    );
    d.write(
        "t/b.toml",
        "[phases]\ncompile = \"make -C src\"\ncheck = \"make check\"\n",
    );
    let r = d.write(
        "r.toml",
        "inherit = [\"t/a.toml\", \"t/b.toml\"]\n[vars]\nprefix = \"/opt/x\"\n",
    );
    let out = tree_get(&r, "phases.*").success();
    assert_eq!(
        out.stdout(),
        "phases.compile = \"make\";\nphases.check = \"make check\";\n\
         phases.configure = \"./configure --prefix=/opt/x\";\nphases.install = \"make install\";\n"
    );
    let err = out.stderr();
    assert!(
        err.contains("conflict: `phases.compile` is set differently by templates t/a.toml"),
        "{err}"
    );
    assert!(err.contains("and t/b.toml"), "{err}");
    assert!(
        !err.contains("phases.check"),
        "same values are no conflict: {err}"
    );
    // The file itself settles the conflict.
    let r2 = d.write(
        "r2.toml",
        "inherit = [\"t/a.toml\", \"t/b.toml\"]\n[phases]\ncompile = \"make all\"\n",
    );
    let out = tree_get(&r2, "phases.compile")
        .success()
        .stdout_is("make all\n");
    assert!(!out.stderr().contains("conflict"));
    let cyc = d.write("t/cyc.toml", "inherit = \"cyc.toml\"\n");
    tree_get(&cyc, "x")
        .failure()
        .stderr_has("include each other");
}
