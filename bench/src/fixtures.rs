//! Fixtures for the benchmarks, from the test kit: deterministic identities
//! (`jit_test_kit::keys`) and a grant store signed with the CA's grant key
//! (`jit_test_kit::docs`).

use std::path::Path;

use anyhow::{Context as _, Result};
use jit_test_kit::{docs, keys};
use serde_json::json;
use ssh_key::PrivateKey;

/// Writes COUNT identities `out/<prefix>NN` (0600) and `.pub`: the kit's key named
/// `bench:<prefix>NN`, the same in every run.
pub(crate) fn keys(out: &Path, count: usize, prefix: &str) -> Result<serde_json::Value> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for i in 0..count {
        let name = format!("{prefix}{i:02}");
        let mut key = keys::named(&format!("bench:{name}"));
        key.set_comment(&name);
        keys::write_pair(out, &name, &key);
    }
    Ok(json!({ "keys": count, "dir": out }))
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PrivateKey::from_openssh(text).with_context(|| format!("parsing {}", path.display()))
}

// The CLI's flags, one to one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn grants(
    key: &Path,
    state_dir: &Path,
    user: &str,
    host: &str,
    mine: usize,
    others: usize,
    other_users: usize,
) -> Result<serde_json::Value> {
    let key = read_key(key)?;
    let now = jit_common::now();
    let grants_dir = state_dir.join("grants");
    let mut written = 0usize;
    let mut write = |g: docs::GrantDoc| -> Result<()> {
        let dir = grants_dir.join(&g.0.user);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.grant", g.0.id));
        let doc = g.sign(&key);
        std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
        written += 1;
        Ok(())
    };
    let grant = |id: String, user: &str, host: String| {
        docs::grant(&id, user, &[&host], now)
            .role("bench")
            .reason("benchmark")
            .request_id(&id)
            .approvers(&["auto:bench"])
    };
    // The covering grant sorts last, so a decision that stops at the first allowing grant
    // still looks at every other grant of the user first.
    for i in 0..mine.saturating_sub(1) {
        write(grant(format!("a-{i:04}"), user, format!("other-{i}")))?;
    }
    if mine > 0 {
        write(grant("z-covering".into(), user, host.to_string()))?;
    }
    let per_user = others.div_ceil(other_users.max(1));
    for i in 0..others {
        let u = format!("u{:05}", i / per_user.max(1));
        write(grant(format!("g-{i:05}"), &u, host.to_string()))?;
    }
    Ok(json!({ "grants": written, "state_dir": state_dir }))
}
