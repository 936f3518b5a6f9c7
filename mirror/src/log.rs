//! Where mirrord's and fs_mirror's messages go. By default to stderr, one line each: under
//! systemd that is the journal (timestamps, rotation and size limits are journald's). Where
//! there is no journal, `--log-file F --log-max-size N` sends them to a size-capped file
//! instead, without logrotate: [`to_file`] points the process's stderr at a pipe, and a thread
//! writes each line to `F` with a UTC timestamp, renaming `F` to `F.1` (the one older
//! generation kept) once it would pass `N` bytes. Everything that reaches stderr is kept,
//! the messages of a panic too.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::error::{Error, Result, io};

/// The logging thread; dropping it closes stderr and waits until every line is written.
pub struct LogFile {
    thread: Option<JoinHandle<()>>,
}

/// A size like `10M`, `512k`, `1G` or plain bytes.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return Err(format!("{s:?}: a size such as 10M, 512k, 1G or bytes")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n * mult >= 4096 => Ok(n * mult),
        Ok(_) => Err(format!(
            "{s:?}: at least 4k, or nothing but rotation is logged"
        )),
        Err(_) => Err(format!("{s:?}: a size such as 10M, 512k, 1G or bytes")),
    }
}

/// Send everything written to stderr from now on to `path`, capped at `max` bytes.
pub fn to_file(path: &Path, max: u64) -> Result<LogFile> {
    let mut sink = Sink::open(path, max)?;
    let (rx, tx) = std::io::pipe().map_err(io(path))?;
    nix::unistd::dup2_stderr(&tx).map_err(|e| io(path)(e.into()))?;
    drop(tx);
    let thread = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || {
            let mut lines = BufReader::new(rx);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                sink.write(&line);
                line.clear();
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the logging thread: {e}")))?;
    Ok(LogFile {
        thread: Some(thread),
    })
}

impl Drop for LogFile {
    fn drop(&mut self) {
        // The pipe's last writer is stderr itself: point it elsewhere, and the thread reads
        // to the end.
        if let Ok(null) = File::open("/dev/null") {
            let _ = nix::unistd::dup2_stderr(&null);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The log file, its size, and its cap.
struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl Sink {
    fn open(path: &Path, max: u64) -> Result<Sink> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let size = file.metadata().map_err(io(path))?.len();
        Ok(Sink {
            path: path.to_path_buf(),
            file,
            size,
            max,
        })
    }

    /// Write one line, rotating first when it would pass the cap. A failure to log has nowhere
    /// to be told: the line is dropped.
    fn write(&mut self, line: &[u8]) {
        let mut out = stamp(std::time::SystemTime::now()).into_bytes();
        out.push(b' ');
        out.extend_from_slice(line);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        if self.size > 0 && self.size + out.len() as u64 > self.max {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            if std::fs::rename(&self.path, &old).is_ok()
                && let Ok(s) = Sink::open(&self.path, self.max)
            {
                *self = s;
            }
        }
        if self.file.write_all(&out).is_ok() {
            self.size += out.len() as u64;
        }
    }
}

/// `2026-11-23T16:40:01Z`.
fn stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_stamps() {
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert!(parse_size("12").is_err() && parse_size("1T").is_err());
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_451_401);
        assert_eq!(stamp(t), "2026-11-23T16:30:01Z");
        assert_eq!(stamp(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_full_file_is_renamed_to_dot_1_and_a_new_one_begun() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mirrord.log");
        let mut s = Sink::open(&p, 4096).unwrap();
        let line = [b'x'; 99];
        for _ in 0..100 {
            s.write(&line);
        }
        let now = std::fs::metadata(&p).unwrap().len();
        let old = std::fs::metadata(d.path().join("mirrord.log.1"))
            .unwrap()
            .len();
        assert!(now <= 4096 && old <= 4096, "{now} {old}");
        assert!(old > 4096 - 200, "the old generation was full: {old}");
        assert!(!d.path().join("mirrord.log.2").exists());
    }
}
