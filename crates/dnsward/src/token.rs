//! The API's bearer token: the one written in the configuration (`api.token`), or the one
//! kept in `api.token_file`, generated at the first start into a file only the service
//! user can read (mode 0600). The runbook commands read the same file (`--config` or
//! `--token-file`), so whoever can read it may change the node, and nobody else.

use std::io::{Read, Write};
use std::path::Path;

use crate::config::Config;
use crate::CliError;

/// Random bytes in a generated token (hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;

/// The node's token: the configured one, the one in the token file, or a new one written
/// there.
pub fn for_node(config: &Config) -> Result<String, CliError> {
    if let Some(token) = &config.api_token {
        return Ok(token.clone());
    }
    let path = &config.api_token_file;
    if path.exists() {
        return read(path);
    }
    let token = generate(path)?;
    tracing::info!(file = %path.display(), "generated the API token (mode 0600); runbook commands read it with --config or --token-file");
    Ok(token)
}

/// Reads a token file; refuses one that others may read, and an empty one.
pub fn read(path: &Path) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CliError::Usage {
                message: format!(
                    "{}: the API token file is readable by others (mode {mode:o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            });
        }
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(4096)
        .read_to_string(&mut text)
        .map_err(io)?;
    let token = text.trim().to_string();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(CliError::Usage {
            message: format!(
                "{}: the API token file must hold one token on one line; delete it and restart the node to generate a new one",
                path.display()
            ),
        });
    }
    Ok(token)
}

/// Writes a new random token to `path` (created, never overwritten; mode 0600).
fn generate(path: &Path) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut random = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut source| source.read_exact(&mut random))
        .map_err(|source| CliError::Io {
            path: "/dev/urandom".into(),
            source,
        })?;
    let token: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_private_and_read_back_and_a_shared_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dnsward.token");
        let token = generate(&path).unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert_eq!(read(&path).unwrap(), token);
        assert!(generate(&path).is_err(), "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = read(&path).unwrap_err().to_string();
            assert!(error.contains("chmod 600"), "{error}");
        }
    }
}
