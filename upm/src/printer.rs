//! All user-facing output goes through the [`Printer`]: results on stdout (human text, or JSON
//! with `--json`), notes and warnings on stderr. Nothing decorative is printed when stdout is
//! not a terminal, and a closed pipe (`upm files x | head`) is not an error. File names in
//! text are shown with [`crate::pathtext::quoted`], in JSON with [`crate::pathtext::JsonPath`].

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone)]
pub struct Printer {
    json: bool,
    stdout_tty: bool,
    stderr_tty: bool,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// Whether results should be printed as JSON.
    pub fn json_mode(&self) -> bool {
        self.json
    }

    /// Whether stdout is a terminal (progress displays and alignment are for people only).
    pub fn is_tty(&self) -> bool {
        self.stdout_tty
    }

    /// Whether stderr is a terminal (where progress bars are drawn).
    pub fn stderr_is_tty(&self) -> bool {
        self.stderr_tty
    }

    /// A line of results on stdout.
    pub fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// Raw text on stdout, as is.
    pub fn raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
    }

    /// A note for the person at the terminal, on stderr.
    pub fn note(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "upm: {text}");
    }

    /// A line that goes with the last note (a list under it), on stderr, as is.
    pub fn detail(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    pub fn warn(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "upm: warning: {text}");
    }

    /// A JSON document on stdout, from a `#[derive(Serialize)]` value.
    pub fn json<T: serde::Serialize + ?Sized>(&self, value: &T) {
        let mut out = std::io::stdout().lock();
        // Output types hold strings, numbers and maps with string keys only: they always
        // serialize.
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        let _ = writeln!(out, "{text}");
    }
}
