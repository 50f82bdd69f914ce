//! `/etc/jit/host.toml` as pam_jit.so and jit-host parse it (`pam_jit_core::config::Config::parse`).
//! The file is root-owned, so this is about robustness (a typo must give an error, never a
//! panic inside sudo) and about what a configuration that parses can mean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_jit_core::config::{Config, MAX_CLOCK_SKEW};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = Config::parse(text) else {
        return;
    };
    assert!(c.clock_skew_secs <= MAX_CLOCK_SKEW, "skew above the bound");
    assert!(c.state_dir.is_absolute(), "relative state_dir accepted");
    assert!(
        !c.grant_keys.is_empty() || !c.break_glass_keys.is_empty(),
        "a configuration with no grant key parsed"
    );
    assert!(!c.services.is_empty() || text.contains("services"));
    for s in &c.services {
        assert!(
            !s.is_empty() && !s.contains(['/', ' ', '\0']),
            "service {s:?}"
        );
    }
    for h in &c.hostnames {
        assert!(!h.contains(['*', '?', '[']), "glob in hostnames: {h:?}");
    }
    assert!(c.grants_dir().starts_with(&c.state_dir));
    let _ = c.gates("sudo");
});
