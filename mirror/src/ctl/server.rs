//! The daemon's side of `mirrord ctl`: [`listen`] makes the socket (mode 0600, a stale one from
//! a killed mirrord replaced), [`spawn`] answers requests on a thread of its own, one
//! connection at a time, each from root only (`SO_PEERCRED`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use upm_watch::{Control, Rules};

use crate::ctl::{Request, change, status};
use crate::error::{Error, Result, io};
use crate::server::Served;

/// What the control requests act on.
pub struct Ctl {
    pub served: Arc<Served>,
    /// The running watcher.
    pub control: Control,
    pub fs_info_dir: PathBuf,
    /// The identities mirrord serves, as given at its start.
    pub identities: Vec<String>,
    pub backend: &'static str,
    /// The rules watched now; held through a change, so changes go one at a time.
    pub rules: Mutex<Rules>,
}

/// The control socket at `path`, mode 0600.
pub fn listen(path: &Path) -> Result<UnixListener> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(Error::Internal(format!(
                "{} is in the way of mirrord's control socket and is no socket; move it away",
                path.display()
            )));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(Error::Internal(format!(
                "another mirrord answers on {}: one state directory serves one mirrord",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(io(path))?;
    }
    let l = UnixListener::bind(path).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    Ok(l)
}

/// Answer control requests on `listener` until the process ends.
pub fn spawn(listener: UnixListener, ctl: Arc<Ctl>) -> Result<()> {
    std::thread::Builder::new()
        .name("mirrord-ctl".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = answer(s, &ctl) {
                            eprintln!("mirrord: ctl: {e}");
                        }
                    }
                    Err(e) => eprintln!("mirrord: ctl: accept: {e}"),
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the control thread: {e}")))?;
    Ok(())
}

/// The uid of the process at the other end.
fn peer_uid(s: &UnixStream) -> std::io::Result<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    Ok(getsockopt(s, PeerCredentials)?.uid())
}

fn answer(stream: UnixStream, ctl: &Ctl) -> Result<()> {
    let net = |source| Error::Net {
        peer: "control socket".into(),
        source,
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(net)?;
    let mut out = stream.try_clone().map_err(net)?;
    // The request is read whoever sent it, so the answer finds its sender listening.
    let mut line = String::new();
    BufReader::new((&stream).take(64 * 1024))
        .read_line(&mut line)
        .map_err(net)?;
    let reply = match peer_uid(&stream) {
        Ok(0) => match Request::parse(line.trim_end()) {
            Ok(req) => {
                let what = req.line();
                let quiet = req == Request::Status;
                let r = run(ctl, req);
                match &r {
                    // Changes are told; a status asked every minute by a monitor is not.
                    Ok(_) if quiet => {}
                    Ok(_) => eprintln!("mirrord: ctl {what}"),
                    Err(e) => eprintln!("mirrord: ctl {what}: {e}"),
                }
                r.unwrap_or_else(|e| json!({"ok": false, "error": e.to_string()}))
            }
            Err(e) => json!({"ok": false, "error": e}),
        },
        Ok(uid) => json!({
            "ok": false,
            "error": format!("mirrord ctl answers root only (you are uid {uid})")
        }),
        Err(e) => json!({"ok": false, "error": format!("cannot tell who you are: {e}")}),
    };
    writeln!(out, "{reply}").map_err(net)
}

fn run(ctl: &Ctl, req: Request) -> Result<Value> {
    match req {
        Request::Status => status::status(ctl),
        Request::Change {
            change,
            path,
            identity,
        } => change::apply(ctl, change, &path, identity.as_deref()),
    }
}
