//! The info `dir` file, which every package with info pages shares: reading the entries an info
//! file declares for it (its `START-INFO-DIR-ENTRY` blocks) and taking entries back out of a
//! `dir` file. `upm remove` uses it after `install-info --delete`, which only removes the
//! entries pointing to the info file itself: texinfo's `texinfo.info` also declares
//! `* pod2texi: (pod2texi)Invoking pod2texi.`, an entry for another file, which `--delete`
//! leaves behind. Pure text functions, unit-tested; reading files is [`declared_by`].

use std::io::Read;
use std::path::Path;

/// One menu entry of the `dir` file: `* NAME: (FILE)NODE.  Description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The menu name, as written (`pod2texi`).
    pub name: String,
    /// The info file the entry points to (`pod2texi`), without `.info`.
    pub file: String,
    /// The node in that file (`Invoking pod2texi`; empty for `Top`).
    pub node: String,
}

impl DirEntry {
    /// Parse the first line of a menu entry; `None` for anything else (`* Menu:` included).
    pub fn parse(line: &str) -> Option<DirEntry> {
        let rest = line.strip_prefix("* ")?;
        let (name, after) = rest.split_once(':')?;
        let after = after.trim_start();
        let inner = after.strip_prefix('(')?;
        let (file, node) = inner.split_once(')')?;
        // The node name ends at "," or a tab, or at a "." followed by a space or the end.
        let b = node.as_bytes();
        let end = (0..b.len())
            .find(|&i| match b[i] {
                b',' | b'\t' => true,
                b'.' => b.get(i + 1).is_none_or(u8::is_ascii_whitespace),
                _ => false,
            })
            .unwrap_or(b.len());
        Some(DirEntry {
            name: name.trim().to_string(),
            file: strip_info_suffix(file.trim()).to_string(),
            node: node[..end].trim().to_string(),
        })
    }

    /// Whether two entries name the same thing (install-info compares names without case).
    pub fn same(&self, other: &DirEntry) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.file == other.file
            && self
                .node
                .split_whitespace()
                .eq(other.node.split_whitespace())
    }
}

/// `foo.info.gz` → `foo`, `foo.info` → `foo`, `foo` → `foo`.
pub fn strip_info_suffix(name: &str) -> &str {
    let name = [".gz", ".bz2", ".xz", ".zst"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    name.strip_suffix(".info").unwrap_or(name)
}

/// The dir entries an info file's text declares (between `START-INFO-DIR-ENTRY` and
/// `END-INFO-DIR-ENTRY`, any number of blocks).
pub fn declared(text: &str) -> Vec<DirEntry> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("START-INFO-DIR-ENTRY") {
            inside = true;
        } else if line.starts_with("END-INFO-DIR-ENTRY") {
            inside = false;
        } else if line.starts_with('\x1f') {
            // The first node: the header, where dir entries live, is over.
            break;
        } else if inside && let Some(e) = DirEntry::parse(line) {
            out.push(e);
        }
    }
    out
}

/// The entries an info file on disk declares (a `.gz` file is read through gzip). Only its
/// header is read: entries come before the first node.
pub fn declared_by(path: &Path) -> std::io::Result<Vec<DirEntry>> {
    const HEAD: u64 = 256 * 1024;
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(f)
            .take(HEAD)
            .read_to_end(&mut bytes)?;
    } else {
        f.take(HEAD).read_to_end(&mut bytes)?;
    }
    Ok(declared(&String::from_utf8_lossy(&bytes)))
}

/// `dir` with every entry `drop` says yes to taken out (its first line and the indented
/// description lines that continue it), and, as `install-info --delete` does, the heading of a
/// section left empty; the text and how many entries went.
pub fn remove_entries(dir: &str, drop: impl Fn(&DirEntry) -> bool) -> (String, usize) {
    let mut out = String::with_capacity(dir.len());
    let mut removed = 0;
    let mut skipping = false;
    let mut in_menu = false;
    // The current section: where its heading starts in `out`, entries kept and removed.
    let mut section: Option<(usize, usize, usize)> = None;
    for line in dir.split_inclusive('\n') {
        if skipping && line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            continue;
        }
        skipping = false;
        if !in_menu {
            in_menu = line.starts_with("* Menu:");
            out.push_str(line);
            continue;
        }
        if let Some(e) = DirEntry::parse(line.trim_end_matches('\n')) {
            let gone = drop(&e);
            if let Some((_, kept, dropped)) = section.as_mut() {
                *if gone { dropped } else { kept } += 1;
            }
            if gone {
                skipping = true;
                removed += 1;
                continue;
            }
        } else if line.trim().is_empty() || !line.starts_with([' ', '\t']) {
            // A blank line or a new heading ends the section; an emptied one goes, with the
            // blank line after it.
            if let Some((at, 0, 1..)) = section.take() {
                out.truncate(at);
                if line.trim().is_empty() {
                    continue;
                }
            }
            if !line.trim().is_empty() {
                section = Some((out.len(), 0, 0));
            }
        }
        out.push_str(line);
    }
    if let Some((at, 0, 1..)) = section {
        out.truncate(at);
    }
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "This is texinfo.info.\n\nINFO-DIR-SECTION Texinfo documentation system\n\
        START-INFO-DIR-ENTRY\n\
        * Texinfo: (texinfo).           The GNU documentation format.\n\
        * install-info: (texinfo)Invoking install-info. Update info/dir entries.\n\
        * pod2texi: (pod2texi)Invoking pod2texi.        Translate Perl POD to Texinfo.\n\
        END-INFO-DIR-ENTRY\n\n\x1f\nFile: texinfo.info,  Node: Top\n\
        START-INFO-DIR-ENTRY\n* Not: (not).\nEND-INFO-DIR-ENTRY\n";

    const DIR: &str = "This is the file .../info/dir.\n\x1f\nFile: dir,\tNode: Top\n\n\
        * Menu:\n\nTexinfo documentation system\n\
        * install-info: (texinfo)Invoking install-info.\n\
        \x20                               Update info/dir entries.\n\
        * pod2texi: (pod2texi)Invoking pod2texi.\n\
        \x20                               Translate Perl POD to Texinfo.\n\
        * Texinfo: (texinfo).           The GNU documentation format.\n\
        \nOther\n* sed: (sed).                   Stream EDitor.\n";

    #[test]
    fn entries_parse() {
        let e = DirEntry::parse("* pod2texi: (pod2texi)Invoking pod2texi.   Translate").unwrap();
        assert_eq!(
            (e.name.as_str(), e.file.as_str(), e.node.as_str()),
            ("pod2texi", "pod2texi", "Invoking pod2texi")
        );
        let e = DirEntry::parse("* Texinfo: (texinfo).      The GNU format.").unwrap();
        assert_eq!((e.file.as_str(), e.node.as_str()), ("texinfo", ""));
        let e = DirEntry::parse("* gcc: (gcc.info.gz)Invoking GCC.").unwrap();
        assert_eq!((e.file.as_str(), e.node.as_str()), ("gcc", "Invoking GCC"));
        assert!(DirEntry::parse("* Menu:").is_none());
        assert!(DirEntry::parse("Texinfo documentation system").is_none());
    }

    #[test]
    fn declared_reads_the_header_only() {
        let d = declared(INFO);
        let names: Vec<&str> = d.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Texinfo", "install-info", "pod2texi"]);
    }

    #[test]
    fn removal_takes_entries_with_their_descriptions() {
        let d = declared(INFO);
        let (text, n) = remove_entries(DIR, |e| d.iter().any(|x| x.same(e)));
        assert_eq!(n, 3);
        assert!(!text.contains("pod2texi") && !text.contains("Update info/dir"));
        assert!(!text.contains("(texinfo)"), "{text}");
        assert!(text.contains("* sed: (sed).                   Stream EDitor.\n"));
        assert!(text.contains("* Menu:\n\nOther\n"), "{text}");
        let (text, _) = remove_entries(DIR, |e| e.file == "sed");
        assert!(
            text.ends_with("* Texinfo: (texinfo).           The GNU documentation format.\n\n"),
            "{text:?}"
        );
        let (same, n) = remove_entries(DIR, |_| false);
        assert_eq!((same.as_str(), n), (DIR, 0));
    }
}
