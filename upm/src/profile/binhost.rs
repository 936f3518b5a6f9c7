//! The binary host: a directory of archives and their signatures with an `index.json` (name,
//! version, recipe hash, archive, signature, the archive's sha256 and size), written by
//! `upm export --all -o DIR` and served by any static web server. With `binhost.url` set,
//! `upm install` fetches the index over HTTP (`ureq`, blocking) and imports the archive whose
//! recipe hash is the recipe's instead of building. The archives are signed; the index is a
//! catalogue only (what it says is checked against the archive's own signed manifest).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The index's file name in a binary host's directory.
pub const INDEX: &str = "index.json";
/// The index format this upm writes and reads.
pub const FORMAT: u32 = 1;
/// The longest a binary host may take to answer (connecting, or any read).
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    #[error("{url}: not a upm binary host index ({why})")]
    BadIndex { url: String, why: String },
}

/// One archive a binary host serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub version: String,
    pub recipe_hash: String,
    /// The archive's file name, relative to the index.
    pub archive: String,
    /// Its signature's file name, relative to the index.
    pub signature: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    /// Sorted by name, then version.
    pub packages: Vec<Entry>,
}

impl Index {
    pub fn new(mut packages: Vec<Entry>) -> Index {
        packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Index {
            format: FORMAT,
            packages,
        }
    }

    /// The archive of `name` built from a recipe with this hash, if the host has one.
    pub fn find(&self, name: &str, recipe_hash: &str) -> Option<&Entry> {
        self.packages
            .iter()
            .find(|e| e.name == name && e.recipe_hash == recipe_hash)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the index serializes") + "\n"
    }
}

/// `name` relative to the binary host's base URL.
pub fn join(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// Whether a name given to `upm import` is a URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(TIMEOUT))
        .timeout_recv_body(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET a URL's body. `Ok(None)` when the server answers 404.
pub fn get(url: &str) -> Result<Option<Vec<u8>>, Error> {
    let http = |why: String| Error::Http {
        url: url.to_string(),
        why,
    };
    let mut resp = agent().get(url).call().map_err(|e| http(e.to_string()))?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        s => return Err(http(format!("the server answered HTTP {s}"))),
    }
    resp.body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map(Some)
        .map_err(|e| http(e.to_string()))
}

/// Fetch and read a binary host's index.
pub fn fetch_index(base: &str) -> Result<Index, Error> {
    let url = join(base, INDEX);
    let body = get(&url)?.ok_or_else(|| Error::Http {
        url: url.clone(),
        why: "no such file (HTTP 404): is this the directory `upm export --all` wrote?".into(),
    })?;
    let index: Index = serde_json::from_slice(&body).map_err(|e| Error::BadIndex {
        url: url.clone(),
        why: e.to_string(),
    })?;
    if index.format != FORMAT {
        return Err(Error::BadIndex {
            url,
            why: format!("format {}, this upm reads format {FORMAT}", index.format),
        });
    }
    Ok(index)
}

/// Read an index written earlier into `dir` (a host path), if there is one.
pub fn read_index(dir: &Path) -> Option<Index> {
    let text = std::fs::read(dir.join(INDEX)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_finds_by_name_and_recipe_hash() {
        let e = |name: &str, hash: &str| Entry {
            name: name.into(),
            version: "1".into(),
            recipe_hash: hash.into(),
            archive: format!("{name}.upm.tar.zst"),
            signature: format!("{name}.upm.tar.zst.sig"),
            sha256: "00".repeat(32),
            size: 1,
        };
        let i = Index::new(vec![e("zlib", "bb"), e("xz", "aa")]);
        assert_eq!(i.packages[0].name, "xz");
        assert_eq!(i.find("xz", "aa").unwrap().archive, "xz.upm.tar.zst");
        assert!(i.find("xz", "bb").is_none());
        let back: Index = serde_json::from_str(&i.to_json()).unwrap();
        assert_eq!(back, i);
        assert_eq!(join("http://h/x/", INDEX), "http://h/x/index.json");
    }
}
