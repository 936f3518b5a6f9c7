//! BLFS dependencies: the `<para role="required|recommended|optional|runtime">` paragraphs of a
//! page's package section, each `<xref linkend="…"/>` in them resolved to the package name of
//! the page that holds the id (a page, or a section inside one, such as a Python module).
//! An xref's own `role` overrides its paragraph's level (`runtime`; `nodep` is none). Links
//! outside the book (`<ulink>`) and to whole chapters ("a mail server") are not packages upm
//! can build and are left out.

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

const LEVELS: [&str; 4] = ["required", "recommended", "optional", "runtime"];

/// The dependencies in `pkg`, the package section of `page`.
pub fn read(page: &Element, pkg: &Element, look: &dyn Lookup) -> Deps {
    let own = page.attr("id").and_then(|id| look.name_of_id(id));
    let mut deps = Deps::default();
    for para in pkg.descendants() {
        if para.name != "para" {
            continue;
        }
        let Some(para_level) = para.attr("role").map(str::to_ascii_lowercase) else {
            continue;
        };
        if !LEVELS.contains(&para_level.as_str()) {
            continue;
        }
        for x in para.descendants() {
            if x.name != "xref" {
                continue;
            }
            // An xref's own role overrides its paragraph's: `<xref role="runtime" …/>` in
            // a recommended paragraph is needed at run time; `role="nodep"` is no dependency.
            let level = match x.attr("role").map(str::to_ascii_lowercase) {
                Some(r) if r == "nodep" => continue,
                Some(r) if LEVELS.contains(&r.as_str()) => r,
                _ => para_level.clone(),
            };
            let level = match level.as_str() {
                "required" => &mut deps.required,
                "recommended" => &mut deps.recommended,
                "optional" => &mut deps.optional,
                _ => &mut deps.runtime,
            };
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
