//! BLFS dependencies: the `<para role="required|recommended|optional|runtime">` paragraphs of a
//! page's package section, each `<xref linkend="…"/>` in them resolved to the package name of
//! the page that holds the id (a page, or a section inside one, such as a Python module).
//! Links outside the book (`<ulink>`) are not packages upm can build and are left out.

use crate::doc::Element;
use crate::page::Lookup;

/// A page's dependencies by level, each in book order without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Deps {
    pub required: Vec<String>,
    pub recommended: Vec<String>,
    pub optional: Vec<String>,
    pub runtime: Vec<String>,
}

impl Deps {
    /// What a build needs first: the required and the recommended ones (the level jhalfs
    /// builds by default, since BLFS's instructions assume the recommended ones are there).
    pub fn build(&self) -> Vec<String> {
        let mut out = self.required.clone();
        for r in &self.recommended {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    pub fn levels(&self) -> [(&'static str, &Vec<String>); 4] {
        [
            ("required", &self.required),
            ("recommended", &self.recommended),
            ("optional", &self.optional),
            ("runtime", &self.runtime),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.levels().iter().all(|(_, l)| l.is_empty())
    }
}

/// The dependencies in `pkg`, the package section of `page`.
pub fn read(page: &Element, pkg: &Element, look: &dyn Lookup) -> Deps {
    let own = page.attr("id").and_then(|id| look.name_of_id(id));
    let mut deps = Deps::default();
    for para in pkg.descendants() {
        if para.name != "para" {
            continue;
        }
        let level = match para.attr("role").map(str::to_ascii_lowercase).as_deref() {
            Some("required") => &mut deps.required,
            Some("recommended") => &mut deps.recommended,
            Some("optional") => &mut deps.optional,
            Some("runtime") => &mut deps.runtime,
            _ => continue,
        };
        for x in para.descendants() {
            if x.name != "xref" {
                continue;
            }
            let Some(target) = x.attr("linkend") else {
                continue;
            };
            let Some(name) = look.name_of_id(target) else {
                continue;
            };
            if Some(&name) == own.as_ref() || level.contains(&name) {
                continue;
            }
            level.push(name);
        }
    }
    deps
}
