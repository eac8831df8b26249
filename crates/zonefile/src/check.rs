//! `dnsward zone check`: every problem of a zone file in one run, each with its line.
//!
//! [`check_file`] goes on past an error: a line the scanner cannot read is reported and left
//! out (the entry's lines, up to where the scanner noticed the problem), and the file is read
//! again without it, up to [`MAX_CHECK_ERRORS`] errors. Zone-level problems (a CNAME beside
//! other data, two SOAs, an SOA off the apex) point at the line of the offending record.
//! Warnings, as BIND and NSD give them: a record set whose records have differing TTLs (the
//! set is served with the lowest, RFC 2181 §5.2), and a file without `$TTL`. `$GENERATE` is
//! not supported and is reported at its line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use model::{ContentBuilder, ContentError, Name, RecordType, ZoneContent};

use crate::{read_text, scan, zone_origin, ScannedLine, ZoneFileError};

/// Most errors one check reports; past this it stops reading
/// ([`model::limits::ZONE_CHECK_ERRORS`]).
pub const MAX_CHECK_ERRORS: usize = model::limits::ZONE_CHECK_ERRORS.default as usize;

/// One problem of a zone file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// The line it points at (`None`: the file as a whole, e.g. no SOA at all).
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// What [`check_file`] found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// In line order (file-level ones last).
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// The content, when there was no error.
    pub content: Option<ZoneContent>,
    /// Stopped at [`MAX_CHECK_ERRORS`]: there may be more.
    pub truncated: bool,
}

/// Checks the zone file at `path` (`origin` as for [`crate::read_file`]). Only an unreadable
/// file is an `Err`; everything else is in the report.
pub fn check_file(path: &Path, origin: Option<&Name>) -> Result<CheckReport, ZoneFileError> {
    let text = read_text(path)?;
    Ok(check_text(&text, path, origin))
}

/// [`check_file`] on text; `file` names it in problems and anchors `$INCLUDE`.
pub fn check_text(text: &str, file: &Path, origin: Option<&Name>) -> CheckReport {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let problem = |line: Option<usize>, message: String| Problem {
        file: file.to_path_buf(),
        line,
        message,
    };
    for (index, line) in lines.iter_mut().enumerate() {
        if directive(line).is_some_and(|word| word.eq_ignore_ascii_case("$GENERATE")) {
            errors.push(problem(
                Some(index + 1),
                "$GENERATE is not supported; expand it into the records it stands for \
                 (e.g. with named-compilezone)"
                    .to_string(),
            ));
            *line = "";
        }
    }
    if !lines
        .iter()
        .any(|line| directive(line).is_some_and(|word| word.eq_ignore_ascii_case("$TTL")))
    {
        warnings.push(problem(
            None,
            "no $TTL directive: records without a TTL of their own take the one before them; \
             add $TTL at the top (RFC 2308)"
                .to_string(),
        ));
    }
    let mut truncated = false;
    // Stopped at an error it could not leave out: the records read are not the file's.
    let mut incomplete = false;
    let records = loop {
        let working = lines.join("\n");
        let mut records = Vec::new();
        match scan(
            &working,
            file,
            origin,
            (0, crate::Includes::Follow),
            &mut records,
        ) {
            Ok(()) => break records,
            Err(error) => {
                let blank = match &error {
                    ZoneFileError::Syntax {
                        file: at,
                        line,
                        reason,
                    } if at == file => Some((*line, entry_end(*line, reason))),
                    ZoneFileError::Record { file: at, line, .. } if at == file && *line > 0 => {
                        Some((*line, *line))
                    }
                    _ => None,
                };
                errors.push(problem(error.line(), without_place(&error)));
                match blank {
                    Some((first, last)) if errors.len() < MAX_CHECK_ERRORS => {
                        for line in first..=last.min(lines.len()) {
                            lines[line - 1] = "";
                        }
                    }
                    Some(_) => {
                        truncated = true;
                        break Vec::new();
                    }
                    // An error in an included file or without a line: nothing to leave out.
                    None => {
                        incomplete = true;
                        break Vec::new();
                    }
                }
            }
        }
    };
    if truncated || incomplete {
        return finish(errors, warnings, None, truncated);
    }
    let origin = match origin {
        Some(origin) => Some(origin.clone()),
        None => zone_origin(&lines.join("\n"), file, &records).ok(),
    };
    let Some(origin) = origin else {
        if errors.is_empty() {
            errors.push(problem(
                None,
                "no origin: add an $ORIGIN line or an absolute SOA owner, or pass --origin"
                    .to_string(),
            ));
        }
        return finish(errors, warnings, None, truncated);
    };
    let mut builder = ContentBuilder::new(origin.clone());
    // Per set: the line and TTL of its first record, and every line it has.
    let mut sets: HashMap<(Name, RecordType), (usize, u32, Vec<usize>)> = HashMap::new();
    for ScannedLine { line, record } in records {
        let key = (record.name.to_lowercase(), record.record_type());
        let ttl = record.ttl;
        if let Err(error) = builder.insert(record) {
            errors.push(problem(Some(line), error.to_string()));
            continue;
        }
        match sets.get_mut(&key) {
            None => {
                sets.insert(key, (line, ttl, vec![line]));
            }
            Some((first_line, first_ttl, lines)) => {
                lines.push(line);
                if ttl != *first_ttl {
                    warnings.push(problem(
                        Some(line),
                        format!(
                            "{} {} has TTL {ttl}, the set's first record (line {first_line}) \
                             {first_ttl}; one set has one TTL, it is served with {} (RFC 2181 \
                             §5.2)",
                            key.0,
                            key.1,
                            ttl.min(*first_ttl)
                        ),
                    ));
                }
            }
        }
    }
    let content = builder.finish();
    let line_of = |name: &Name, rtype: RecordType, nth: usize| -> Option<usize> {
        sets.get(&(name.to_lowercase(), rtype))
            .and_then(|(_, _, lines)| lines.get(nth).or(lines.first()).copied())
    };
    for zone_problem in content.validate(model::limits::ZONE_RECORDS.default) {
        let line = match &zone_problem {
            ContentError::CnameAndOtherData { name, .. } => line_of(name, RecordType::CNAME, 0),
            ContentError::MultipleCname { name, .. } => line_of(name, RecordType::CNAME, 1),
            ContentError::CnameAtApex { origin } => line_of(origin, RecordType::CNAME, 0),
            ContentError::MultipleSoa { origin, .. } => line_of(origin, RecordType::SOA, 1),
            ContentError::SoaNotAtApex { name, .. } => line_of(name, RecordType::SOA, 0),
            ContentError::NotClassIn { name, rtype, .. }
            | ContentError::MetaType { name, rtype } => line_of(name, *rtype, 0),
            _ => None,
        };
        errors.push(problem(line, zone_problem.to_string()));
    }
    let content = errors.is_empty().then_some(content);
    finish(errors, warnings, content, truncated)
}

fn finish(
    mut errors: Vec<Problem>,
    mut warnings: Vec<Problem>,
    content: Option<ZoneContent>,
    truncated: bool,
) -> CheckReport {
    let order = |problem: &Problem| problem.line.unwrap_or(usize::MAX);
    errors.sort_by_key(order);
    warnings.sort_by_key(order);
    CheckReport {
        errors,
        warnings,
        content,
        truncated,
    }
}

/// The directive a line starts with (`$TTL`, `$ORIGIN`, ...), if any.
fn directive(line: &str) -> Option<&str> {
    line.split_whitespace()
        .next()
        .filter(|word| word.starts_with('$'))
}

/// The last line of the entry a syntax error is about: where the scanner noticed it (its
/// "(noticed at LINE:COLUMN)"), or the line before when it noticed it at the very start of
/// a line (the end of a one-line entry); the entry's own line when it says nothing.
fn entry_end(entry_line: usize, reason: &str) -> usize {
    let noticed = reason.find("(noticed at ").and_then(|at| {
        let mut parts = reason[at + "(noticed at ".len()..].split([':', ')']);
        let line: usize = parts.next()?.parse().ok()?;
        let column: usize = parts.next()?.parse().ok()?;
        Some(if column <= 1 {
            line.saturating_sub(1)
        } else {
            line
        })
    });
    noticed.unwrap_or(entry_line).max(entry_line)
}

/// An error's message without its "FILE:LINE: " prefix (the problem carries both).
fn without_place(error: &ZoneFileError) -> String {
    match error {
        ZoneFileError::Syntax { reason, .. } => reason.clone(),
        ZoneFileError::Record { problem, .. } => problem.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_ERRORS: &str = "$ORIGIN example.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 900 1209600 300
@ IN NS ns1
ns1 IN A 192.0.2.53
bad IN A 192.0.2.999
$GENERATE 1-10 host$ A 192.0.2.$
alias IN CNAME www
alias IN TXT \"beside a CNAME\"
www IN A 192.0.2.10
www 300 IN A 192.0.2.11
oops IN BOGUS data
outside.example.net. IN A 192.0.2.1
sub IN SOA ns1 hostmaster 1 7200 900 1209600 300
";

    #[test]
    fn every_error_is_reported_with_its_line_and_warnings_beside_them() {
        let report = check_text(FIVE_ERRORS, Path::new("five.zone"), None);
        let lines: Vec<Option<usize>> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            [Some(6), Some(7), Some(8), Some(12), Some(13), Some(14)],
            "{:#?}",
            report.errors
        );
        assert!(report.errors[1].message.contains("$GENERATE"));
        assert!(report.errors[2].message.contains("CNAME"));
        assert!(report.errors[4].message.contains("outside the zone"));
        assert!(report.errors[5].message.contains("not the apex"));
        assert_eq!(report.warnings.len(), 1, "{:#?}", report.warnings);
        assert_eq!(report.warnings[0].line, Some(11));
        assert!(report.warnings[0].message.contains("TTL 300"));
        assert!(report.content.is_none());
    }

    #[test]
    fn a_clean_file_has_its_content_and_a_missing_ttl_is_a_warning() {
        let text = "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.53\n";
        let report = check_text(text, Path::new("clean.zone"), None);
        assert!(report.errors.is_empty(), "{:#?}", report.errors);
        assert!(report.content.is_some());
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].message.contains("$TTL"));
    }

    #[test]
    fn the_check_stops_at_its_bound() {
        let mut text = String::from("$ORIGIN example.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\n");
        for host in 0..(MAX_CHECK_ERRORS + 20) {
            text.push_str(&format!("h{host} IN A 192.0.2.999\n"));
        }
        let report = check_text(&text, Path::new("many.zone"), None);
        assert_eq!(report.errors.len(), MAX_CHECK_ERRORS);
        assert!(report.truncated);
    }
}
