//! Arbitrary UTF-8 text as the `dnsward run` configuration file.
//!
//! `dnsward` is a binary crate only, so its configuration reader cannot be called from
//! here; its source file, `crates/dnsward/src/config.rs`, is compiled into this target as a
//! module instead (it uses nothing of the binary but `model`, `validator::limits`,
//! `transfer` (keys, ACLs), `serde`, `toml` and `thiserror`). This fuzzes exactly the code `dnsward run` uses.
//!
//! Properties:
//! * `config::parse` never panics;
//! * an error points into the text: line at least 1 and at most the text's lines,
//!   column at least 1;
//! * an accepted configuration has a zone, and values within their named limits.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/dnsward/src/config.rs"]
mod config;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match config::parse(text, Path::new("fuzz/dnsward.toml")) {
        Ok(config) => {
            assert!(!config.zones.is_empty(), "accepted without a zone");
            let payload = u64::from(config.udp_payload_bytes);
            let limit = model::limits::UDP_PAYLOAD_BYTES;
            assert!(
                (limit.min..=limit.max).contains(&payload),
                "udp_payload_bytes {payload} outside its limit"
            );
        }
        Err(error) => {
            let lines = text.split('\n').count();
            assert!(
                error.line >= 1 && error.line <= lines,
                "error line {} outside the text's {lines} lines: {error}",
                error.line
            );
            assert!(error.column >= 1, "error column 0: {error}");
        }
    }
});
