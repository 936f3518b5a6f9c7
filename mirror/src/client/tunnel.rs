//! The protocol through ssh: `fs_mirror --ssh user@host` runs `ssh -W HOST:PORT user@host`
//! (HOST is where mirrord listens as seen from that machine, 127.0.0.1 by default) and speaks
//! over its stdin and stdout. ssh brings the encryption and the host authentication every
//! admin already runs — no TLS code of our own; the shared secret still authenticates the
//! mirror itself. ssh's own messages (a refused key, an unknown host key) go to fs_mirror's
//! stderr. The tunnel's process ends with the link.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How to reach the mirrord host through ssh.
#[derive(Debug, Clone)]
pub struct Ssh {
    /// `user@host` (or a `Host` of the ssh configuration).
    pub dest: String,
    /// Each given to ssh as `-o OPTION` (`IdentityFile=...`, `Port=2222`, ...).
    pub opts: Vec<String>,
}

/// A running `ssh -W`, killed when dropped.
pub struct Tunnel {
    child: Child,
}

impl Tunnel {
    /// Start `ssh -W host:port dest`; its stdout (read with an idle limit) and stdin.
    pub fn open(
        ssh: &Ssh,
        host: &str,
        port: u16,
        idle: Duration,
    ) -> io::Result<(Tunnel, Timed<ChildStdout>, ChildStdin)> {
        let mut cmd = Command::new("ssh");
        cmd.arg("-W").arg(format!("{}:{port}", bracket(host)));
        // Never a password prompt (fs_mirror runs unattended); a dead link noticed by ssh too.
        for o in [
            "BatchMode=yes",
            "ExitOnForwardFailure=yes",
            "ServerAliveInterval=15",
        ] {
            cmd.arg("-o").arg(o);
        }
        for o in &ssh.opts {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("--").arg(&ssh.dest);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
        let out = child.stdout.take().expect("piped");
        let inp = child.stdin.take().expect("piped");
        Ok((Tunnel { child }, Timed { inner: out, idle }, inp))
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An IPv6 address in the brackets `-W` wants.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A pipe read with an idle limit, as a socket's read timeout does: silence longer than
/// `idle` is an error (the server sends `KEEPALIVE` more often than that).
pub struct Timed<T> {
    inner: T,
    idle: Duration,
}

impl<T: Read + AsFd> Read for Timed<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let ms = u32::try_from(self.idle.as_millis()).unwrap_or(u32::MAX);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.inner.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, timeout) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "nothing through the ssh tunnel for too long",
                    ));
                }
                Ok(_) => return self.inner.read(buf),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
