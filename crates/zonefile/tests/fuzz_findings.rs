//! Inputs the fuzzer (`fuzz/`, `bench/fuzz`) found, each now an error or a round trip.

use std::path::Path;

use model::Name;

fn origin() -> Name {
    Name::from_ascii("t.").expect("literal")
}

#[test]
fn a_quoted_string_or_open_parenthesis_at_the_end_of_the_text_is_an_error_not_a_panic() {
    // domain 0.12.3's scanner indexes past the end on these (fuzz/crashes/).
    for text in ["x. 60 TXT \"a\"", ".(TXT\"\"", ". TXT(\"\"\n"] {
        let error =
            zonefile::parse_str(text, Path::new("fuzz.zone"), None).expect_err("not a zone file");
        assert!(error.to_string().contains("fuzz.zone:1"), "{error}");
        let report = zonefile::check_text(text, Path::new("fuzz.zone"), None);
        assert!(!report.errors.is_empty(), "{text:?}");
    }
}

#[test]
fn a_record_of_a_type_without_a_mnemonic_is_written_as_typennn_and_read_back() {
    let text = "t. 60 IN SOA a. b. 1 1 1 1 1\nt. 60 TYPE65280 \\# 0\n";
    let content = zonefile::parse_str(text, Path::new("unknown.zone"), Some(&origin())).unwrap();
    let written = zonefile::write(&content);
    assert!(written.contains("TYPE65280"), "{written}");
    let again = zonefile::parse_str(&written, Path::new("written.zone"), Some(&origin())).unwrap();
    assert_eq!(again, content);
}

#[test]
fn zone_text_from_the_network_may_not_include_files_of_the_host() {
    let text = "$ORIGIN t.\n@ 60 IN SOA a. b. 1 1 1 1 1\n$INCLUDE /etc/hostname\n";
    let error = zonefile::parse_untrusted(text, Path::new("request"), Some(&origin()))
        .expect_err("includes are refused");
    assert!(
        error.to_string().contains("$INCLUDE is not allowed"),
        "{error}"
    );
}

#[test]
fn an_owner_name_with_bytes_outside_printable_ascii_is_written_in_decimal_escapes() {
    let text = "t. 60 IN SOA a. b. 1 1 1 1 1\nt\\127t\\.x\\ y.t. 60 TXT \"x\"\n";
    let content = zonefile::parse_str(text, Path::new("u.zone"), Some(&origin())).unwrap();
    let written = zonefile::write(&content);
    assert!(written.contains("t\\127t\\.x\\032y.t."), "{written}");
    let again = zonefile::parse_str(&written, Path::new("w.zone"), Some(&origin())).unwrap();
    assert_eq!(again, content);
}

#[test]
fn record_data_with_bytes_past_its_typed_form_is_written_losslessly() {
    // A DNAME whose data is a name and then more bytes (read from RFC 3597 syntax).
    let text =
        "t. 60 IN SOA a. b. 1 1 1 1 1\nd.t. 60 IN DNAME \\# 14 076578616d706c6500036e657400\n";
    let content = zonefile::parse_str(text, Path::new("u.zone"), Some(&origin())).unwrap();
    let written = zonefile::write(&content);
    let again = zonefile::parse_str(&written, Path::new("w.zone"), Some(&origin())).unwrap();
    assert_eq!(again, content, "{written}");
}

#[test]
fn a_name_in_record_data_with_a_parenthesis_is_written_so_that_it_reads_back() {
    let text = "t. 60 IN SOA ns.t. host\\(master\\;x.t. 1 1 1 1 1\n";
    let content = zonefile::parse_str(text, Path::new("u.zone"), Some(&origin())).unwrap();
    let written = zonefile::write(&content);
    let again = zonefile::parse_str(&written, Path::new("w.zone"), Some(&origin()))
        .unwrap_or_else(|error| panic!("{error}\n{written}"));
    assert_eq!(again, content, "{written}");
}

#[test]
fn an_entry_that_ends_inside_a_multi_byte_character_is_no_panic() {
    let text = std::str::from_utf8(include_bytes!(
        "../../../fuzz/crashes/zone_file-offset-inside-utf8-char.zone"
    ))
    .expect("the fuzzer's input is UTF-8");
    let _ = zonefile::parse_str(text, Path::new("fuzz.zone"), None);
    let report = zonefile::check_text(text, Path::new("fuzz.zone"), None);
    assert!(!report.errors.is_empty());
}

#[test]
fn an_origin_whose_label_starts_with_a_bracket_is_written_and_read_back() {
    // Passed to the reader as text, `\[` would start an RFC 2673 binary label in `domain`.
    let text = "$TTL 300\n$ORIGIN [mall.t.\n@ IN SOA ns hostmaster 1 7200 900 1209600 300\n\
                @ NS ns\nns A 192.0.2.1\n";
    let content = zonefile::parse_str(text, Path::new("fuzz.zone"), None).expect("a zone");
    let written = zonefile::write(&content);
    let again = zonefile::parse_str(&written, Path::new("written.zone"), Some(content.origin()))
        .unwrap_or_else(|error| panic!("{error}\n{written}"));
    assert_eq!(again, content);
}

#[test]
fn a_name_in_record_data_with_a_quote_is_written_so_that_it_reads_back() {
    // `domain` writes the quote of a name unescaped; read back, it opened a string.
    let text = "$ORIGIN t.\n@ 300 IN SOA ns hostmaster 1 7200 900 1209600 300\n\
                @ NS ns\nns A 192.0.2.2\nsub NS a\\\"x\n";
    let content = zonefile::parse_str(text, Path::new("fuzz.zone"), None).expect("a zone");
    let written = zonefile::write(&content);
    let again = zonefile::parse_str(&written, Path::new("written.zone"), Some(content.origin()))
        .unwrap_or_else(|error| panic!("{error}\n{written}"));
    assert_eq!(again, content);
    assert_eq!(zonefile::write(&again), written);
}
