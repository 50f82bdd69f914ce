//! The developer documents say what tests/deps.sh and .ci/run do about advisories.

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn contributing_and_deny_toml_describe_the_advisory_modes() {
    let deps = read("tests/deps.sh");
    let ci = read(".ci/run");
    for mode in ["check", "auto", "skip"] {
        assert!(deps.contains(&format!("{mode})")) || deps.contains(&format!("{mode} |")));
    }
    assert!(ci.contains("JIT_DEPS_ADVISORIES=auto"), ".ci/run pins auto");
    for (name, text) in [
        ("CONTRIBUTING.md", read("CONTRIBUTING.md")),
        ("deny.toml", read("deny.toml")),
    ] {
        assert!(!text.contains("a failed fetch fails the check"), "{name}");
        for needle in ["JIT_DEPS_ADVISORIES", "check", "auto", "skip", ".ci/run"] {
            assert!(text.contains(needle), "{name} names {needle}");
        }
        assert!(text.contains("ADVISORIES NOT CHECKED"), "{name}");
    }
}
