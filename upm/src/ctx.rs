//! The context passed down every call chain: how to print, and (as upm grows) the target root,
//! the database and settings. Nothing in upm reads global state behind its back.

use crate::printer::Printer;

pub struct Ctx {
    pub printer: Printer,
}

impl Ctx {
    pub fn new(printer: Printer) -> Ctx {
        Ctx { printer }
    }
}
