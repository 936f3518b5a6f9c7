//! fs_sync `report`: print the records, touch nothing — the original design's real-time
//! tripwire: every change on the server as a line, or a JSON object a line with `--json`.

use std::io::Write;

use crate::client::Sync;
use crate::client::link::Link;
use crate::error::Result;
use crate::record::Record;

pub struct Report {
    json: bool,
}

impl Report {
    pub fn new(json: bool) -> Report {
        Report { json }
    }
}

fn json(serial: u64, r: &Record) -> serde_json::Value {
    let mut v = serde_json::json!({
        "serial": serial,
        "op": r.op.name(),
        "path": r.path.to_string_lossy(),
    });
    if let Some(to) = &r.to {
        v["to"] = to.to_string_lossy().into();
    }
    if let Some(m) = &r.meta {
        v["mode"] = format!("{:o}", m.mode).into();
        v["uid"] = m.uid.into();
        v["gid"] = m.gid.into();
        if r.op == crate::record::Op::Fwrite {
            v["size"] = m.size.into();
            v["mtime_ns"] = m.mtime_ns.into();
        }
        if let Some(t) = &m.target {
            v["target"] = t.to_string_lossy().into();
        }
    }
    v
}

impl Sync for Report {
    fn batch(
        &mut self,
        records: &[(u64, Record)],
        _link: &mut Link,
        _done: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<()> {
        let mut out = std::io::stdout().lock();
        for (serial, r) in records {
            let _ = if self.json {
                writeln!(out, "{}", json(*serial, r))
            } else {
                writeln!(out, "{serial} {}", r.line())
            };
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let _ = std::io::stdout().flush();
        Ok(())
    }
}
