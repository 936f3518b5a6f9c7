//! A protocol connection over a pair of byte streams — a TCP socket's two halves, or the
//! stdout and stdin of an `ssh -W` tunnel: lines in (through [`codec::check`]), lines and raw
//! bytes out through a buffer that is flushed when the reader has nothing more buffered, so
//! pipelined requests (fs_mirror sends many `GET`s ahead) are answered in few writes.

use std::io::{self, BufWriter, Read, Write};
use std::net::TcpStream;

use super::codec::{self, Frame};

/// Bytes read at most per `read` call (the read buffer is zeroed once, not per read).
const READ: usize = 64 * 1024;

pub struct Connection<R: Read = TcpStream, W: Write = TcpStream> {
    reader: R,
    writer: BufWriter<W>,
    /// Read bytes are `buf[start..end]`; the rest of `buf` is room for the next read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    peer: String,
}

impl Connection {
    pub fn new(stream: TcpStream) -> io::Result<Connection> {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "peer".to_string(), |a| a.to_string());
        stream.set_nodelay(true)?;
        Ok(Connection::over(stream.try_clone()?, stream, peer))
    }
}

impl<R: Read, W: Write> Connection<R, W> {
    /// A connection reading `reader` and writing `writer`, `peer` naming the other end in
    /// messages.
    pub fn over(reader: R, writer: W, peer: String) -> Connection<R, W> {
        Connection {
            writer: BufWriter::with_capacity(256 * 1024, writer),
            reader,
            buf: vec![0; 2 * READ],
            start: 0,
            end: 0,
            peer,
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Whether a complete or partial line is already read and waiting.
    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Read what the socket has (at most [`READ`] bytes) after the buffered bytes.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.buf.len() - self.end < READ {
            // Move the unread bytes to the front, and grow when a partial line needs it.
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            if self.buf.len() - self.end < READ {
                self.buf.resize(self.end + READ, 0);
            }
        }
        let n = self.reader.read(&mut self.buf[self.end..self.end + READ])?;
        self.end += n;
        Ok(n)
    }

    /// The next line without its end; `None` at the end of the stream.
    pub fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match codec::check(&self.buf[self.start..self.end]) {
                Ok(n) => {
                    let line = codec::trim_end(&self.buf[self.start..self.start + n]).to_vec();
                    self.start += n;
                    return Ok(Some(line));
                }
                Err(Frame::TooLong) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
                }
                Err(Frame::Incomplete) => {
                    if self.fill()? == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Exactly `n` raw bytes, handed to `sink` piece by piece.
    pub fn read_bytes(
        &mut self,
        mut n: u64,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        while n > 0 {
            if !self.has_buffered() && self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let have = &self.buf[self.start..self.end];
            let take = have.len().min(n as usize);
            sink(&have[..take])?;
            self.start += take;
            n -= take as u64;
        }
        Ok(())
    }

    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\r\n")
    }

    pub fn write_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.writer.write_all(b)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}
