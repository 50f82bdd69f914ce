//! Test harness for the `jit` client: a real `jit-ca serve` on 127.0.0.1 with its own data
//! directory, users with real `ssh-keygen` keys, and a helper to run `jit` as one of them.

pub use crate::bins::{JIT, JIT_CA, JIT_HOST};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The roles every test server knows.
pub const POLICY: &str = r#"
[roles.db-admin]
principals = ["dbadmin"]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = true
extensions = ["permit-pty"]

[roles.web-read]
principals = []
hosts = ["web-*"]
sudo = false
max_duration = "4h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = false
extensions = ["permit-pty"]

[roles.self-serve]
principals = []
hosts = ["dev-*"]
sudo = true
max_duration = "2h"
requesters = ["group:dev"]
auto_approve = true
require_reason = false
extensions = ["permit-pty"]
"#;

/// A running `jit-ca serve`; killed (by PID) on drop.
pub struct Ca {
    pub dir: tempfile::TempDir,
    pub url: String,
    child: Child,
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registered user: a home directory with `~/.ssh/id_ed25519`.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub home: PathBuf,
}

impl User {
    pub fn key(&self) -> PathBuf {
        self.home.join(".ssh/id_ed25519")
    }
    pub fn cert(&self) -> PathBuf {
        self.home.join(".ssh/id_ed25519-cert.pub")
    }
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ssh-keygen -t ed25519` into `path` (no passphrase unless given).
pub fn keygen(path: &Path, passphrase: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", "test", "-N", passphrase, "-f"])
            .arg(path),
    );
}

impl Ca {
    /// `jit-ca init`, the test policy, then `jit-ca serve` on a free port.
    pub fn start() -> Ca {
        Self::start_with(|_| String::new())
    }

    /// Like [`Ca::start`]; `extra(data_dir)` is appended to config.toml (e.g. a `[tls]`
    /// table) and, if it mentions `[tls]`, the URL is https.
    pub fn start_with(extra: impl FnOnce(&Path) -> String) -> Ca {
        Self::start_under(&[], extra)
    }

    /// Like [`Ca::start_with`], with `jit-ca serve` run under `wrapper` (for example
    /// `["prlimit", "--nofile=1024:1024", "--"]`).
    pub fn start_under(wrapper: &[&str], extra: impl FnOnce(&Path) -> String) -> Ca {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("ca");
        run_ok(Command::new(JIT_CA).args(["init", "--dir"]).arg(&data));
        std::fs::write(data.join("policy.toml"), POLICY).unwrap();
        // On PostgreSQL (JIT_TEST_POSTGRES), a fresh database before the serve opens it.
        crate::pg::use_fresh_database(&data);
        let extra = extra(&data);
        let tls = extra.contains("[tls]");
        if !extra.is_empty() {
            let cfg = data.join("config.toml");
            let mut text = std::fs::read_to_string(&cfg).unwrap();
            text.push_str(&extra);
            std::fs::write(&cfg, text).unwrap();
        }
        // Port 0: the serve binds a free port itself and announces it ("jit-ca listening on
        // URL"), so no other process can take the port between choosing and binding it (a
        // port picked here and passed on would race with every other test's binds).
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(JIT_CA);
                c
            }
            None => Command::new(JIT_CA),
        };
        // Its stderr (and stdout) go to serve.log beside the data directory: tests read
        // what the serve wrote ([`Ca::serve_log`]).
        let log_path = dir.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = cmd
            .args(["serve", "--dir"])
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let announced = "jit-ca listening on ";
        let url = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix(announced)) {
                break line.split(' ').next().unwrap_or_default().to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("jit-ca serve exited ({status}) before listening:\n{text}");
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("jit-ca serve did not announce its address within 30 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let listen = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string();
        assert_eq!(
            url,
            format!("{}://{listen}", if tls { "https" } else { "http" }),
            "the announced URL"
        );
        let mut ca = Ca { dir, url, child };
        loop {
            let up = if tls {
                std::net::TcpStream::connect(&listen).is_ok()
            } else {
                ureq::get(&format!("{}/v1/health", ca.url))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            };
            if up {
                break;
            }
            if let Ok(Some(status)) = ca.child.try_wait() {
                panic!("jit-ca serve exited ({status}):\n{}", ca.serve_log());
            }
            assert!(
                Instant::now() < deadline,
                "jit-ca did not start on {listen}:\n{}",
                ca.serve_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ca
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// What `jit-ca serve` wrote to stdout and stderr so far.
    pub fn serve_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// A user with a fresh key, registered with `jit-ca user add NAME --key ... --group G`.
    pub fn user(&self, name: &str, groups: &[&str]) -> User {
        let home = self.dir.path().join("home").join(name);
        let user = User {
            name: name.to_string(),
            home,
        };
        keygen(&user.key(), "");
        self.register(name, &user.home.join(".ssh/id_ed25519.pub"), groups);
        user
    }

    pub fn register(&self, name: &str, pubkey: &Path, groups: &[&str]) {
        let mut cmd = Command::new(JIT_CA);
        cmd.args(["user", "add", name, "--key"]).arg(pubkey);
        for g in groups {
            cmd.args(["--group", g]);
        }
        cmd.arg("--dir").arg(self.data());
        run_ok(&mut cmd);
    }

    /// Uses a one-time web login `token` as a browser's `POST /ui/login` does (the
    /// service's `web_login`, on this serve's data directory, the way operator commands
    /// open it): returns the new session's id.
    pub fn web_login(&self, token: &str) -> String {
        let clock = std::sync::Arc::new(jit_ca::clock::SystemClock);
        let ca = jit_ca::service::Ca::open(&self.data(), clock).unwrap();
        ca.web_login(token, None).unwrap().0.id
    }

    /// `jit ARGS` as `user`: HOME is theirs, no agent, no config from the real user.
    pub fn jit(&self, user: &User) -> Command {
        let mut cmd = Command::new(JIT);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &user.home)
            .env("JIT_SERVER", &self.url);
        cmd
    }
}

/// Runs and returns (exit code, stdout, stderr).
pub fn out(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs, asserts success, parses stdout as JSON of type T.
pub fn json<T: serde::de::DeserializeOwned>(cmd: &mut Command) -> T {
    let (code, stdout, stderr) = out(cmd);
    assert_eq!(code, 0, "{cmd:?}: stdout={stdout} stderr={stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{cmd:?}: {e}: {stdout}"))
}

/// A real `ssh-agent -D -a SOCK`, killed by PID on drop.
pub struct SshAgent {
    pub sock: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SshAgent {
    pub fn start() -> SshAgent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SshAgent {
            sock,
            child,
            _dir: dir,
        }
    }

    /// `ssh-add FILE` into this agent.
    pub fn add(&self, key: &Path) {
        run_ok(
            Command::new("ssh-add")
                .env("SSH_AUTH_SOCK", &self.sock)
                .arg("-q")
                .arg(key),
        );
    }

    /// `ssh-add -L`.
    pub fn list(&self) -> String {
        let o = Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &self.sock)
            .arg("-L")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh-keygen -L -f CERT` text.
pub fn keygen_l(cert: &Path) -> String {
    let o = run_ok(Command::new("ssh-keygen").arg("-L").arg("-f").arg(cert));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
