//! Lays out the server's running code together in release builds.
//!
//! The kernel maps a binary's code 64 KiB around each page that runs, so the functions a
//! server runs, scattered among those it never does, keep most of its code resident.
//! `src/hot-text.order` lists them (written by `benches/text-order.sh`); LLD places them
//! first. Names missing from a build are skipped and functions not listed follow, so a
//! stale list costs memory, never correctness.
//!
//! Only where the linker is surely LLD: Rust's default on x86_64 Linux since 1.90, unless a
//! build chooses another linker. `LATCHKEY_TEXT_ORDER=0` turns it off.

use std::env;
use std::process::Command;

const ORDER: &str = "src/hot-text.order";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=LATCHKEY_TEXT_ORDER");
    if env::var("PROFILE").as_deref() != Ok("release") || env::var("LATCHKEY_TEXT_ORDER").as_deref() == Ok("0") {
        return;
    }
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") || !rustc_links_with_lld() {
        return;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let other_linker = flags
        .split('\x1f')
        .any(|flag| flag.contains("linker=") || flag.contains("linker-features=-lld") || flag.contains("fuse-ld"))
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some();
    if other_linker {
        return;
    }
    let order = format!("{}/{ORDER}", env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rustc-link-arg-bin=latchkey=-Wl,--symbol-ordering-file={order}");
    println!("cargo:rustc-link-arg-bin=latchkey=-Wl,--no-warn-symbol-ordering");
}

/// Whether this rustc links x86_64 Linux binaries with its own LLD by default (1.90 on).
fn rustc_links_with_lld() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(output) = Command::new(rustc).arg("--version").output() else { return false };
    let version = String::from_utf8_lossy(&output.stdout);
    // "rustc 1.95.0 (…)": the minor version of 1.x.
    let minor = version.split_whitespace().nth(1).and_then(|v| v.split('.').nth(1)).and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|minor| minor >= 90)
}
