//! A package as a recipe: a `toml_edit` document in upm's recipe layout (`[package]`,
//! `[source]`, `[depends]`, `[book]`, `[phases]`, `[root]`), the book's commands kept as
//! multi-line literal strings so the recipe reads like the page. upm's recipe loader checks
//! what this writes (its tests load every imported recipe).

use toml_edit::{Array, DocumentMut, Item, Table, value};

use crate::page::{Package, Place};

/// The file name a recipe is written to: `NNN-name.toml`, NNN the page's place in the book,
/// so a directory listing reads in book order.
pub fn file_name(place: &Place, pkg: &Package) -> String {
    format!("{:04}-{}.toml", place.order, pkg.name)
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> Array {
    items.into_iter().map(String::as_str).collect()
}

/// A string value, multi-line ones as literal `'''` strings when they can be.
fn text(s: &str) -> Item {
    let mut v = toml_edit::Value::from(s);
    if s.contains('\n') && !s.contains("'''") && !s.contains('\r') {
        let raw = format!("'''\n{s}'''");
        if let Ok(parsed) = raw.parse::<toml_edit::Value>() {
            v = parsed;
        }
    }
    Item::Value(v)
}

/// The recipe for `pkg`, found at `place`.
pub fn document(place: &Place, pkg: &Package) -> DocumentMut {
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# {} ({} {}), imported by `upm book import` from the book's page {}:\n\
         # its commands, unedited. Review before building.\n",
        place.title,
        place.book.to_ascii_uppercase(),
        place.section(),
        place.id
    ));

    let mut package = Table::new();
    package["name"] = value(&pkg.name);
    package["version"] = value(&pkg.version);
    if let Some(d) = &pkg.description {
        package["description"] = value(d);
    }
    let build = pkg.deps.build();
    if !build.is_empty() {
        package["depends"] = value(list(&build));
    }
    doc["package"] = Item::Table(package);

    let mut source = Table::new();
    source["file"] = value(&pkg.file);
    source["url"] = value(&pkg.url);
    if let Some(m) = &pkg.md5 {
        source["md5"] = value(m);
    }
    if !pkg.patches.is_empty() {
        source["patches"] = value(list(pkg.patches.iter().map(|p| &p.file)));
    }
    if !pkg.extra.is_empty() {
        source["extra"] = value(list(pkg.extra.iter().map(|p| &p.file)));
    }
    let sums: Vec<_> = pkg
        .patches
        .iter()
        .chain(&pkg.extra)
        .filter_map(|p| p.md5.as_ref().map(|m| (&p.file, m)))
        .collect();
    if !sums.is_empty() {
        let mut t = Table::new();
        for (f, m) in sums {
            t[f.as_str()] = value(m);
        }
        source["md5sums"] = Item::Table(t);
    }
    doc["source"] = Item::Table(source);

    if !pkg.deps.is_empty() {
        let mut deps = Table::new();
        for (level, names) in pkg.deps.levels() {
            if !names.is_empty() {
                deps[level] = value(list(names));
            }
        }
        doc["depends"] = Item::Table(deps);
    }

    let mut book = Table::new();
    book["name"] = value(place.book);
    book["chapter"] = value(i64::from(place.chapter));
    book["section"] = value(place.section());
    book["order"] = value(i64::from(place.order));
    book["page"] = value(&place.id);
    doc["book"] = Item::Table(book);

    let mut phases = Table::new();
    for (p, cmds) in &pkg.phases {
        phases[p.name()] = text(cmds);
    }
    doc["phases"] = Item::Table(phases);

    let mut root = Table::new();
    if let Some(c) = &pkg.root_commands {
        root["commands"] = text(c);
    }
    root["allow"] = value(Array::from_iter(["ldconfig", "install-info"]));
    doc["root"] = Item::Table(root);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::Deps;
    use crate::page::Phase;

    #[test]
    fn commands_stay_readable() {
        let place = Place {
            book: "lfs",
            chapter: 8,
            page: 31,
            order: 120,
            id: "ch-system-sed".into(),
            title: "Sed-4.9".into(),
        };
        let pkg = Package {
            name: "sed".into(),
            version: "4.9".into(),
            description: None,
            url: "https://x/sed-4.9.tar.xz".into(),
            file: "sed-4.9.tar.xz".into(),
            md5: Some("6aac9b2dbafcd5b7a67a8a9bcb8036c3".into()),
            patches: Vec::new(),
            extra: Vec::new(),
            phases: vec![(Phase::Install, "make install\ninstall -d \"/a b\"\n".into())],
            root_commands: None,
            deps: Deps::default(),
            notes: Vec::new(),
        };
        let text = document(&place, &pkg).to_string();
        assert!(
            text.contains("install = '''\nmake install\ninstall -d \"/a b\"\n'''"),
            "{text}"
        );
        assert!(text.contains("section = \"8.31\""), "{text}");
        assert_eq!(file_name(&place, &pkg), "0120-sed.toml");
    }
}
