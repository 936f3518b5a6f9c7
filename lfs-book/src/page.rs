//! One page of a book as a package, or the reason it is not one. A package page names its
//! package and version (LFS: `<sect1info>`; BLFS: the page's id and title), its source (LFS:
//! the address, with the md5 from chapter 3's list; BLFS: the "Download" items of its package
//! section) and its commands: the `<userinput>`s of its screens, in book order, without the
//! `nodump` ones. Each command goes to a phase by its `remap` (`pre`, `configure`, `make`,
//! `test`, `install`), or by position (the phase of the command before it); phases never go
//! back, so reading the phases in order reads the book in order. BLFS's `<screen role="root">`
//! commands go to the install phase, or to `root.commands` when they do what only root may
//! (add users, change owners, enable services).
//!
//! Not packages, and reported with the reason: pages without a source (stripping, cleaning
//! up, …), pages whose download is a directory of many packages, pages needing a value the
//! book leaves to the reader (`<replaceable>&lt;xxx&gt;</replaceable>`), and pages with
//! interactive steps (kernel configuration, passwords).

use crate::deps::Deps;
use crate::doc::{Element, FAILED};

/// The build phases of a recipe, in the order they run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Prepare,
    Configure,
    Compile,
    Check,
    Install,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Prepare,
        Phase::Configure,
        Phase::Compile,
        Phase::Check,
        Phase::Install,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Configure => "configure",
            Phase::Compile => "compile",
            Phase::Check => "check",
            Phase::Install => "install",
        }
    }

    /// The phase a `remap` attribute names.
    fn from_remap(r: &str) -> Option<Phase> {
        Some(match r {
            "pre" => Phase::Prepare,
            "configure" => Phase::Configure,
            "make" | "doc" => Phase::Compile,
            "test" => Phase::Check,
            "install" => Phase::Install,
            _ => return None,
        })
    }
}

/// A file the build needs besides its source archive (a patch, another archive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Extra {
    pub file: String,
    pub url: String,
    pub md5: Option<String>,
}

/// Where a page is in its book.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    /// "lfs" or "blfs".
    pub book: &'static str,
    pub chapter: u32,
    /// The page's number in its chapter (8.31 is chapter 8, page 31).
    pub page: u32,
    /// The page's position in the whole book, from 1.
    pub order: u32,
    /// The page's id (`ch-system-sed`, `libxml2`).
    pub id: String,
    pub title: String,
}

impl Place {
    /// "8.31".
    pub fn section(&self) -> String {
        format!("{}.{}", self.chapter, self.page)
    }
}

/// A package page, read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub url: String,
    pub file: String,
    pub md5: Option<String>,
    pub patches: Vec<Extra>,
    /// Other archives the commands unpack (`tar -xf ../mpfr-4.2.1.tar.xz`).
    pub extra: Vec<Extra>,
    /// The phases present, in run order.
    pub phases: Vec<(Phase, String)>,
    /// Commands only root may run, run after the install phase.
    pub root_commands: Option<String>,
    pub deps: Deps,
    /// Things a reviewer should know that did not stop the import.
    pub notes: Vec<String>,
}

impl Package {
    pub fn phase(&self, p: Phase) -> Option<&str> {
        self.phases
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, s)| s.as_str())
    }
}

/// What a page became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Package(Box<Package>),
    /// Not a recipe, with the reason; the version when the page names one.
    Reported {
        name: String,
        version: Option<String>,
        reason: String,
    },
}

/// How the reason of a page that could not be read starts.
pub const UNREADABLE: &str = "part of the page could not be read";

/// The facts a page is read with besides its own text.
pub trait Lookup {
    /// The md5 the book gives for a file, by name (LFS chapter 3).
    fn md5_of(&self, file: &str) -> Option<String>;
    /// The URL and md5 of a patch or archive the book lists, by file name.
    fn listed(&self, file: &str) -> Option<Extra>;
    /// The package name of the page holding an id (BLFS dependencies).
    fn name_of_id(&self, id: &str) -> Option<String>;
}

/// Commands that only root may run; a block holding one goes to `root.commands`.
const ROOT_ONLY: &[&str] = &[
    "useradd",
    "groupadd",
    "usermod",
    "groupmod",
    "userdel",
    "groupdel",
    "chpasswd",
    "pwconv",
    "grpconv",
    "chown",
    "chgrp",
    "systemctl",
    "setcap",
    "mknod",
    "udevadm",
    "sysctl",
    "modprobe",
    "mount",
    "umount",
    "su",
];

/// Words that make a command interactive.
const INTERACTIVE: &[(&str, &str)] = &[
    (
        "menuconfig",
        "kernel configuration is interactive (make menuconfig)",
    ),
    (
        "nconfig",
        "kernel configuration is interactive (make nconfig)",
    ),
    (
        "oldconfig",
        "kernel configuration asks questions (make oldconfig)",
    ),
    ("passwd", "setting a password is interactive (passwd)"),
];

/// A package name upm accepts as a user name: letters, digits, `_`, `-`.
pub fn package_name(raw: &str) -> String {
    let mut s: String = raw
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            '+' => 'p',
            _ => '-',
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert_str(0, "pkg-");
    }
    s.truncate(32);
    s
}

/// Text with its white space runs made single spaces.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The file name at the end of a URL.
fn url_file(url: &str) -> String {
    url.trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

/// One block of commands.
struct Block {
    text: String,
    remap: Option<String>,
    root: bool,
    /// Placeholders the reader must fill (`<xxx>`).
    placeholders: Vec<String>,
    /// Inside the page's configuration section.
    config: bool,
    /// A `nodump` block: not run, but read for interactive steps.
    nodump: bool,
}

/// The command blocks of a page, in order, the `nodump` ones marked.
fn blocks(page: &Element) -> Vec<Block> {
    let mut out = Vec::new();
    fn walk(e: &Element, config: bool, out: &mut Vec<Block>) {
        let config = config || (e.name == "sect2" && e.attr("role") == Some("configuration"));
        if e.name == "screen" {
            let screen_nodump = e.attr("role") == Some("nodump");
            let root = e.attr("role") == Some("root");
            for u in e.descendants() {
                if u.name != "userinput" {
                    continue;
                }
                let nodump = screen_nodump || u.attr("role") == Some("nodump");
                let placeholders = u
                    .descendants()
                    .into_iter()
                    .filter(|r| r.name == "replaceable")
                    .map(|r| r.text())
                    .filter(|t| t.trim_start().starts_with('<') && t.trim_end().ends_with('>'))
                    .collect();
                out.push(Block {
                    text: u.text().trim_matches('\n').to_string(),
                    remap: u.attr("remap").map(String::from),
                    root,
                    placeholders,
                    config,
                    nodump,
                });
            }
            return;
        }
        for c in e.elements() {
            walk(c, config, out);
        }
    }
    walk(page, false, &mut out);
    out
}

/// The simple commands' first words of a block (split on lines and the shell's `&&`, `||`,
/// `;`, `|`), for recognising root-only and interactive commands.
fn command_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let joined = text.replace("\\\n", " ");
    let mut heredoc: Option<String> = None;
    for line in joined.lines() {
        // A here-document's lines are data, not commands.
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if let Some(i) = line.find("<<") {
            let word = line[i + 2..]
                .trim_start_matches('-')
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == '"' || c == '\'');
            if !word.is_empty() {
                heredoc = Some(word.to_string());
            }
        }
        for part in line.split(['&', '|', ';', '(', ')', '{', '}']) {
            let mut toks = part.split_whitespace();
            let mut first = toks.next();
            // Skip `VAR=value` assignments and `sudo`-like prefixes.
            while let Some(f) = first {
                if f.contains('=') || f == "exec" || f == "then" || f == "do" || f == "else" {
                    first = toks.next();
                } else {
                    break;
                }
            }
            if let Some(f) = first {
                words.push(f.rsplit('/').next().unwrap_or(f).to_string());
            }
        }
    }
    words
}

/// Read a page (an `<sect1>`) of an LFS book.
pub fn read_lfs(page: &Element, look: &dyn Lookup) -> Read {
    let info = page.named("sect1info").next();
    let product = info.and_then(|i| i.named("productname").next());
    let Some(product) = product else {
        return Read::Reported {
            name: page.attr("id").unwrap_or("").to_string(),
            version: None,
            reason: "not a package: the page has no source (no <sect1info>)".into(),
        };
    };
    let name = package_name(&product.text());
    let info = info.expect("product comes from info");
    let version = info
        .named("productnumber")
        .next()
        .map(|v| squash(&v.text()))
        .unwrap_or_default();
    let url = info
        .named("address")
        .next()
        .map(|a| squash(&a.text()))
        .unwrap_or_default();
    let file = url_file(&url);
    let md5 = look.md5_of(&file).filter(|m| is_md5(m));
    let description = description(page);
    build(
        page,
        Start {
            name,
            version,
            description,
            url,
            file,
            md5,
            deps: Deps::default(),
            default_phase: Phase::Prepare,
        },
        look,
    )
}

/// Read a page of the BLFS book.
pub fn read_blfs(page: &Element, look: &dyn Lookup) -> Read {
    let id = page.attr("id").unwrap_or("").to_string();
    let name = package_name(&id);
    let title = page
        .named("title")
        .next()
        .map(|t| squash(&t.text()))
        .unwrap_or_default();
    let version = title_version(&title);
    let Some(pkg) = page
        .named("sect2")
        .find(|s| s.attr("role") == Some("package"))
    else {
        return Read::Reported {
            name,
            version,
            reason: "not a package: the page has no package section (no source)".into(),
        };
    };
    let packages = page
        .descendants()
        .into_iter()
        .filter(|e| e.attr("role") == Some("package"))
        .count();
    let downloads = download_items(pkg);
    let http = downloads
        .iter()
        .find(|(label, url)| label.starts_with("Download (HTTP)") && !url.trim().is_empty())
        .or_else(|| {
            downloads
                .iter()
                .find(|(label, url)| label.starts_with("Download (FTP)") && !url.trim().is_empty())
        })
        .map(|(_, u)| u.trim().to_string());
    let Some(url) = http else {
        return Read::Reported {
            name,
            version,
            reason: "not a package: the page names no download".into(),
        };
    };
    if url.ends_with('/') {
        return Read::Reported {
            name,
            version,
            reason: format!(
                "builds several packages: its download is a directory ({url}) of archives"
            ),
        };
    }
    if packages > 1 {
        return Read::Reported {
            name,
            version,
            reason: format!("builds several packages: the page has {packages} package sections"),
        };
    }
    let Some(version) = version else {
        return Read::Reported {
            name,
            version: None,
            reason: format!("no version in the page's title {title:?}"),
        };
    };
    let md5 = pkg
        .descendants()
        .into_iter()
        .filter(|e| e.name == "para" || e.name == "listitem")
        .map(|e| squash(&e.text()))
        .find_map(|t| {
            t.strip_prefix("Download MD5 sum:")
                .map(|m| m.trim().to_string())
        })
        .filter(|m| is_md5(m));
    let deps = crate::deps::read(page, pkg, look);
    let mut start = Start {
        name,
        version,
        description: description(page),
        file: url_file(&url),
        url,
        md5,
        deps,
        default_phase: Phase::Compile,
    };
    let mut patches = Vec::new();
    for (label, u) in &downloads {
        if label.contains("patch") && !u.trim().is_empty() {
            patches.push(Extra {
                file: url_file(u),
                url: u.trim().to_string(),
                md5: None,
            });
        }
    }
    let read = build(page, std::mem::take(&mut start), look);
    match read {
        Read::Package(mut p) => {
            for patch in patches {
                if !p.patches.iter().any(|q| q.file == patch.file) {
                    p.patches.push(patch);
                }
            }
            Read::Package(p)
        }
        other => other,
    }
}

/// The version at the end of a BLFS title: "libxml2-2.14.5" → "2.14.5".
fn title_version(title: &str) -> Option<String> {
    let bytes = title.as_bytes();
    (1..bytes.len())
        .rev()
        .find(|&i| bytes[i - 1] == b'-' && bytes[i].is_ascii_digit())
        .map(|i| {
            title[i..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|v| !v.is_empty())
}

/// The "Label: <ulink url=…/>" items of a BLFS package section, in order.
fn download_items(pkg: &Element) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in pkg.descendants() {
        if e.name != "para" {
            continue;
        }
        let text = squash(&e.text());
        let label = text.split(':').next().unwrap_or("").trim().to_string();
        for u in e.descendants() {
            if u.name == "ulink" {
                out.push((label.clone(), u.attr("url").unwrap_or("").to_string()));
            }
        }
    }
    out
}

/// The first sentence of the page's introduction.
fn description(page: &Element) -> Option<String> {
    let pkg = page
        .named("sect2")
        .find(|s| s.attr("role") == Some("package"))?;
    let para = pkg.named("para").next()?;
    let text = squash(&para.text());
    let first = match text.find(". ") {
        Some(i) => &text[..=i],
        None => text.as_str(),
    };
    (!first.is_empty()).then(|| first.trim_end_matches('.').to_string())
}

#[derive(Default)]
struct Start {
    name: String,
    version: String,
    description: Option<String>,
    url: String,
    file: String,
    md5: Option<String>,
    deps: Deps,
    /// The phase of commands before any remapped one.
    default_phase: Phase,
}

/// The page's commands into phases, or the reason the page cannot be a recipe.
fn build(page: &Element, s: Start, look: &dyn Lookup) -> Read {
    let reported = |reason: String| Read::Reported {
        name: s.name.clone(),
        version: Some(s.version.clone()),
        reason,
    };
    if let Some(f) = page.descendants().into_iter().find(|e| e.name == FAILED) {
        return reported(format!("{UNREADABLE}: {}", f.attr("error").unwrap_or("")));
    }
    if s.url.is_empty() || s.file.is_empty() {
        return reported("not a package: the page names no source archive".into());
    }
    let blocks = blocks(page);
    if blocks.iter().all(|b| b.nodump) {
        return reported("not a package: the page has no commands".into());
    }
    let mut notes = Vec::new();
    let mut phases: Vec<(Phase, Vec<String>)> = Vec::new();
    let mut root = Vec::new();
    let mut patches = Vec::new();
    let mut extra = Vec::new();
    let mut current = s.default_phase;
    for b in &blocks {
        let words = command_words(&b.text);
        if let Some((_, why)) = INTERACTIVE
            .iter()
            .find(|(w, _)| words.iter().any(|x| x == w) || b.text.contains(&format!("make {w}")))
        {
            return reported(format!("needs interaction: {why}"));
        }
        if b.nodump {
            continue;
        }
        if let Some(p) = b.placeholders.first() {
            return reported(format!(
                "a command needs a value the book leaves to the reader: {} in `{}`",
                p.trim(),
                squash(&b.text)
            ));
        }
        if b.config && b.text.contains("make install-") && b.root {
            notes.push(format!(
                "left out a boot script step, which needs the blfs-bootscripts archive: `{}`",
                squash(&b.text)
            ));
            continue;
        }
        // Files the commands take from beside the source: patches and other archives.
        for tok in b
            .text
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        {
            let Some(f) = tok.rsplit("../").next().filter(|_| tok.starts_with("../")) else {
                continue;
            };
            if f.contains('/') || f.contains('$') || f.contains('*') || f == s.file {
                continue;
            }
            if f.ends_with(".patch") {
                if !patches.iter().any(|p: &Extra| p.file == f) {
                    patches.push(look.listed(f).unwrap_or(Extra {
                        file: f.to_string(),
                        url: String::new(),
                        md5: None,
                    }));
                }
            } else if is_archive(f) && !extra.iter().any(|p: &Extra| p.file == f) {
                extra.push(look.listed(f).unwrap_or(Extra {
                    file: f.to_string(),
                    url: String::new(),
                    md5: None,
                }));
            }
        }
        let mut phase = match b.remap.as_deref().and_then(Phase::from_remap) {
            Some(p) => p,
            None if b.root => Phase::Install,
            None => current,
        };
        if b.root {
            phase = Phase::Install;
        }
        phase = phase.max(current);
        current = phase;
        let root_words: Vec<&String> = words
            .iter()
            .filter(|w| ROOT_ONLY.contains(&w.as_str()))
            .collect();
        if phase == Phase::Check && !root_words.is_empty() && !b.root {
            // The book's tests as the `tester` user (`chown -R tester .`, `su tester -c …`)
            // need root: a package user cannot run them.
            notes.push(format!(
                "the check phase runs {} as the book does, which needs root: install with \
                 --no-check, or run the tests by hand",
                root_words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        let needs_root = (b.root || phase == Phase::Install) && !root_words.is_empty();
        if needs_root {
            root.push(b.text.clone());
            continue;
        }
        match phases.last_mut() {
            Some((p, cmds)) if *p == phase => cmds.push(b.text.clone()),
            _ => phases.push((phase, vec![b.text.clone()])),
        }
    }
    if !phases.iter().any(|(p, _)| *p == Phase::Install) {
        if root.is_empty() {
            return reported("not a package: no command installs anything".into());
        }
        // Everything it installs needs root: the install phase is empty and says so.
        phases.push((Phase::Install, vec![":".into()]));
        notes.push("every install command needs root: they are in root.commands".into());
    }
    if s.md5.is_none() {
        notes.push(format!("the book gives no md5 for {}", s.file));
    }
    Read::Package(Box::new(Package {
        name: s.name,
        version: s.version,
        description: s.description,
        url: s.url,
        file: s.file,
        md5: s.md5,
        patches,
        extra,
        phases: phases
            .into_iter()
            .map(|(p, cmds)| (p, cmds.join("\n") + "\n"))
            .collect(),
        root_commands: (!root.is_empty()).then(|| root.join("\n") + "\n"),
        deps: s.deps,
        notes,
    }))
}

fn is_md5(m: &str) -> bool {
    m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_archive(f: &str) -> bool {
    [
        ".tar.xz", ".tar.gz", ".tar.bz2", ".tgz", ".tar.zst", ".tar.lz", ".zip",
    ]
    .iter()
    .any(|e| f.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_titles() {
        assert_eq!(title_version("libxml2-2.14.5").as_deref(), Some("2.14.5"));
        assert_eq!(title_version("GTK-3.24.49").as_deref(), Some("3.24.49"));
        assert_eq!(
            title_version("xorg-server-21.1.16").as_deref(),
            Some("21.1.16")
        );
        assert_eq!(title_version("Xorg Libraries"), None);
    }

    #[test]
    fn names_are_user_names() {
        assert_eq!(package_name("ch-system-sed"), "ch-system-sed");
        assert_eq!(package_name("gtk+3"), "gtkp3");
        assert_eq!(package_name("7zip"), "pkg-7zip");
        assert_eq!(package_name("Python.3"), "python-3");
    }

    #[test]
    fn first_words_of_commands() {
        let w = command_words(
            "make install &&\nchown -R root:root /x\nFOO=1 /usr/sbin/useradd -c x y | tee\n",
        );
        assert_eq!(w, ["make", "chown", "useradd", "tee"]);
    }
}
