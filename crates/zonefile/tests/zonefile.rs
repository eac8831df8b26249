//! Zone files in and out: parse errors point at file:line, export is canonical and stable,
//! and what we write is accepted by BIND's named-checkzone.

use std::path::{Path, PathBuf};
use std::process::Command;

use model::{Name, RecordType};

fn example_zone() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/zones/example.test.zone")
}

fn parse(text: &str) -> Result<model::ZoneContent, zonefile::ZoneFileError> {
    zonefile::parse_str(text, Path::new("test.zone"), None)
}

const HEADER: &str = "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";

#[test]
fn the_example_zone_parses_with_every_record() {
    let content = zonefile::read_file(&example_zone(), None).unwrap();
    assert_eq!(content.origin().to_ascii(), "example.test.");
    assert_eq!(content.serial(), Some(2026112601));
    let www = Name::from_ascii("www.example.test.").unwrap();
    assert_eq!(content.get(&www, RecordType::A).unwrap().rdatas.len(), 2);
    assert_eq!(content.get(&www, RecordType::A).unwrap().ttl, 300);
    let big = Name::from_ascii("big.example.test.").unwrap();
    assert_eq!(content.get(&big, RecordType::TXT).unwrap().rdatas.len(), 7);
}

#[test]
fn export_then_import_then_export_is_byte_identical() {
    let content = zonefile::read_file(&example_zone(), None).unwrap();
    let first = zonefile::write(&content);
    let reparsed = parse(&first).unwrap();
    assert_eq!(reparsed, content, "content changed across a round trip");
    let second = zonefile::write(&reparsed);
    assert_eq!(first, second);
}

#[test]
fn exported_text_passes_named_checkzone() {
    let content = zonefile::read_file(&example_zone(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exported.zone");
    std::fs::write(&path, zonefile::write(&content)).unwrap();
    let output = Command::new("named-checkzone")
        .args(["-i", "local", "example.test"])
        .arg(&path)
        .output()
        .expect("named-checkzone is installed by scripts/test");
    assert!(
        output.status.success(),
        "named-checkzone refused the export:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn a_syntax_error_names_file_line_and_reason() {
    let text = format!("{HEADER}www IN A 192.0.2.300\n");
    let error = parse(&text).unwrap_err();
    assert_eq!(error.line(), Some(6), "{error}");
    let message = error.to_string();
    assert!(message.starts_with("test.zone:6: "), "{message}");
    assert!(message.contains("IPv4"), "{message}");
}

#[test]
fn an_unknown_type_is_reported_on_its_line() {
    let text = format!("{HEADER}\n; comment\nwww IN BOGUS 1\n");
    let error = parse(&text).unwrap_err();
    assert_eq!(error.line(), Some(8), "{error}");
}

#[test]
fn unbalanced_parentheses_are_reported() {
    let text = "$ORIGIN example.test.\n@ 300 IN SOA ns1 hostmaster ( 1 2 3 4 5\n";
    let error = parse(text).unwrap_err();
    assert!(error.to_string().contains("test.zone:"), "{error}");
}

#[test]
fn a_record_outside_the_zone_is_reported_on_its_line() {
    let text = format!("{HEADER}www.other.test. IN A 192.0.2.2\n");
    let error = parse(&text).unwrap_err();
    assert_eq!(error.line(), Some(6), "{error}");
    assert!(error.to_string().contains("outside the zone"), "{error}");
}

#[test]
fn a_zone_without_soa_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nosoa.zone");
    std::fs::write(
        &path,
        "$ORIGIN example.test.\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n",
    )
    .unwrap();
    let error = zonefile::read_file(&path, None).unwrap_err();
    assert!(error.to_string().contains("no SOA"), "{error}");
}

#[test]
fn cname_beside_other_data_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cname.zone");
    std::fs::write(
        &path,
        format!("{HEADER}www IN CNAME ns1\nwww IN A 192.0.2.7\n"),
    )
    .unwrap();
    let error = zonefile::read_file(&path, None).unwrap_err();
    assert!(error.to_string().contains("CNAME"), "{error}");
}

#[test]
fn include_reads_a_file_relative_to_the_including_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts.inc"), "host1 300 IN A 192.0.2.41\n").unwrap();
    let main = dir.path().join("main.zone");
    std::fs::write(&main, format!("{HEADER}$INCLUDE hosts.inc\n")).unwrap();
    let content = zonefile::read_file(&main, None).unwrap();
    let host = Name::from_ascii("host1.example.test.").unwrap();
    assert!(content.get(&host, RecordType::A).is_some());
}

#[test]
fn a_missing_file_says_which_file() {
    let error = zonefile::read_file(Path::new("/nonexistent/zone.file"), None).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/zone.file"),
        "{error}"
    );
}

#[test]
fn an_explicit_origin_resolves_relative_names() {
    let text = "@ 300 IN SOA ns1 hostmaster 1 2 3 4 5\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n";
    let origin = Name::from_ascii("given.test.").unwrap();
    let content = zonefile::parse_str(text, Path::new("t.zone"), Some(&origin)).unwrap();
    assert_eq!(content.origin().to_ascii(), "given.test.");
}
