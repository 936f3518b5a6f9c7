//! `upm recipe check|show`: validation messages with file:line, suggestions, and the shipped
//! recipes and templates.

use crate::harness::{Dir, repo, upm};

#[test]
fn shipped_recipes_check_clean() {
    let recipes = repo().join("recipes");
    let mut files: Vec<_> = std::fs::read_dir(&recipes)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "{files:?}");
    // The books' recipes (LFS/BLFS packages from Debian's orig tarballs) too.
    files.extend(
        std::fs::read_dir(recipes.join("books"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml")),
    );
    let out = upm().args(["recipe", "check"]).args(&files).run().success();
    assert!(!out.stdout().contains("warning:"), "{}", out.stdout());
    for t in ["autotools", "make", "cmake", "meson"] {
        let p = recipes.join(format!("templates/{t}.toml"));
        assert!(p.exists(), "{}", p.display());
    }
}

#[test]
fn show_resolves_templates_and_variables() {
    let j = upm()
        .args(["--json", "recipe", "show"])
        .arg(repo().join("recipes/xz.toml"))
        .run()
        .success()
        .json();
    assert_eq!(j["package"]["name"], "xz");
    assert_eq!(
        j["phases"]["configure"],
        "./configure --prefix=/usr --disable-static --docdir=/usr/share/doc/xz-5.4.1"
    );
    assert_eq!(j["phases"]["install"], "make install");
    let d = Dir::new();
    std::fs::create_dir_all(d.join("templates")).unwrap();
    for t in ["cmake", "meson"] {
        std::fs::copy(
            repo().join(format!("recipes/templates/{t}.toml")),
            d.join(&format!("templates/{t}.toml")),
        )
        .unwrap();
        let r = d.write(&format!("{t}.toml"), &format!("inherit = \"templates/{t}.toml\"\n[package]\nname = \"p\"\nversion = \"1\"\n[vars]\nprefix = \"/opt/p\"\n"));
        let out = upm()
            .args(["recipe", "show", "--format", "ct"])
            .arg(&r)
            .run()
            .success();
        assert!(out.stdout().contains("/opt/p"), "{}", out.stdout());
    }
}

#[test]
fn check_reports_errors_with_lines_and_suggestions() {
    let d = Dir::new();
    let r = d.write(
        "bad.toml",
        "[package]\nname = \"zlib\"\ndepends = \"glibc\"\n\n[source]\nmd5 = \"xyz\"\nfile = \"z.tar.gz\"\n\n[phases]\ninstal = \"make install\"\n\n[root]\nallow = [\"ldconfg\"]\n[options]\njobs = 0\n",
    );
    let out = upm().args(["recipe", "check"]).arg(&r).run().code(1);
    let s = out.stdout();
    for want in [
        "bad.toml:2:1: missing required key `package.version`",
        "bad.toml:3:1: `package.depends` must be a list of strings, found string",
        "bad.toml:6:1: `source.md5` must be 32 hexadecimal digits",
        "warning: ",
        "bad.toml:10:1: unknown key `phases.instal`; did you mean `phases.install`?",
        "bad.toml:13:1: unknown root step \"ldconfg\" in `root.allow`; did you mean \"ldconfig\"?",
        "bad.toml:15:1: `options.jobs` must be between 1 and 1024",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    let j = upm()
        .args(["--json", "recipe", "check"])
        .arg(&r)
        .run()
        .code(1)
        .json();
    assert_eq!(j[0]["ok"], false);
    assert_eq!(j[0]["errors"][0]["line"], 3);
    // A syntax error is located too, and `show` refuses the recipe.
    let r = d.write(
        "syntax.ct",
        "package.name = \"x\";\npackage.version = 1.0;\n",
    );
    upm()
        .args(["recipe", "check"])
        .arg(&r)
        .run()
        .code(1)
        .stdout_has("syntax.ct:2:19: expected a value");
    upm()
        .args(["recipe", "show"])
        .arg(&r)
        .run()
        .failure()
        .stderr_has("syntax.ct:2:19");
    // The plain-text syntax is a recipe too.
    let r = d.write("ok.ct", "package.name = \"hello\";\npackage.version = \"2.10\";\nphases.install = \"make install\";\n");
    upm()
        .args(["recipe", "check"])
        .arg(&r)
        .run()
        .success()
        .stdout_has("ok (hello 2.10");
}

#[test]
fn a_recipe_without_an_install_phase_is_an_error() {
    let d = Dir::new();
    let r = d.write(
        "typo.toml",
        "[package]\nname = \"typo\"\nversion = \"1\"\n[phases]\ncompile = \"make\"\ninstal = \"make install\"\n",
    );
    upm()
        .args(["recipe", "check"])
        .arg(&r)
        .run()
        .code(1)
        .stdout_has("typo.toml:5:1: the recipe has no install phase")
        .stdout_has("did you mean `phases.install`?");
    // `upm install` refuses it before anything changes: no empty package is recorded.
    let root = Dir::new();
    upm()
        .arg("--root")
        .arg(root.path())
        .arg("install")
        .arg(&r)
        .run()
        .failure()
        .stderr_has("the recipe has no install phase");
    assert!(!root.join("var/lib/upm/upm.db").exists());
    assert!(!root.join("etc/passwd").exists());
}

#[test]
fn package_config_lists_absolute_paths() {
    let d = Dir::new();
    let good = d.write(
        "good.toml",
        "[package]\nname = \"p\"\nversion = \"1\"\nconfig = [\"/usr/local/share/p/p.ini\"]\n\
         [phases]\ninstall = \"true\"\n",
    );
    let j = upm()
        .args(["--json", "recipe", "show"])
        .arg(&good)
        .run()
        .success()
        .json();
    assert_eq!(j["package"]["config"][0], "/usr/local/share/p/p.ini", "{j}");
    let bad = d.write(
        "bad.toml",
        "[package]\nname = \"p\"\nversion = \"1\"\nconfig = [\"etc/p.conf\", \"/etc/../x\"]\n\
         [phases]\ninstall = \"true\"\n",
    );
    upm()
        .args(["recipe", "check"])
        .arg(&bad)
        .run()
        .failure()
        .stdout_has("bad.toml:4:")
        .stdout_has("package.config: \"etc/p.conf\" must be an absolute path")
        .stdout_has("\"/etc/../x\" must be an absolute path");
}
