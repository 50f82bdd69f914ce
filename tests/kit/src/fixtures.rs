//! Small inputs shared by host-side tests, fuzz targets and benchmarks.

use std::path::Path;

use ssh_key::PrivateKey;

use crate::keys::openssh_pub;

/// A host.toml: `state_dir`, the keys each list trusts, then `extra` lines verbatim.
pub fn host_toml(
    state_dir: &Path,
    grant_keys: &[&PrivateKey],
    user_ca_keys: &[&PrivateKey],
    extra: &[&str],
) -> String {
    let list = |keys: &[&PrivateKey]| {
        keys.iter()
            .map(|k| format!("{:?}", openssh_pub(k).trim()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "state_dir = {:?}\ngrant_keys = [{}]\n",
        state_dir.display().to_string(),
        list(grant_keys)
    );
    if !user_ca_keys.is_empty() {
        text.push_str(&format!("user_ca_keys = [{}]\n", list(user_ca_keys)));
    }
    for l in extra {
        text.push_str(l);
        text.push('\n');
    }
    text
}

/// Creates `dir` (and its parents) with mode 0755, as a host's state directory is.
pub fn dir_0755(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
}

/// Writes `bytes` to `path` with `mode`.
pub fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
