//! `fs_mirror --ssh` against a real sshd the test starts on 127.0.0.1, with its own host key
//! and an authorized key made in the test's directory: the mirror converges through the
//! tunnel, and the shared secret still authenticates.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::*;

const SSHD: &str = "/usr/sbin/sshd";

/// An sshd of the test's own, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen {}", path.display());
}

impl Sshd {
    /// None when this machine has no sshd or is not root.
    fn start(dir: &Path) -> Option<Sshd> {
        if !Path::new(SSHD).exists() || Command::new("ssh").arg("-V").output().is_err() {
            eprintln!(
                "SKIPPED: no sshd ({SSHD}) or no ssh client: apt-get install openssh-server openssh-client"
            );
            return None;
        }
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: no sshd: running one needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        for attempt in 0..5 {
            // A port free a moment ago; sshd says whether it got it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nStrictModes no\n\
                     UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel VERBOSE\n",
                    d = dir.display()
                ),
            )
            .unwrap();
            let log = dir.join(format!("sshd.{attempt}.log"));
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut sshd = Sshd {
                child,
                port,
                log,
                dir: dir.to_path_buf(),
            };
            let up = eventually(10, "sshd listening or gone", || {
                let l = std::fs::read_to_string(&sshd.log).unwrap_or_default();
                if l.contains("Server listening on") {
                    Ok(true)
                } else if sshd.child.try_wait().unwrap().is_some() {
                    Ok(false)
                } else {
                    Err(l)
                }
            });
            if up {
                let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
                let mut words = host_pub.split_whitespace();
                let (kind, key) = (words.next().unwrap(), words.next().unwrap());
                std::fs::write(
                    dir.join("known_hosts"),
                    format!("[127.0.0.1]:{port} {kind} {key}\n"),
                )
                .unwrap();
                return Some(sshd);
            }
            eprintln!(
                "sshd did not start (attempt {attempt}): {}",
                std::fs::read_to_string(&sshd.log).unwrap_or_default()
            );
            let _ = sshd.child.wait();
        }
        panic!("sshd would not start; see the logs in {}", dir.display());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// fs_mirror's arguments to go through this sshd as root.
    fn args(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut v = vec!["--ssh".to_string(), "root@127.0.0.1".to_string()];
        for o in [
            format!("Port={}", self.port),
            format!("IdentityFile={d}/client_key"),
            "IdentitiesOnly=yes".into(),
            format!("UserKnownHostsFile={d}/known_hosts"),
            "StrictHostKeyChecking=yes".into(),
        ] {
            v.push("--ssh-opt".into());
            v.push(o);
        }
        v
    }
}

#[test]
fn the_mirror_converges_through_a_real_ssh_tunnel_with_the_shared_secret() {
    let s = Setup::new();
    let Some(sshd) = Sshd::start(&s.path("ssh")) else {
        return;
    };
    let secret = s.path("secret");
    std::fs::write(&secret, "a long shared secret for the tunnel test").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret_s = secret.to_str().unwrap();
    std::fs::write(s.src.join("before"), b"there at boot").unwrap();
    let d = s.mirrord(&["--secret-file", secret_s]);
    let m = s.path("mirror");
    let mut args: Vec<String> = sshd.args();
    args.extend(["--secret-file".to_string(), secret_s.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = FsMirror::start(d.port, &m, &args);
    std::fs::create_dir_all(s.src.join("d/e")).unwrap();
    std::fs::write(s.src.join("d/e/f"), vec![3u8; 300_000]).unwrap();
    std::fs::rename(s.src.join("before"), s.src.join("d/moved")).unwrap();
    let logs = || format!("{}\n{}\n{}", sshd.log(), d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 60, &logs);
    assert!(
        sshd.log().contains("Accepted publickey for root"),
        "the client did not come through sshd:\n{}",
        logs()
    );
    assert!(
        !d.log().contains("wrong secret"),
        "the secret was refused:\n{}",
        d.log()
    );

    // A wrong secret through the same tunnel is still refused.
    let bad = s.path("bad");
    std::fs::write(&bad, "not the secret").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut args: Vec<String> = sshd.args();
    args.extend([
        "--secret-file".to_string(),
        bad.to_str().unwrap().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c2 = FsMirror::start(d.port, &s.path("mirror2"), &args);
    let st = eventually(30, "the wrong secret refused", || {
        c2.child.try_wait().unwrap().ok_or_else(|| c2.log())
    });
    assert!(!st.success());
    assert!(c2.log().contains("secret"), "{}", c2.log());
}
