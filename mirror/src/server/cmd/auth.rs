//! `AUTH [NONCE]` → `CHALLENGE:<hex>` (followed by the server's own proof of the secret,
//! the HMAC of the client's nonce, when one was given); `RESPONSE:<hex>` → `OK` when it is
//! the HMAC-SHA256 of the challenge under the shared secret, else `AUTH FAILED` and close.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::Result;
use crate::proto::Reply;
use crate::proto::codec::hex;
use crate::server::session::{Flow, Session};

/// The HMAC-SHA256 of `label` and `challenge` under `secret`, in hex. The label keeps the
/// server's proof and the client's from being swapped.
pub fn proof(secret: &[u8], label: &str, challenge: &str) -> String {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    m.update(label.as_bytes());
    m.update(challenge.as_bytes());
    hex(&m.finalize().into_bytes())
}

pub fn challenge(s: &mut Session<'_>, nonce: Option<String>) -> Result<Flow> {
    let Some(secret) = s.served.secret.clone() else {
        // A client that wants to authenticate must not talk to a server that cannot.
        return s.refuse(Reply::INVALID_COMMAND);
    };
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| crate::error::Error::Protocol {
        peer: s.conn.peer().into(),
        what: format!("no randomness for a challenge: {e}"),
    })?;
    let c = hex(&b);
    let line = match nonce {
        Some(n) => format!("CHALLENGE:{c} {}", proof(&secret, "server", &n)),
        None => format!("CHALLENGE:{c}"),
    };
    s.challenge = Some(c);
    s.say(&line)
}

pub fn response(s: &mut Session<'_>, r: &str) -> Result<Flow> {
    let (Some(secret), Some(c)) = (s.served.secret.clone(), s.challenge.take()) else {
        return s.refuse(Reply::INVALID_COMMAND);
    };
    let want = proof(&secret, "client", &c);
    // Compared in constant time.
    let same = want.len() == r.len()
        && want
            .bytes()
            .zip(r.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if same {
        s.authed = true;
        s.say(Reply::OK)
    } else {
        eprintln!("mirrord: {}: wrong secret, closing", s.conn.peer());
        s.refuse(Reply::AUTH_FAILED)
    }
}
