//! `mirrord ctl`: change what a running mirrord watches, and ask how it stands, without a
//! restart (the original design's wished-for `mirrord -k`). The daemon listens on a Unix
//! socket in its state directory, `ctl.sock`, mode 0600, and answers only root (checked by
//! the peer's credentials, `SO_PEERCRED`). One request line, one JSON reply line:
//!
//! - `include PATH [IDENTITY]`: mirror a tree too — it is walked and every path in it logged as
//!   created, so clients fetch it; persisted in fs_info.
//! - `exclude PATH [IDENTITY]`: stop mirroring a tree — its watches go and its snapshot entries
//!   are dropped **without DELETE records**: the mirrors keep the copy they have (as an
//!   rsync without `--delete-excluded`); persisted in fs_info.
//! - `status`: clients (peer, phase, session, serial, lag in records and seconds), watches,
//!   the wmLog's size, the backend.
//!
//! Paths are escaped as in records (`%XX`), so a line never breaks inside one.
//! [`server`] is the daemon's side, [`client`] the command's, [`clients`] the registry the
//! client sessions publish to, [`change`] and [`status`] the two kinds of answer.

pub mod change;
pub mod client;
pub mod clients;
pub mod server;
pub mod status;

use std::path::{Path, PathBuf};

use crate::record::{escape, unescape};

/// The control socket of the mirrord whose state is in `state_dir`.
pub fn socket(state_dir: &Path) -> PathBuf {
    state_dir.join("ctl.sock")
}

/// Include or exclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Include,
    Exclude,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::Include => "include",
            Change::Exclude => "exclude",
        }
    }
}

/// One request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Change {
        change: Change,
        path: PathBuf,
        identity: Option<String>,
    },
    Status,
}

impl Request {
    /// The request as a line (without its newline).
    pub fn line(&self) -> String {
        match self {
            Request::Status => "status".into(),
            Request::Change {
                change,
                path,
                identity,
            } => {
                let mut l = format!("{} {}", change.word(), escape(path.as_os_str()));
                if let Some(i) = identity {
                    l.push(' ');
                    l.push_str(i);
                }
                l
            }
        }
    }

    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let change = match words.first() {
            Some(&"status") if words.len() == 1 => return Ok(Request::Status),
            Some(&"include") => Change::Include,
            Some(&"exclude") => Change::Exclude,
            _ => {
                return Err(format!(
                    "unknown request {line:?} (include, exclude, status)"
                ));
            }
        };
        let (Some(path), 2..=3) = (words.get(1), words.len()) else {
            return Err(format!(
                "{line:?}: expected {} PATH [IDENTITY]",
                change.word()
            ));
        };
        let path = unescape(path).ok_or_else(|| format!("{path:?}: badly escaped path"))?;
        Ok(Request::Change {
            change,
            path: PathBuf::from(path),
            identity: words.get(2).map(|s| s.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_make_lines_and_back() {
        for r in [
            Request::Status,
            Request::Change {
                change: Change::Include,
                path: "/srv/a b/%x\nz".into(),
                identity: None,
            },
            Request::Change {
                change: Change::Exclude,
                path: "/srv/cache".into(),
                identity: Some("web".into()),
            },
        ] {
            let l = r.line();
            assert!(!l.contains('\n'), "{l:?}");
            assert_eq!(Request::parse(&l), Ok(r));
        }
        assert!(Request::parse("include").is_err());
        assert!(Request::parse("status now").is_err());
        assert!(Request::parse("reboot").is_err());
    }
}
