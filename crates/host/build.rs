//! Embeds the web UI (`ui/` at the workspace root) into the host: each file is copied into
//! OUT_DIR, or replaced by a short placeholder when it does not exist yet, so the crate always
//! builds.

// A build script reports a failure by panicking; cargo shows the message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let ui = manifest.join("../../ui");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", ui.display());
    for (name, placeholder) in [
        (
            "index.html",
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>MCP Session Manager</title></head><body><p>The web UI was not built into this binary.</p></body></html>",
        ),
        ("app.js", ""),
        ("style.css", ""),
    ] {
        let source = ui.join(name);
        println!("cargo:rerun-if-changed={}", source.display());
        let text = std::fs::read_to_string(&source).unwrap_or_else(|_| placeholder.to_owned());
        std::fs::write(out.join(name), text).expect("write into OUT_DIR");
    }
}
