//! `mirrord ctl status`: how the running mirrord stands — the backend and its watches, the
//! trees, the wmLog's size, and every client with its lag — as JSON for `--json`, and as text
//! ([`text`]) for a person.

use std::time::SystemTime;

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::ctl::server::Ctl;
use crate::error::Result;
use crate::store::{snapshot, wmlog};

/// Records in the wmLog, and its first and last serials (none when empty).
pub fn log_size(db: &Connection) -> Result<(u64, Option<u64>, Option<u64>)> {
    Ok(db.query_row(
        "SELECT count(*), min(serial), max(serial) FROM wmlog",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, Option<i64>>(1)?.map(|n| n as u64),
                r.get::<_, Option<i64>>(2)?.map(|n| n as u64),
            ))
        },
    )?)
}

fn secs(since: SystemTime, now: SystemTime) -> f64 {
    now.duration_since(since).map_or(0.0, |d| d.as_secs_f64())
}

pub fn status(ctl: &Ctl) -> Result<Value> {
    let db = ctl.served.store.connect()?;
    let head = wmlog::head(&db)?;
    let (records, first, last) = log_size(&db)?;
    let now = SystemTime::now();
    let clients: Vec<Value> = ctl
        .served
        .clients
        .list()
        .into_iter()
        .map(|c| {
            let lag = c.serial.map(|s| head.saturating_sub(s));
            let lag_secs = c.serial.map(|s| {
                ctl.served
                    .head
                    .committed_after(s)
                    .map_or(0.0, |t| secs(t, now))
            });
            json!({
                "peer": c.peer,
                "phase": c.phase,
                "session": c.session,
                "serial": c.serial,
                "lag_records": lag,
                "lag_seconds": lag_secs.map(|s| (s * 10.0).round() / 10.0),
                "connected_seconds": secs(c.connected, now).round(),
            })
        })
        .collect();
    let rules = ctl.rules.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let path = |p: &std::path::PathBuf| p.to_string_lossy().into_owned();
    Ok(json!({
        "ok": true,
        "backend": ctl.backend,
        "session": ctl.served.session,
        "head": head,
        "watches": ctl.control.watched(),
        "trees": rules.roots.iter().map(path).collect::<Vec<_>>(),
        "excluded": rules.exclude.iter().map(path).collect::<Vec<_>>(),
        "snapshot_paths": snapshot::len(&db)?,
        "log": {"records": records, "first": first, "last": last},
        "clients": clients,
    }))
}

/// The status for a person.
pub fn text(v: &Value) -> String {
    let list = |k: &str| {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let num = |v: &Value| v.as_u64().map_or("-".into(), |n| n.to_string());
    let mut out = format!(
        "session {}  head serial {}  backend {}  {} directories watched\n",
        v["session"].as_str().unwrap_or("?"),
        num(&v["head"]),
        v["backend"].as_str().unwrap_or("?"),
        num(&v["watches"]),
    );
    out += &format!("trees: {}\n", list("trees"));
    if !list("excluded").is_empty() {
        out += &format!("excluded: {}\n", list("excluded"));
    }
    let log = &v["log"];
    out += &format!(
        "log: {} records (serials {}–{}), snapshot: {} paths\n",
        num(&log["records"]),
        num(&log["first"]),
        num(&log["last"]),
        num(&v["snapshot_paths"]),
    );
    let clients = v["clients"].as_array().cloned().unwrap_or_default();
    out += &format!("clients: {}\n", clients.len());
    for c in clients {
        out += &format!(
            "  {:<22} {:<9} serial {:<8} lag {} records, {} s  (connected {} s)\n",
            c["peer"].as_str().unwrap_or("?"),
            c["phase"].as_str().unwrap_or("?"),
            num(&c["serial"]),
            num(&c["lag_records"]),
            c["lag_seconds"]
                .as_f64()
                .map_or("-".into(), |s| format!("{s:.1}")),
            c["connected_seconds"].as_f64().unwrap_or(0.0),
        );
    }
    out
}
