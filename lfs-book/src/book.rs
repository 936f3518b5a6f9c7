//! A whole book: `index.xml` read with its includes, its chapters numbered as the book numbers
//! them (every `<chapter>` in document order, across parts), and each chapter's pages
//! (`<sect1>`) read in order into a package or a report. LFS is told from BLFS by its
//! `patches.ent`; for LFS, chapter 3's lists of packages and patches give each file's md5.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::doc::{Element, Loader};
use crate::dtd::Revision;
use crate::page::{self, Extra, Lookup, Package, Place, Read, squash};

/// Which pages to read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub revision: Revision,
    /// The architecture: elements marked `arch="…"` for others are left out (empty: keep
    /// them all).
    pub arch: String,
    /// Only these chapters (none: all).
    pub chapters: Vec<u32>,
    /// Only these packages, by name or page id (none: all).
    pub packages: Vec<String>,
}

/// Which book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lfs,
    Blfs,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lfs => "lfs",
            Kind::Blfs => "blfs",
        }
    }
}

/// A page and what it became.
#[derive(Debug, Clone)]
pub struct PageRef {
    pub place: Place,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Package(Box<Package>),
    Reported {
        name: String,
        version: Option<String>,
        reason: String,
    },
}

impl PageRef {
    pub fn name(&self) -> &str {
        match &self.outcome {
            Outcome::Package(p) => &p.name,
            Outcome::Reported { name, .. } => name,
        }
    }

    pub fn version(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Package(p) => Some(&p.version),
            Outcome::Reported { version, .. } => version.as_deref(),
        }
    }

    pub fn package(&self) -> Option<&Package> {
        match &self.outcome {
            Outcome::Package(p) => Some(p),
            Outcome::Reported { .. } => None,
        }
    }
}

/// A book, read.
pub struct Book {
    pub dir: PathBuf,
    pub kind: Kind,
    pub revision: Revision,
    /// Every page of the chapters asked for, in book order.
    pub pages: Vec<PageRef>,
}

/// Facts gathered from the whole book before pages are read.
struct Index {
    kind: Kind,
    /// File name → (url, md5), from LFS chapter 3.
    listed: HashMap<String, (String, String)>,
    /// Any id → the package name of the page holding it.
    names: HashMap<String, String>,
}

impl Lookup for Index {
    fn md5_of(&self, file: &str) -> Option<String> {
        self.listed.get(file).map(|(_, m)| m.clone())
    }

    fn listed(&self, file: &str) -> Option<Extra> {
        self.listed.get(file).map(|(u, m)| Extra {
            file: file.to_string(),
            url: u.clone(),
            md5: Some(m.clone()),
        })
    }

    fn name_of_id(&self, id: &str) -> Option<String> {
        self.names.get(id).cloned()
    }
}

impl Book {
    /// Read the book in `dir` (an LFS or BLFS checkout).
    pub fn open(dir: &Path, opts: &Options) -> Result<Book, Error> {
        let index = dir.join("index.xml");
        if !index.is_file() {
            return Err(Error::NotABook {
                dir: dir.to_path_buf(),
            });
        }
        let kind = if dir.join("patches.ent").is_file() {
            Kind::Lfs
        } else {
            Kind::Blfs
        };
        let mut loader = Loader::new(opts.revision);
        loader.arch = opts.arch.clone();
        let root = loader.load(&index)?;
        let chapters = chapters(&root);
        let idx = Index {
            kind,
            listed: if kind == Kind::Lfs {
                listed(&root)
            } else {
                HashMap::new()
            },
            names: names(kind, &chapters),
        };
        let mut pages = Vec::new();
        let mut order = 0;
        for (n, ch) in chapters.iter().enumerate() {
            let number = n as u32 + 1;
            let in_chapter = ch
                .elements()
                .filter(|e| e.name == "sect1" || e.name == crate::doc::FAILED);
            for (i, p) in in_chapter.enumerate() {
                order += 1;
                if !opts.chapters.is_empty() && !opts.chapters.contains(&number) {
                    continue;
                }
                let place = Place {
                    book: kind.name(),
                    chapter: number,
                    page: i as u32 + 1,
                    order,
                    id: p.attr("id").or(p.attr("href")).unwrap_or("").to_string(),
                    title: p
                        .named("title")
                        .next()
                        .map(|t| squash(&t.text()))
                        .unwrap_or_default(),
                };
                if !opts.packages.is_empty() {
                    let name = idx.names.get(&place.id).cloned().unwrap_or_default();
                    if !opts.packages.iter().any(|w| *w == name || *w == place.id) {
                        continue;
                    }
                }
                let read = match idx.kind {
                    _ if p.name == crate::doc::FAILED => Read::Reported {
                        name: p.attr("href").unwrap_or("").to_string(),
                        version: None,
                        reason: format!("{}: {}", page::UNREADABLE, p.attr("error").unwrap_or("")),
                    },
                    Kind::Lfs => page::read_lfs(p, &idx),
                    Kind::Blfs => page::read_blfs(p, &idx),
                };
                let outcome = match read {
                    Read::Package(p) => Outcome::Package(p),
                    Read::Reported {
                        name,
                        version,
                        reason,
                    } => Outcome::Reported {
                        name,
                        version,
                        reason,
                    },
                };
                pages.push(PageRef { place, outcome });
            }
        }
        Ok(Book {
            dir: dir.to_path_buf(),
            kind,
            revision: opts.revision,
            pages,
        })
    }

    pub fn packages(&self) -> impl Iterator<Item = (&Place, &Package)> {
        self.pages
            .iter()
            .filter_map(|p| p.package().map(|k| (&p.place, k)))
    }

    pub fn reported(&self) -> impl Iterator<Item = (&Place, &str, &str)> {
        self.pages.iter().filter_map(|p| match &p.outcome {
            Outcome::Reported { name, reason, .. } => {
                Some((&p.place, name.as_str(), reason.as_str()))
            }
            Outcome::Package(_) => None,
        })
    }
}

/// Every `<chapter>`, in document order.
fn chapters(root: &Element) -> Vec<&Element> {
    root.descendants()
        .into_iter()
        .filter(|e| e.name == "chapter")
        .collect()
}

/// The name each page's package goes by, for every id inside the page.
fn names(kind: Kind, chapters: &[&Element]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for ch in chapters {
        for p in ch.named("sect1") {
            let id = p.attr("id").unwrap_or("");
            let name = match kind {
                Kind::Lfs => p
                    .named("sect1info")
                    .next()
                    .and_then(|i| i.named("productname").next())
                    .map(|n| page::package_name(&n.text()))
                    .unwrap_or_else(|| page::package_name(id)),
                Kind::Blfs => page::package_name(id),
            };
            out.insert(id.to_string(), name.clone());
            for e in p.descendants() {
                let Some(inner) = e.attr("id") else {
                    continue;
                };
                // A section with its own package information (a Perl or Python module on
                // a page of modules) is a package of its own name.
                let own = e.name == "sect2"
                    && e.descendants()
                        .iter()
                        .any(|d| d.attr("role") == Some("package"));
                let n = if own {
                    page::package_name(inner)
                } else {
                    name.clone()
                };
                out.entry(inner.to_string()).or_insert(n);
            }
        }
    }
    out
}

/// LFS chapter 3's lists (`<variablelist role="materials">`): each file's URL and md5.
fn listed(root: &Element) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for list in root.descendants() {
        if list.name != "variablelist" || list.attr("role") != Some("materials") {
            continue;
        }
        for entry in list.named("varlistentry") {
            let mut url = None;
            let mut md5 = None;
            for e in entry.descendants() {
                if e.name != "para" {
                    continue;
                }
                let text = squash(&e.text());
                if text.starts_with("Download:") {
                    url = e
                        .descendants()
                        .into_iter()
                        .find(|u| u.name == "ulink")
                        .and_then(|u| u.attr("url"))
                        .map(|u| u.trim().to_string());
                } else if text.starts_with("MD5 sum:") {
                    md5 = e
                        .descendants()
                        .into_iter()
                        .find(|l| l.name == "literal")
                        .map(|l| l.text().trim().to_string());
                }
            }
            if let (Some(u), Some(m)) = (url, md5) {
                let file = u.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                out.insert(file.to_string(), (u.clone(), m));
            }
        }
    }
    out
}
