//! Writing an import: one recipe per package page into the output directory, and
//! `import-report.txt` listing the pages that are not recipes (with the reason) and the notes
//! a reviewer should read about the ones that are.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::book::{Book, Outcome};
use crate::recipe;

/// What an import wrote.
#[derive(Debug, Default)]
pub struct Written {
    pub recipes: Vec<PathBuf>,
    pub report: PathBuf,
    /// The report's lines: `page (section) name: reason`.
    pub reported: Vec<String>,
    /// Pages that could not be read at all (a missing include, a broken entity).
    pub failed: Vec<String>,
    pub notes: Vec<String>,
}

/// The report file's name in the output directory.
pub const REPORT: &str = "import-report.txt";

/// Write `book`'s recipes and report into `dir` (made if needed). `each` is called after
/// every page, for progress.
pub fn write(
    book: &Book,
    dir: &Path,
    mut each: impl FnMut(usize, usize),
) -> Result<Written, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut w = Written {
        report: dir.join(REPORT),
        ..Written::default()
    };
    let total = book.pages.len();
    for (i, p) in book.pages.iter().enumerate() {
        let at = format!("{} ({})", p.place.id, p.place.section());
        match &p.outcome {
            Outcome::Package(pkg) => {
                let path = dir.join(recipe::file_name(&p.place, pkg));
                let text = recipe::document(&p.place, pkg).to_string();
                std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
                w.recipes.push(path);
                for n in &pkg.notes {
                    w.notes.push(format!("{at} {}: {n}", pkg.name));
                }
            }
            Outcome::Reported { name, reason, .. } => {
                let line = format!("{at} {name}: {reason}");
                if reason.starts_with(crate::page::UNREADABLE) {
                    w.failed.push(line);
                } else {
                    w.reported.push(line);
                }
            }
        }
        each(i + 1, total);
    }
    let mut text = format!(
        "# upm book import of {} ({}, {}): {} recipes, {} pages reported, {} failed\n",
        book.dir.display(),
        book.kind.name(),
        book.revision.name(),
        w.recipes.len(),
        w.reported.len(),
        w.failed.len()
    );
    for (title, lines) in [
        ("failed (could not be read)", &w.failed),
        ("reported (not turned into recipes)", &w.reported),
        ("notes (recipes written; review these)", &w.notes),
    ] {
        text.push_str(&format!("\n## {title}\n"));
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
    }
    std::fs::write(&w.report, text).map_err(|e| Error::io(&w.report, e))?;
    Ok(w)
}
