//! Recorded commands as recipe phases, so a recorded package rebuilds: each successful command
//! line goes, in the order typed, into the phase it was recorded under (`phase NAME` in the
//! shell; `install` by default). A phase script starts with a `cd` to the first command's
//! working directory and changes directory again wherever the next command ran elsewhere, so
//! the commands keep their working directories; a line that is only a `cd` is left out, as
//! these `cd` lines say the same. Working directories are absolute: the package's home is
//! `/usr/src/PKG` on every host. Lines that failed are left out (a phase runs under `-e`).
//!
//! The text is recipe text: every `$` that would start a reference is written `$$` (so the
//! shell gets its `$HOME` back), and then each occurrence of the package's version becomes
//! `${package.version}`, so a recipe inheriting the profile with another version runs the
//! same commands on that version's archive and directory.

use std::path::Path;

use crate::recipe::Phase;

/// A recorded command line, as the phases need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub phase: Phase,
    /// Where it ran (inside the root).
    pub cwd: &'a Path,
    pub line: &'a str,
    pub status: i32,
}

/// The script text to add to each phase, in phase order (only phases with commands).
pub fn scripts(lines: &[Line<'_>], version: &str) -> Vec<(Phase, String)> {
    let mut out = Vec::new();
    for phase in Phase::ALL {
        let mut script = String::new();
        let mut here: Option<&Path> = None;
        for l in lines.iter().filter(|l| l.phase == phase && l.status == 0) {
            if only_cd(l.line) {
                continue;
            }
            if here != Some(l.cwd) {
                script.push_str(&template(&format!("cd {}", shell_word(l.cwd)), version));
                script.push('\n');
                here = Some(l.cwd);
            }
            script.push_str(&template(l.line.trim_end(), version));
            script.push('\n');
        }
        if !script.is_empty() {
            out.push((phase, script));
        }
    }
    out
}

/// Whether a line does nothing but change directory (`cd DIR`, no other command).
fn only_cd(line: &str) -> bool {
    let l = line.trim();
    (l == "cd" || l.starts_with("cd ") || l.starts_with("cd\t"))
        && !l.contains([';', '&', '|', '<', '>', '\n', '`', '('])
}

/// A path as one shell word (see [`word`]).
fn shell_word(p: &Path) -> String {
    word(&p.to_string_lossy())
}

/// One shell word: as it is when it holds only ordinary characters, else single-quoted.
pub fn word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Words as one command line a shell reads back as those words.
pub fn line(words: &[String]) -> String {
    words.iter().map(|w| word(w)).collect::<Vec<_>>().join(" ")
}

/// Shell text as recipe text: `$` escaped where it would start a reference, then the version
/// templated (a version shorter than 3 characters, such as `1`, would match too much).
pub fn template(text: &str, version: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        escaped.push(c);
        if c == '$'
            && chars
                .peek()
                .is_some_and(|n| *n == '{' || *n == '$' || *n == '_' || n.is_ascii_alphanumeric())
        {
            escaped.push('$');
        }
    }
    if version.len() >= 3 {
        escaped.replace(version, "${package.version}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(phase: Phase, cwd: &'a str, line: &'a str, status: i32) -> Line<'a> {
        Line {
            phase,
            cwd: Path::new(cwd),
            line,
            status,
        }
    }

    #[test]
    fn commands_become_phases_in_order_with_their_directories_and_the_version_templated() {
        let b = "/usr/src/tree/build";
        let src = "/usr/src/tree/build/tree-2.1.0";
        let lines = [
            line(
                Phase::Prepare,
                b,
                "tar xf /sources/tree_2.1.0.orig.tar.gz",
                0,
            ),
            line(Phase::Prepare, b, "cd tree-2.1.0", 0),
            line(Phase::Compile, src, "make", 0),
            line(Phase::Compile, src, "mkae", 127),
            line(Phase::Install, src, "make PREFIX=/usr install", 0),
            line(Phase::Install, b, "echo $HOME ${PWD} $$ $? $(pwd)", 0),
        ];
        let s = scripts(&lines, "2.1.0");
        assert_eq!(
            s,
            vec![
                (
                    Phase::Prepare,
                    "cd /usr/src/tree/build\ntar xf /sources/tree_${package.version}.orig.tar.gz\n"
                        .to_string()
                ),
                (
                    Phase::Compile,
                    "cd /usr/src/tree/build/tree-${package.version}\nmake\n".to_string()
                ),
                (
                    Phase::Install,
                    "cd /usr/src/tree/build/tree-${package.version}\nmake PREFIX=/usr install\n\
                     cd /usr/src/tree/build\necho $$HOME $${PWD} $$$ $? $(pwd)\n"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_recipe_reader_gets_the_shell_text_back() {
        use crate::ctree::{Key, Value};
        let text = "echo $HOME ${PWD} $$ $? $(pwd) ${x:-y} cost\\$5 hello-2.10.tar.gz";
        let templated = template(text, "2.10");
        let ct = format!(
            "package.version = \"2.10\";\nphases.install = {};\n",
            Value::Str(templated)
        );
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.ct");
        std::fs::write(&f, ct).unwrap();
        let loaded = crate::ctree::load(&f).unwrap();
        let got = loaded
            .tree
            .get(&Key::parse("phases.install").unwrap())
            .unwrap()
            .as_text();
        assert_eq!(got, text);
    }

    #[test]
    fn only_a_plain_cd_is_left_out() {
        assert!(only_cd("cd tree-2.1.0"));
        assert!(only_cd("cd"));
        assert!(!only_cd("cd x && make"));
        assert!(!only_cd("cdrecord x"));
        assert!(
            shell_word(Path::new("/usr/src/a b")) == "'/usr/src/a b'"
                && shell_word(Path::new("/usr/src/x-1.2")) == "/usr/src/x-1.2"
        );
        let words: Vec<String> = ["make", "PREFIX=/usr", "it's", ""]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(super::line(&words), "make PREFIX=/usr 'it'\\''s' ''");
    }
}
