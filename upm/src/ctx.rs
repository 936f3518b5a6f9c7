//! The context passed down every call chain: how to print, and (as upm grows) the target root,
//! the database and settings. Nothing in upm reads global state behind its back.

use std::path::PathBuf;

use crate::pkguser::Ids;
use crate::printer::Printer;

pub struct Ctx {
    pub printer: Printer,
    /// The target root (`--root`, default `/`).
    pub root: PathBuf,
    /// Package-user id ranges and the install group.
    pub ids: Ids,
}

impl Ctx {
    pub fn new(printer: Printer, root: PathBuf) -> Ctx {
        Ctx {
            printer,
            root,
            ids: Ids::default(),
        }
    }
}
