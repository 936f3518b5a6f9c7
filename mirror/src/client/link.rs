//! The client's side of the protocol over one connection (a TCP socket, or an ssh tunnel's
//! pipes): authenticate, start, read batches (skipping `KEEPALIVE`), ask for and receive file
//! content.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::client::Config;
use crate::client::delta::{Base, Deltas, rebuild};
use crate::client::tunnel::Tunnel;
use crate::error::{Error, Result};
use crate::proto::codec::hex;
use crate::proto::{Connection, Reply, Request};
use crate::record::{BadRecord, Kind, Meta, Record};
use crate::server::cmd::auth::proof;

/// A batch of records as received.
pub struct Batch {
    pub serial: u64,
    pub records: Vec<Result<Record, BadRecord>>,
}

/// What a `GET` brought.
pub enum Content {
    /// The file changed since; a later record tells what became of it.
    Changed,
    /// The bytes were handed to the sink and matched their SHA-256.
    Received,
    /// The bytes did not match their SHA-256 (the sink got them anyway: discard them).
    Corrupt,
}

/// Either end of the byte streams under a link.
type In = Box<dyn Read + Send>;
type Out = Box<dyn Write + Send>;

pub struct Link {
    conn: Connection<In, Out>,
    peer: String,
    /// A command to send once the `GET`s of the batch being applied are all asked (see
    /// [`Link::defer`]).
    deferred: Option<Request>,
    /// The ssh process carrying the link, if any (ended with it).
    _tunnel: Option<Tunnel>,
    /// What was asked for and not yet answered, in order: a `GET`, or a `DELTA` and its base.
    asked: VecDeque<Option<Base>>,
    deltas: Deltas,
}

impl Link {
    /// Connect as the configuration says: straight, or through ssh.
    pub fn open(cfg: &Config) -> Result<Link> {
        let mut link = Link::reach(cfg)?;
        link.deltas = Deltas::new(cfg.delta_min, &cfg.datadir.join(".fs_mirror"));
        Ok(link)
    }

    fn reach(cfg: &Config) -> Result<Link> {
        let Some(ssh) = &cfg.ssh else {
            return Link::connect(&cfg.host, cfg.port, cfg.idle);
        };
        let peer = format!("ssh {} -> {}:{}", ssh.dest, cfg.host, cfg.port);
        let (tunnel, out, inp) =
            Tunnel::open(ssh, &cfg.host, cfg.port, cfg.idle).map_err(|source| Error::Net {
                peer: peer.clone(),
                source,
            })?;
        Ok(Link {
            conn: Connection::over(Box::new(out), Box::new(inp), peer.clone()),
            peer,
            _tunnel: Some(tunnel),
            deferred: None,
            asked: VecDeque::new(),
            deltas: Deltas::new(None, Path::new("")),
        })
    }

    /// Connect; a peer silent for longer than `idle` (it sends `KEEPALIVE` more often) is dead.
    pub fn connect(host: &str, port: u16, idle: Duration) -> Result<Link> {
        let peer = format!("{host}:{port}");
        let net = |source| Error::Net {
            peer: peer.clone(),
            source,
        };
        let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(net)?.collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
                Ok(s) => {
                    s.set_read_timeout(Some(idle)).map_err(net)?;
                    s.set_nodelay(true).map_err(net)?;
                    let r = s.try_clone().map_err(net)?;
                    return Ok(Link {
                        conn: Connection::over(Box::new(r), Box::new(s), peer.clone()),
                        peer,
                        deferred: None,
                        _tunnel: None,
                        asked: VecDeque::new(),
                        deltas: Deltas::new(None, Path::new("")),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(net(
            last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into())
        ))
    }

    fn net(&self) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let peer = self.peer.clone();
        move |source| Error::Net { peer, source }
    }

    fn protocol(&self, what: String) -> Error {
        Error::Protocol {
            peer: self.peer.clone(),
            what,
        }
    }

    /// Queue a command (sent at the next flush).
    pub fn send(&mut self, r: &Request) -> Result<()> {
        if let Request::Get { .. } | Request::GetMeta { .. } = r {
            self.asked.push_back(None);
        }
        self.conn.write_line(&r.line()).map_err(self.net())
    }

    /// Queue a command; the bytes it takes on the wire.
    pub fn send_sized(&mut self, r: &Request) -> Result<usize> {
        if let Request::Get { .. } = r {
            self.asked.push_back(None);
        }
        let line = r.line();
        self.conn.write_line(&line).map_err(self.net())?;
        Ok(line.len() + 2)
    }

    /// Ask for a file's content (sent at the next flush): by delta against `local`, the
    /// mirror's copy, when it is large enough ([`Deltas`]), else whole; the bytes it takes on
    /// the wire.
    pub fn get(&mut self, serial: u64, path: PathBuf, local: Option<&Path>) -> Result<usize> {
        let Some((base, sig)) = local.and_then(|l| self.deltas.prepare(l)) else {
            return self.send_sized(&Request::Get { serial, path });
        };
        let line = Request::Delta { serial, path }.line();
        let n = line.len() + 2 + sig.len() + 16;
        let net = self.net();
        let mut ask = || -> std::io::Result<()> {
            self.conn.write_line(&line)?;
            self.conn.write_line(&format!("SIG:{}", sig.len()))?;
            self.conn.write_bytes(&sig)
        };
        ask().map_err(net)?;
        self.asked.push_back(Some(base));
        Ok(n)
    }

    pub fn flush(&mut self) -> Result<()> {
        self.conn.flush().map_err(self.net())
    }

    pub fn command(&mut self, r: &Request) -> Result<()> {
        self.send(r)?;
        self.flush()
    }

    /// Send `r` right after the last `GET` of the batch being applied instead of after the
    /// batch: its answer then follows their answers, and the server prepares it while the
    /// client is still writing files. Only for a command answered at once (`NEXT` during
    /// `INIT`); [`Link::send_deferred`] sends it, and the caller calls that again after the
    /// batch in case no `GET` was asked.
    pub fn defer(&mut self, r: Request) {
        self.deferred = Some(r);
    }

    /// Send the deferred command, if any.
    pub fn send_deferred(&mut self) -> Result<()> {
        match self.deferred.take() {
            Some(r) => self.command(&r),
            None => Ok(()),
        }
    }

    /// The next line that is not a keep-alive.
    pub fn line(&mut self) -> Result<String> {
        loop {
            let l = self.conn.read_line().map_err(self.net())?;
            let Some(l) = l else {
                return Err(self.protocol("the server closed the connection".into()));
            };
            let l = String::from_utf8_lossy(&l).into_owned();
            if l != Reply::KEEPALIVE {
                return Ok(l);
            }
        }
    }

    /// Prove the shared secret, and check that the server knows it too.
    pub fn auth(&mut self, secret: &[u8]) -> Result<()> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| self.protocol(format!("no randomness: {e}")))?;
        let nonce = hex(&b);
        self.command(&Request::Auth(Some(nonce.clone())))?;
        let l = self.line()?;
        let Some((challenge, server_proof)) =
            l.strip_prefix("CHALLENGE:").and_then(|c| c.split_once(' '))
        else {
            return Err(self.protocol(format!(
                "answered {l:?} to AUTH: it has no --secret-file, or is not mirrord"
            )));
        };
        if proof(secret, "server", &nonce) != server_proof {
            return Err(self.protocol(
                "does not know the shared secret (wrong --secret-file on one side)".into(),
            ));
        }
        let response = proof(secret, "client", challenge);
        self.command(&Request::Response(response))?;
        match self.line()?.as_str() {
            Reply::OK => Ok(()),
            other => Err(self.protocol(format!("refused our secret: {other}"))),
        }
    }

    /// A batch whose `SERIAL:` line `first` was read already.
    pub fn batch_after(&mut self, first: &str) -> Result<Batch> {
        let serial = first
            .strip_prefix("SERIAL:")
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| self.protocol(format!("expected SERIAL:<n>, got {first:?}")))?;
        let mut records = Vec::new();
        loop {
            let l = self.line()?;
            if l == Reply::EOF {
                return Ok(Batch { serial, records });
            }
            records.push(Record::parse(&l));
        }
    }

    /// The next batch; `idle` is called at each `KEEPALIVE` while it is awaited (a quiet
    /// point: nothing is being applied).
    pub fn batch_or_idle(&mut self, idle: &mut dyn FnMut() -> Result<()>) -> Result<Batch> {
        loop {
            let l = self.conn.read_line().map_err(self.net())?;
            let Some(l) = l else {
                return Err(self.protocol("the server closed the connection".into()));
            };
            let l = String::from_utf8_lossy(&l).into_owned();
            if l == Reply::KEEPALIVE {
                idle()?;
            } else {
                return self.batch_after(&l);
            }
        }
    }

    /// The next batch.
    pub fn batch(&mut self) -> Result<Batch> {
        let first = self.line()?;
        self.batch_after(&first)
    }

    /// The answer to a `GET`, its bytes handed to `sink` (writing to `to`).
    pub fn content(
        &mut self,
        to: &std::path::Path,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<Content> {
        Ok(self.content_meta(to, sink)?.0)
    }

    /// The answer to a `GET … META`: as [`Link::content`], with the served file's state
    /// (`None` from a server that does not send it).
    pub fn content_meta(
        &mut self,
        to: &std::path::Path,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(Content, Option<Meta>)> {
        let asked = self.asked.pop_front().flatten();
        let mut l = self.line()?;
        let mut meta = None;
        if let Some(m) = l.strip_prefix("META:") {
            meta =
                Some(served_meta(m).ok_or_else(|| self.protocol(format!("bad META line {l:?}")))?);
            l = self.line()?;
        }
        Ok((self.answer(l, asked, to, sink)?, meta))
    }

    /// A `GET`'s answer after its first line `l` (`asked`: the base of a `DELTA`).
    fn answer(
        &mut self,
        l: String,
        asked: Option<Base>,
        to: &std::path::Path,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<Content> {
        if l == Reply::CHANGED {
            return Ok(Content::Changed);
        }
        if let Some(base) = asked
            && let Some(n) = l.strip_prefix("DELTA:")
        {
            return self.delta(n, &base, to, sink);
        }
        let size: u64 = l
            .strip_prefix("SIZE:")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.protocol(format!("expected SIZE:<n> or CHANGED, got {l:?}")))?;
        let mut sha = Sha256::new();
        let mut failed = None;
        self.conn
            .read_bytes(size, &mut |b| {
                sha.update(b);
                if failed.is_none()
                    && let Err(e) = sink(b)
                {
                    failed = Some(e);
                }
                Ok(())
            })
            .map_err(self.net())?;
        let l = self.line()?;
        if let Some(e) = failed {
            return Err(Error::Io {
                path: to.to_path_buf(),
                source: e,
            });
        }
        let want = l
            .strip_prefix("SHA256:")
            .ok_or_else(|| self.protocol(format!("expected SHA256:<hex>, got {l:?}")))?;
        Ok(if hex(&sha.finalize()) == want {
            Content::Received
        } else {
            Content::Corrupt
        })
    }

    /// A `DELTA:<n>` answer: the delta, applied to `base`, checked, handed to `sink`.
    fn delta(
        &mut self,
        n: &str,
        base: &Base,
        to: &Path,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<Content> {
        let n: u64 = n
            .parse()
            .ok()
            .filter(|n| *n <= 2 * crate::client::delta::DELTA_MAX)
            .ok_or_else(|| self.protocol(format!("bad DELTA:{n}")))?;
        let mut delta = Vec::with_capacity(n as usize);
        self.conn
            .read_bytes(n, &mut |b| {
                delta.extend_from_slice(b);
                Ok(())
            })
            .map_err(self.net())?;
        let l = self.line()?;
        let want = l
            .strip_prefix("SHA256:")
            .ok_or_else(|| self.protocol(format!("expected SHA256:<hex>, got {l:?}")))?;
        let old = std::fs::read(&base.path).map_err(|source| Error::Io {
            path: base.path.clone(),
            source,
        })?;
        let io = |source| Error::Io {
            path: to.to_path_buf(),
            source,
        };
        match rebuild(&old, &delta, want) {
            Ok(Some(new)) => {
                sink(&new).map_err(io)?;
                Ok(Content::Received)
            }
            Ok(None) => Ok(Content::Corrupt),
            Err(e) => Err(self.protocol(format!("a delta that does not apply: {e}"))),
        }
    }
}

/// A `META:` line's fields (`mode=600 uid=0 gid=0 mtime=…`): a regular file's state.
fn served_meta(fields: &str) -> Option<Meta> {
    let (mut mode, mut uid, mut gid, mut mtime) = (None, None, None, None);
    for w in fields.split(' ') {
        let (k, v) = w.split_once('=')?;
        match k {
            "mode" => mode = Some(u32::from_str_radix(v, 8).ok()? & 0o7777),
            "uid" => uid = Some(v.parse().ok()?),
            "gid" => gid = Some(v.parse().ok()?),
            "mtime" => mtime = Some(v.parse().ok()?),
            // Fields of later versions are skipped.
            _ => {}
        }
    }
    Some(Meta {
        kind: Kind::File,
        mode: mode?,
        uid: uid?,
        gid: gid?,
        size: 0,
        mtime_ns: mtime?,
        target: None,
    })
}
