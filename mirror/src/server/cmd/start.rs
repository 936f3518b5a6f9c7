//! `START` → `OK`: the session begins (after `AUTH` when the server has a secret).

use crate::error::Result;
use crate::proto::Reply;
use crate::server::session::{Flow, Session, State};

pub fn apply(s: &mut Session<'_>) -> Result<Flow> {
    if !s.authed {
        return s.refuse(Reply::AUTH_REQUIRED);
    }
    s.state = State::Started;
    s.say(Reply::OK)
}
