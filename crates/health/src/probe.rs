//! One probe: the I/O that turns a [`Check`] into success or failure. The caller bounds it
//! with the target's timeout; a probe that has not decided by then has failed.

use std::net::SocketAddr;

use model::Check;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::table::is_request_target;

/// Most bytes of a response read while looking for its status line. A health endpoint
/// answers with a short head; a server that streams more before the status line is broken.
pub const HTTP_HEAD_MAX_BYTES: usize = 8 * 1024;

/// Runs one probe. `Check::None` is never scheduled; it counts as a success.
pub(crate) async fn run(check: &Check) -> bool {
    match check {
        Check::Tcp(addr) => TcpStream::connect(addr).await.is_ok(),
        Check::Http { addr, path, .. } => http_get_is_2xx(*addr, path).await,
        Check::None => true,
    }
}

/// `GET path` over HTTP/1.1 on a fresh connection; success iff the final status is 2xx.
async fn http_get_is_2xx(addr: SocketAddr, path: &str) -> bool {
    if !is_request_target(path) {
        return false;
    }
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    // Host is the address literal with its port (RFC 9112 §3.2: required in HTTP/1.1);
    // checks never name hosts, DNS health must not depend on DNS.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: dnsward-health\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        match parse_head(&head) {
            Head::Final(status) => return (200..300).contains(&status),
            Head::Invalid => return false,
            Head::Incomplete => {}
        }
        let room = HTTP_HEAD_MAX_BYTES - head.len();
        if room == 0 {
            return false;
        }
        let want = room.min(chunk.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
    }
}

/// What the bytes read so far say about the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// The status of the final response (1xx interim responses skipped).
    Final(u16),
    /// Not an HTTP/1.x response.
    Invalid,
    /// Need more bytes.
    Incomplete,
}

/// Reads status lines from the start of a response. Interim 1xx responses (RFC 9110 §15.2,
/// e.g. 103 Early Hints) are skipped up to their blank line; `101` is final, we never ask to
/// switch protocols. Lines end in CRLF; a bare LF is tolerated (RFC 9112 §2.2).
pub(crate) fn parse_head(bytes: &[u8]) -> Head {
    let mut lines = bytes.split_inclusive(|&byte| byte == b'\n');
    loop {
        let Some(line) = lines.next() else {
            return Head::Incomplete;
        };
        if !line.ends_with(b"\n") {
            // A partial status line: refuse early if it cannot become one.
            let prefix = &line[..line.len().min(5)];
            return if b"HTTP/".starts_with(prefix) {
                Head::Incomplete
            } else {
                Head::Invalid
            };
        }
        let Some(status) = status_code(trim_line(line)) else {
            return Head::Invalid;
        };
        if !(100..200).contains(&status) || status == 101 {
            // Final only once its header section is complete (its blank line): a server
            // that sends "200 OK" and never finishes its headers is not healthy, it is
            // stuck, and the probe's timeout fails it.
            loop {
                match lines.next() {
                    Some(line) if !line.ends_with(b"\n") => return Head::Incomplete,
                    Some(line) if trim_line(line).is_empty() => return Head::Final(status),
                    Some(_) => {}
                    None => return Head::Incomplete,
                }
            }
        }
        // Skip the interim response's header fields up to its blank line.
        loop {
            match lines.next() {
                Some(line) if !line.ends_with(b"\n") => return Head::Incomplete,
                Some(line) if trim_line(line).is_empty() => break,
                Some(_) => {}
                None => return Head::Incomplete,
            }
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `HTTP/1.x SSS[ reason]` → `SSS`.
fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let (code, reason) = rest.split_at_checked(3)?;
    if !code.iter().all(u8::is_ascii_digit) || !(reason.is_empty() || reason[0] == b' ') {
        return None;
    }
    code.iter().try_fold(0u16, |status, digit| {
        Some(status * 10 + u16::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_of_a_complete_head_is_read() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n"), Head::Final(200));
        assert_eq!(
            parse_head(b"HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\nbody"),
            Head::Final(503)
        );
        assert_eq!(parse_head(b"HTTP/1.1 204\n\n"), Head::Final(204));
    }

    #[test]
    fn a_status_whose_headers_never_end_is_not_yet_an_answer() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n"), Head::Incomplete);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nServer: stuck\r\n"),
            Head::Incomplete
        );
    }

    #[test]
    fn a_partial_status_line_asks_for_more() {
        assert_eq!(parse_head(b""), Head::Incomplete);
        assert_eq!(parse_head(b"HT"), Head::Incomplete);
        assert_eq!(parse_head(b"HTTP/1.1 200 O"), Head::Incomplete);
    }

    #[test]
    fn something_that_is_not_http_is_invalid() {
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH"), Head::Invalid);
        assert_eq!(parse_head(b"HTTP/2 200\r\n"), Head::Invalid);
        assert_eq!(parse_head(b"HTTP/1.1 20\r\n"), Head::Invalid);
        assert_eq!(parse_head(b"HTTP/1.1 2000\r\n"), Head::Invalid);
    }

    #[test]
    fn interim_responses_are_skipped_to_the_final_status() {
        let early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
        assert_eq!(parse_head(early_hints), Head::Incomplete);
        let mut full = early_hints.to_vec();
        full.extend_from_slice(b"HTTP/1.1 500 Oops\r\n\r\n");
        assert_eq!(parse_head(&full), Head::Final(500));
        assert_eq!(
            parse_head(b"HTTP/1.1 101 Switching\r\n\r\n"),
            Head::Final(101),
            "never asked for, so final and not 2xx"
        );
    }
}
