//! # zonefile — zone files in and out
//!
//! Sits at the edge of the data flow: `dnsward zone check|import|export` and
//! `dnsward serve --zone FILE` read zone files into [`model::ZoneContent`]; export writes
//! content back as text that `named-checkzone` accepts.
//!
//! * [`read_file`] / [`parse_str`]: RFC 1035 master files (with `$ORIGIN`, `$TTL`,
//!   `$INCLUDE`) scanned by NLnet Labs' `domain`, whose errors carry line and column. Every
//!   error names the file, the line and the reason ([`ZoneFileError`]).
//! * [`check_file`]: every problem of a file in one run (bounded), each with its line,
//!   zone-level ones included, and the warnings BIND and NSD give.
//! * [`write`]: canonical text: one record per line, absolute names, record sets in canonical
//!   DNS order. Writing is a pure function of content, so export → import → export is
//!   byte-identical.
//!
//! The one design decision to know: records cross from `domain`'s types to `hickory`'s (the
//! model's) through their wire encoding, the one representation both libraries define
//! exactly, so no presentation-format quirk can change data on the way.

use std::fmt;
use std::path::{Path, PathBuf};

use domain::base::iana::{Class, Rtype};
use domain::base::name::ParsedName;
use domain::base::rdata::ParseRecordData;
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use model::{ContentBuilder, ContentError, Name, Record, RecordSet, ZoneContent};

mod check;

pub use check::{check_file, check_text, CheckReport, Problem, MAX_CHECK_ERRORS};

/// Deepest `$INCLUDE` nesting followed; deeper includes are an error, not a loop.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// Why a zone file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}:{line}: {problem}", file.display())]
    Record {
        file: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{}: no origin: add an $ORIGIN line or an absolute SOA owner, or pass --origin", file.display())]
    NoOrigin { file: PathBuf },
    #[error("{}: {}", file.display(), problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        file: PathBuf,
        problems: Vec<ContentError>,
    },
}

impl ZoneFileError {
    /// The line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ZoneFileError::Syntax { line, .. } | ZoneFileError::Record { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Reads and validates a zone file. `origin` overrides `$ORIGIN` and the SOA owner.
pub fn read_file(path: &Path, origin: Option<&Name>) -> Result<ZoneContent, ZoneFileError> {
    let text = read_text(path)?;
    let content = parse_str(&text, path, origin)?;
    let problems = content.validate(model::limits::ZONE_RECORDS.default);
    if problems.is_empty() {
        Ok(content)
    } else {
        Err(ZoneFileError::Invalid {
            file: path.to_path_buf(),
            problems,
        })
    }
}

/// The line of the first record of `name` and `rtype` in the zone file at `path` (`None`
/// when the file cannot be read or has no such record).
pub fn first_line_of(
    path: &Path,
    origin: Option<&Name>,
    name: &Name,
    rtype: model::RecordType,
) -> Option<usize> {
    let text = read_text(path).ok()?;
    let mut records = Vec::new();
    scan(&text, path, origin, (0, Includes::Follow), &mut records).ok()?;
    records
        .iter()
        .find(|scanned| scanned.record.record_type() == rtype && scanned.record.name == *name)
        .map(|scanned| scanned.line)
}

fn read_text(path: &Path) -> Result<String, ZoneFileError> {
    std::fs::read_to_string(path).map_err(|source| ZoneFileError::Io {
        file: path.to_path_buf(),
        source,
    })
}

/// A record as scanned, with the line it started on.
struct ScannedLine {
    line: usize,
    record: Record,
}

/// Parses zone-file text. `file` names the source in errors and anchors relative
/// `$INCLUDE` paths. Does not check zone-level rules (SOA, NS, CNAME); see
/// [`ZoneContent::validate`].
pub fn parse_str(
    text: &str,
    file: &Path,
    origin: Option<&Name>,
) -> Result<ZoneContent, ZoneFileError> {
    parse_with(text, file, origin, Includes::Follow)
}

/// [`parse_str`] for text from the network (the API's `apply` and `plan`): `$INCLUDE` is
/// an error, never a read of the host's files.
pub fn parse_untrusted(
    text: &str,
    name: &Path,
    origin: Option<&Name>,
) -> Result<ZoneContent, ZoneFileError> {
    parse_with(text, name, origin, Includes::Refuse)
}

fn parse_with(
    text: &str,
    file: &Path,
    origin: Option<&Name>,
    includes: Includes,
) -> Result<ZoneContent, ZoneFileError> {
    let mut records = Vec::new();
    scan(text, file, origin, (0, includes), &mut records)?;
    let origin = match origin {
        Some(origin) => origin.clone(),
        None => zone_origin(text, file, &records)?,
    };
    let mut content = ContentBuilder::new(origin);
    for scanned in records {
        let line = scanned.line;
        content
            .insert(scanned.record)
            .map_err(|problem| ZoneFileError::Record {
                file: file.to_path_buf(),
                line,
                problem: problem.to_string(),
            })?;
    }
    Ok(content.finish())
}

/// The origin is the owner of the SOA record, or the `$ORIGIN` when there is no SOA.
fn zone_origin(text: &str, file: &Path, records: &[ScannedLine]) -> Result<Name, ZoneFileError> {
    if let Some(soa) = records
        .iter()
        .find(|scanned| scanned.record.record_type() == model::RecordType::SOA)
    {
        return Ok(soa.record.name.clone());
    }
    first_dollar_origin(text)
        .and_then(|origin| Name::from_ascii(origin).ok())
        .ok_or_else(|| ZoneFileError::NoOrigin {
            file: file.to_path_buf(),
        })
}

fn first_dollar_origin(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match words.next() {
            Some(word) if word.eq_ignore_ascii_case("$ORIGIN") => words.next(),
            _ => None,
        }
    })
}

/// Whether `$INCLUDE` is followed: in files an operator wrote, yes; in text that came over
/// the network, no (it would read files of the node's host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Includes {
    Follow,
    Refuse,
}

fn scan(
    text: &str,
    file: &Path,
    origin: Option<&Name>,
    (depth, includes): (usize, Includes),
    out: &mut Vec<ScannedLine>,
) -> Result<(), ZoneFileError> {
    let mut zonefile = Zonefile::from(text);
    zonefile.set_default_class(Class::IN);
    if let Some(origin) = origin {
        zonefile.set_origin(to_domain_name(origin, file)?);
    }
    let lines = LineIndex::new(text);
    let mut entry_start = 0;
    loop {
        let line = lines.line_of_entry(text, entry_start);
        // The scanner panics on some inputs (a quoted string at the very end of the text
        // or in an unclosed parenthesis, domain 0.12.3): that entry's error, not a crash.
        let entry = model::contained::contained(|| zonefile.next_entry())
            .map_err(|_| {
                record_error(
                    file,
                    line,
                    "the zone-file reader cannot read this entry; is a quote or parenthesis \
                     left open at the end?"
                        .into(),
                )
            })?
            .map_err(|error| syntax_error(file, line, &error))?;
        entry_start = zonefile.current_offset();
        match entry {
            None => return Ok(()),
            Some(Entry::Record(record)) => {
                let mut wire = Vec::new();
                record
                    .compose(&mut wire)
                    .map_err(|_| record_error(file, line, "record does not encode".into()))?;
                let mut decoder = BinDecoder::new(&wire);
                let record = Record::read(&mut decoder).map_err(|error| {
                    record_error(file, line, format!("record data is not valid: {error}"))
                })?;
                out.push(ScannedLine { line, record });
            }
            Some(Entry::Include {
                path,
                origin: include_origin,
            }) => {
                if includes == Includes::Refuse {
                    return Err(record_error(
                        file,
                        line,
                        "$INCLUDE is not allowed here (the text came over the API and would \
                         read files of the node's host); put the records in the text"
                            .into(),
                    ));
                }
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    return Err(record_error(
                        file,
                        line,
                        format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files"),
                    ));
                }
                let included = resolve_include(file, path.as_ref());
                let included_text = read_text(&included)?;
                let included_origin = match include_origin {
                    Some(name) => Some(from_domain_name(&name, file, line)?),
                    None => current_origin(&zonefile, file, line)?.or_else(|| origin.cloned()),
                };
                scan(
                    &included_text,
                    &included,
                    included_origin.as_ref(),
                    (depth + 1, includes),
                    out,
                )?;
            }
        }
    }
}

fn current_origin(
    zonefile: &Zonefile,
    file: &Path,
    line: usize,
) -> Result<Option<Name>, ZoneFileError> {
    match zonefile.origin() {
        Ok(name) => from_domain_name(&name, file, line).map(Some),
        Err(_) => Ok(None),
    }
}

fn resolve_include(file: &Path, include: &str) -> PathBuf {
    let include = Path::new(include);
    if include.is_absolute() {
        include.to_path_buf()
    } else {
        file.parent()
            .unwrap_or_else(|| Path::new("."))
            .join(include)
    }
}

fn to_domain_name(
    name: &Name,
    file: &Path,
) -> Result<domain::base::Name<bytes::Bytes>, ZoneFileError> {
    let mut fqdn = name.clone();
    fqdn.set_fqdn(true);
    // In wire format: the text form escapes a label's leading `[` as `\[`, which `domain`
    // reads as the start of an RFC 2673 binary label.
    let invalid = |error: String| ZoneFileError::Record {
        file: file.to_path_buf(),
        line: 0,
        problem: format!("origin {name} is not a valid name: {error}"),
    };
    let wire = fqdn
        .to_bytes()
        .map_err(|error| invalid(error.to_string()))?;
    domain::base::Name::from_octets(bytes::Bytes::from(wire))
        .map_err(|error| invalid(error.to_string()))
}

fn from_domain_name(
    name: &domain::base::Name<bytes::Bytes>,
    file: &Path,
    line: usize,
) -> Result<Name, ZoneFileError> {
    let mut decoder = BinDecoder::new(name.as_slice());
    Name::read(&mut decoder)
        .map_err(|error| record_error(file, line, format!("bad origin name: {error}")))
}

/// `entry_line` is where the failing entry starts. The scanner's own position (its error
/// displays as "LINE:COLUMN: reason"; the fields are private) is where it noticed the
/// problem, often the line feed after the entry, so the entry's line is reported and the
/// scanner's position is added when it differs.
fn syntax_error(
    file: &Path,
    entry_line: usize,
    error: &domain::zonefile::inplace::Error,
) -> ZoneFileError {
    let text = error.to_string();
    let mut parts = text.splitn(3, ':');
    let line: Option<usize> = parts.next().and_then(|p| p.trim().parse().ok());
    let column: Option<usize> = parts.next().and_then(|p| p.trim().parse().ok());
    let reason = match (line, column, parts.next()) {
        (Some(line), Some(column), Some(reason)) if line != entry_line => {
            format!("{} (noticed at {line}:{column})", explain(reason.trim()))
        }
        (Some(_), Some(_), Some(reason)) => explain(reason.trim()),
        _ => explain(&text),
    };
    ZoneFileError::Syntax {
        file: file.to_path_buf(),
        line: entry_line,
        reason,
    }
}

/// Adds what to do to the scanner's terse reasons.
fn explain(reason: &str) -> String {
    let hint = match reason {
        "missing origin" => " (a relative name needs $ORIGIN or --origin)",
        "unbalanced parens" => " (close every '(' on a later line with ')')",
        "missing last owner" => " (the first record must name its owner)",
        "expected rtype" => " (expected a record type such as A, NS or SOA)",
        _ => "",
    };
    format!("{reason}{hint}")
}

fn record_error(file: &Path, line: usize, problem: String) -> ZoneFileError {
    ZoneFileError::Record {
        file: file.to_path_buf(),
        line,
        problem,
    }
}

/// Maps byte offsets to 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    /// The line of the first record text at or after `offset`, skipping blank lines,
    /// comments and directives that the scanner consumed on its way to the entry.
    fn line_of_entry(&self, text: &str, offset: usize) -> usize {
        let mut line = self.line_of(offset);
        while let Some(&start) = self.starts.get(line - 1) {
            let end = self.starts.get(line).copied().unwrap_or(text.len());
            // The scanner's offset can fall inside a multi-byte character.
            let mut from = start.max(offset).min(end);
            while !text.is_char_boundary(from) {
                from += 1;
            }
            let trimmed = text[from..end].trim();
            if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('$') {
                if line >= self.starts.len() {
                    break;
                }
                line += 1;
            } else {
                break;
            }
        }
        line
    }
}

/// Canonical zone-file text for `content`: a header comment, `$ORIGIN .`, then one record
/// per line, record sets in canonical order (apex SOA first). The root origin makes every
/// name absolute whether or not a writer adds the trailing dot (`domain` omits it in some
/// RDATA, e.g. SRV targets).
pub fn write(content: &ZoneContent) -> String {
    let mut out = String::new();
    let origin = content.origin();
    out.push_str(&format!("; zone {origin} written by dnsward\n"));
    out.push_str("$ORIGIN .\n");
    let soa = content.get(origin, model::RecordType::SOA);
    for set in soa.into_iter().chain(
        content
            .rrsets()
            .filter(|set| !(set.rtype == model::RecordType::SOA && set.name == *origin)),
    ) {
        write_set(set, &mut out);
    }
    out
}

fn write_set(set: &RecordSet, out: &mut String) {
    for record in set.records() {
        out.push_str(&format!(
            "{}\t{}\tIN\t{}\t{}\n",
            presentation_name(&record.name),
            record.ttl,
            // domain's mnemonic, or TYPEnnn (RFC 3597) for a type it has no name for:
            // what its reader reads back.
            Rtype::from_int(u16::from(set.rtype)),
            Presentation(&record)
        ));
    }
}

/// A name in zone-file syntax (RFC 1035 §5.1): special characters escaped with a
/// backslash, bytes outside printable ASCII as `\DDD` in decimal. (hickory's `Display`
/// writes some bytes in octal, which reads back as other bytes.)
fn presentation_name(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    let mut out = String::new();
    for label in name.iter() {
        for &byte in label {
            match byte {
                b'.' | b';' | b'\\' | b'(' | b')' | b'"' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(byte));
                }
                0x21..=0x7e => out.push(char::from(byte)),
                _ => out.push_str(&format!("\\{byte:03}")),
            }
        }
        out.push('.');
    }
    out
}

/// RDATA in presentation format, through `domain`'s writer (hickory's Display is not
/// zone-file syntax for every type, e.g. TXT).
struct Presentation<'a>(&'a Record);

impl fmt::Display for Presentation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rdata = model::encode_rdata(&self.0.data);
        let rtype = Rtype::from_int(u16::from(self.0.record_type()));
        let mut parser = domain::dep::octseq::Parser::from_ref(rdata.as_slice());
        match ZoneRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(rtype, &mut parser) {
            // Only when the typed form holds every byte (trailing bytes would be lost) and
            // reads back: domain writes `(`, `)` and `;` inside names unescaped.
            Ok(Some(data)) if parser.remaining() == 0 => {
                let typed = data.to_string();
                if syntax_outside_quotes(&typed) {
                    generic(f, &rdata)
                } else {
                    f.write_str(&typed)
                }
            }
            // Data that domain cannot parse is still written losslessly (RFC 3597).
            _ => generic(f, &rdata),
        }
    }
}

/// RDATA in RFC 3597's generic form: `\# LENGTH HEX`.
fn generic(f: &mut fmt::Formatter<'_>, rdata: &[u8]) -> fmt::Result {
    write!(f, "\\# {}", rdata.len())?;
    if !rdata.is_empty() {
        f.write_str(" ")?;
        for byte in rdata {
            write!(f, "{byte:02x}")?;
        }
    }
    Ok(())
}

/// Whether presentation text has zone-file syntax that would change how it reads back:
/// `(`, `)` or `;` outside quoted strings and not escaped, or a `"` that does not start a
/// token (a quote inside a name, which `domain` writes unescaped) or is left open.
fn syntax_outside_quotes(text: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    let mut previous: Option<char> = None;
    for character in text.chars() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' if !quoted && previous.is_some_and(|p| !p.is_whitespace()) => return true,
            '"' => quoted = !quoted,
            '(' | ')' | ';' if !quoted => return true,
            _ => {}
        }
        previous = Some(character);
    }
    quoted
}
