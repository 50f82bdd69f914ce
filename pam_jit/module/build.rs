//! Links the unwinder into pam_jit.so statically (libgcc_eh), so that loading the module
//! does not load `libgcc_s.so.1` into sudo (issue 18: mapping it and running its
//! constructor's CPU-feature probe cost about 0.2 ms per sudo on a VM where `CPUID` traps).
//!
//! Rust's standard library asks the linker for `-lgcc_s` (the `unwind` crate, dynamic
//! targets). A linker script named `libgcc_s.so` that says `INPUT(-lgcc_eh)`, in a search
//! directory of this crate's own link only (`cargo:rustc-link-search`), answers that request
//! with GCC's static unwinder instead. rustc's version script for a cdylib keeps every
//! symbol but the six `pam_sm_*` local, so the `_Unwind_*` copies are private to the module:
//! sudo and its other plugins (and sudo-rs, which loads libgcc_s.so.1 itself) never see
//! them. Only this crate's build does this: jit-host, jit and jit-ca link as before.
//! Proven by tests/system/01-invariants.sh (no libgcc_s NEEDED, six exports, imports) and
//! tests/system/55-module-panic.sh (a panic inside the module still unwinds to its guard
//! and denies, under C sudo and sudo-rs).

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return Ok(());
    }
    let out = std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR for build scripts")?;
    let dir = PathBuf::from(out).join("static-unwind");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")?;
    println!("cargo:rustc-link-search=native={}", dir.display());
    Ok(())
}
