//! Showing which signals saw each path of an install (the watcher, the shim, ownership) and
//! where they disagree: for `upm install --explain-tracking` and `upm info PKG --tracking`.

use serde::Serialize;
use upm::pathtext::{JsonPath, quoted};
use upm::printer::Printer;
use upm::track::Signals;

/// One path in `--json` output.
#[derive(Serialize)]
pub struct JsonTracking {
    #[serde(flatten)]
    path: JsonPath,
    inotify: bool,
    /// `null` when the shim was off.
    shim: Option<bool>,
    /// `claimed`, `foreign` (someone else's: reported, not claimed) or `gone`.
    verdict: &'static str,
    /// The owner when tracked.
    uid: Option<u32>,
    /// Where the signals disagree, if they do.
    disagreement: Option<String>,
}

impl JsonTracking {
    pub fn new(s: &Signals) -> JsonTracking {
        JsonTracking {
            path: JsonPath::new(&s.path),
            inotify: s.inotify,
            shim: s.shim,
            verdict: s.verdict.name(),
            uid: s.verdict.uid(),
            disagreement: s.disagreement(),
        }
    }
}

/// The rows as text: a summary line, then one line per path.
pub fn show(p: &Printer, rows: &[Signals]) {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let both = rows
        .iter()
        .filter(|r| r.inotify && r.shim == Some(true))
        .count();
    let only_watcher = rows
        .iter()
        .filter(|r| r.inotify && r.shim == Some(false))
        .count();
    let only_shim = rows
        .iter()
        .filter(|r| !r.inotify && r.shim == Some(true))
        .count();
    let foreign = rows
        .iter()
        .filter(|r| r.verdict.name() == "foreign")
        .count();
    let shim_off = rows.iter().all(|r| r.shim.is_none());
    if shim_off {
        p.line(&format!(
            "tracking: {} paths, seen by the watcher (the shim was off); {foreign} not claimed",
            rows.len()
        ));
    } else {
        p.line(&format!(
            "tracking: {} paths; watcher and shim both saw {both}, only the watcher {only_watcher}, \
             only the shim {only_shim}; {foreign} not claimed",
            rows.len()
        ));
    }
    p.line(&format!(
        "  {:<7} {:<4} {:<17} path",
        "inotify", "shim", "verdict"
    ));
    for r in rows {
        let verdict = match r.verdict.uid() {
            Some(uid) => format!("{} uid {uid}", r.verdict.name()),
            None => r.verdict.name().to_string(),
        };
        let why = r
            .disagreement()
            .map(|d| format!("  <- {d}"))
            .unwrap_or_default();
        p.line(&format!(
            "  {:<7} {:<4} {:<17} {}{why}",
            yes(r.inotify),
            r.shim.map_or("off", yes),
            verdict,
            quoted(&r.path)
        ));
    }
}
