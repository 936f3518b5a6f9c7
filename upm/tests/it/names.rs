//! File names with any bytes — a newline, bytes that are not UTF-8 — installed by a real
//! package in the sandbox, and round-tripped through `files --json` (string plus base64
//! `path_bytes`), `files` (shell-quoted), `owner` (given the raw bytes) and `remove`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use base64::Engine;

use crate::harness::Dir;
use crate::install::{Root, script_recipe};
use crate::needs_root;

const BAD: &[u8] = b"/usr/local/share/odd/bad\xff\xfebytes";
const NEWLINE: &str = "/usr/local/share/odd/new\nline";
const SPACE: &str = "/usr/local/share/odd/with space";

/// The manifest entry of `path` in `upm --json files` output.
fn entry<'a>(files: &'a serde_json::Value, path: &[u8]) -> &'a serde_json::Value {
    files
        .as_array()
        .unwrap()
        .iter()
        .find(|e| match e["path_bytes"].as_str() {
            Some(b) => base64::engine::general_purpose::STANDARD.decode(b).unwrap() == path,
            None => e["path"].as_str().unwrap().as_bytes() == path,
        })
        .unwrap_or_else(|| {
            panic!(
                "no entry for {:?} in {files:#}",
                String::from_utf8_lossy(path)
            )
        })
}

#[test]
fn odd_file_names_round_trip_through_files_owner_and_remove() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "odd",
        "install -d /usr/local/share/odd\n\
         echo bad > \"/usr/local/share/odd/$(printf 'bad\\377\\376bytes')\"\n\
         echo nl > '/usr/local/share/odd/new\nline'\n\
         echo sp > '/usr/local/share/odd/with space'\n\
         ln -s \"$(printf 'bad\\377\\376bytes')\" '/usr/local/share/odd/link'",
    );
    root.install(&recipe).success();

    // JSON: a UTF-8 name is an exact string; any other has its bytes in base64 too.
    let files = root.upm(["--json", "files", "odd"]).success().json();
    let bad = entry(&files, BAD);
    assert_eq!(bad["path"], "/usr/local/share/odd/bad\u{fffd}\u{fffd}bytes");
    assert_eq!(bad["type"], "file");
    let nl = entry(&files, NEWLINE.as_bytes());
    assert!(nl.get("path_bytes").is_none(), "{nl}");
    entry(&files, SPACE.as_bytes());
    let link = entry(&files, b"/usr/local/share/odd/link");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(link["target_bytes"].as_str().unwrap())
            .unwrap(),
        b"bad\xff\xfebytes"
    );

    // Text: quoted only where needed, one line per path.
    let text = root.upm(["files", "odd"]).success().stdout();
    assert_eq!(
        text,
        "/usr/local/share/odd\n\
         $'/usr/local/share/odd/bad\\xff\\xfebytes'\n\
         /usr/local/share/odd/link\n\
         $'/usr/local/share/odd/new\\nline'\n\
         '/usr/local/share/odd/with space'\n"
    );
    root.upm(["files", "-l", "odd"])
        .success()
        .stdout_has("/usr/local/share/odd/link -> $'bad\\xff\\xfebytes'\n");

    // owner takes the raw bytes, as a shell passes them.
    let raw = OsString::from_vec(BAD.to_vec());
    root.upm([OsStr::new("owner"), &raw, OsStr::new(NEWLINE)])
        .success()
        .stdout_is(
            "$'/usr/local/share/odd/bad\\xff\\xfebytes': odd\n\
             $'/usr/local/share/odd/new\\nline': odd\n",
        );
    let owners = root
        .upm([OsStr::new("--json"), OsStr::new("owner"), &raw])
        .success()
        .json();
    assert_eq!(owners[0]["package"], "odd");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(owners[0]["path_bytes"].as_str().unwrap())
            .unwrap(),
        BAD
    );
    root.upm(["check", "odd"]).success();

    // remove: a dry run names them quoted, then they are gone.
    root.upm(["remove", "--dry-run", "odd"])
        .success()
        .stdout_has("would remove $'/usr/local/share/odd/bad\\xff\\xfebytes'\n")
        .stdout_has("would remove $'/usr/local/share/odd/new\\nline'\n")
        .stdout_has("would remove '/usr/local/share/odd/with space'\n");
    let removed = root.upm(["--json", "remove", "odd"]).success().json();
    let paths = removed["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 5, "{removed:#}");
    assert!(
        paths.iter().all(|p| p["action"] == "removed"),
        "{removed:#}"
    );
    let upper: PathBuf = root.upper("usr/local/share/odd");
    assert!(!upper.exists(), "{} is still there", upper.display());
    root.upm([OsStr::new("owner"), &raw])
        .code(1)
        .stdout_is("$'/usr/local/share/odd/bad\\xff\\xfebytes': no package (and no such path)\n");
}
