//! Arbitrary UTF-8 text as a zone file.
//!
//! Properties:
//! * `zonefile::parse_str` and `zonefile::check_text` never panic;
//! * when `parse_str` succeeds, `zonefile::write` of the content parses again (with the
//!   content's origin, as `dnsward zone import` of an export would) to equal content, and
//!   writing that gives the same text (export → import → export is byte-identical);
//! * when `parse_str` fails, `check_text` reports at least one error (it reports every
//!   problem of a file, so it cannot find none where parsing stops).
//!
//! Inputs that could name a `$INCLUDE` are skipped: the directive reads a file of the
//! fuzzing machine (`/dev/zero` would grow until libFuzzer's memory limit, `/dev/stdin`
//! would block), which is not the parser's behaviour on the text. The control word may be
//! spelled with escapes (`$\073NCLUDE`), so any `$` word holding a backslash is skipped too.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// libFuzzer's hook aborts on every panic; a panic the reader contains on purpose
/// (`model::contained`, around a library scanner) is that input's error, not a crash.
fn contain_library_panics() {
    let aborting = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !model::contained::active() {
            aborting(info);
        }
    }));
}

fuzz_target!(init: contain_library_panics(), |bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if may_include(text) {
        return;
    }
    let file = Path::new("fuzz.zone");
    let parsed = zonefile::parse_str(text, file, None);
    let report = zonefile::check_text(text, file, None);
    match parsed {
        Ok(content) => {
            let written = zonefile::write(&content);
            let reparsed = match zonefile::parse_str(&written, file, Some(content.origin())) {
                Ok(reparsed) => reparsed,
                Err(error) => panic!("written text does not parse: {error}\n{written}"),
            };
            assert!(
                reparsed == content,
                "written text parses to other content:\n{written}"
            );
            assert_eq!(
                zonefile::write(&reparsed),
                written,
                "export, import, export is not byte-identical"
            );
        }
        Err(error) => assert!(
            !report.errors.is_empty(),
            "parse_str fails ({error}) but check_text finds no error"
        ),
    }
});

/// Whether `text` could hold a `$INCLUDE` directive, literally or through escapes.
fn may_include(text: &str) -> bool {
    if text.to_ascii_lowercase().contains("include") {
        return true;
    }
    text.match_indices('$').any(|(at, _)| {
        text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .any(|c| c == '\\')
    })
}
