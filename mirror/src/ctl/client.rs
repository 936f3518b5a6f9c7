//! The command's side of `mirrord ctl`: connect to the running mirrord's socket, send one
//! request, print the answer (text, or the JSON as it came with `--json`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::Value;

use crate::ctl::{Request, socket, status};
use crate::error::{Error, Result};

/// Send `req` to the mirrord of `state_dir`; what to print.
pub fn run(state_dir: &Path, req: &Request, json: bool) -> Result<String> {
    let path = socket(state_dir);
    let fail = |what: String| Error::Internal(format!("{}: {what}", path.display()));
    let mut s = UnixStream::connect(&path).map_err(|e| {
        fail(format!(
            "cannot reach mirrord's control socket: {e} (is mirrord running with --state-dir {}? \
             mirrord ctl is for root)",
            state_dir.display()
        ))
    })?;
    // A refusal may come before the request is taken: its answer is read all the same.
    let sent = writeln!(s, "{}", req.line());
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .map_err(|e| fail(e.to_string()))?;
    if line.is_empty()
        && let Err(e) = sent
    {
        return Err(fail(e.to_string()));
    }
    let v: Value =
        serde_json::from_str(&line).map_err(|e| fail(format!("mirrord answered {line:?}: {e}")))?;
    if v["ok"] != Value::Bool(true) {
        return Err(Error::Internal(format!(
            "mirrord refused: {}",
            v["error"].as_str().unwrap_or(line.trim())
        )));
    }
    if json {
        return Ok(format!("{v}\n"));
    }
    Ok(match req {
        Request::Status => status::text(&v),
        Request::Change { .. } => format!(
            "{}d {}: {} directories watched, {} paths in the snapshot (were {})\n",
            v["change"].as_str().unwrap_or("?"),
            v["path"].as_str().unwrap_or("?"),
            v["watches"],
            v["paths"],
            v["paths_before"],
        ),
    })
}
