//! The workspace's programs, found next to the running test binary and built on first use
//! when missing (a `cargo test -p jit` alone does not build `jit-ca`).
//!
//! `Command::new(JIT_CA)` works as with a path: [`Bin`] resolves on first use.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A workspace binary, by package and binary name.
#[derive(Debug, Clone, Copy)]
pub struct Bin {
    package: &'static str,
    name: &'static str,
    slot: usize,
}

/// The engineers' client.
pub const JIT: Bin = Bin {
    package: "jit",
    name: "jit",
    slot: 0,
};
/// The signing service.
pub const JIT_CA: Bin = Bin {
    package: "jit-ca",
    name: "jit-ca",
    slot: 1,
};
/// The host tool.
pub const JIT_HOST: Bin = Bin {
    package: "jit-host",
    name: "jit-host",
    slot: 2,
};

static PATHS: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];

impl Bin {
    /// The binary's path (built with `cargo build -p PACKAGE --bin NAME` if it is missing).
    pub fn path(&self) -> &'static Path {
        PATHS[self.slot].get_or_init(|| locate(self.package, self.name))
    }
}

impl AsRef<OsStr> for Bin {
    fn as_ref(&self) -> &OsStr {
        self.path().as_os_str()
    }
}

impl AsRef<Path> for Bin {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// The profile directory of the running test (`target/<profile>`): test binaries live in
/// its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    if deps.file_name() == Some(OsStr::new("deps")) {
        deps.parent().expect("deps has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

fn locate(package: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(p);
    }
    let dir = profile_dir();
    let path = dir.join(name);
    // A concurrent build by another test binary is fine: cargo serialises on its lock.
    let release = dir.file_name() == Some(OsStr::new("release"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&root)
        .args(["build", "--quiet", "-p", package, "--bin", name]);
    if release {
        cmd.arg("--release");
    }
    if let (None, Some(target)) = (std::env::var_os("CARGO_TARGET_DIR"), dir.parent()) {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {name} failed"
    );
    assert!(
        path.is_file(),
        "{} missing after cargo build",
        path.display()
    );
    path
}
