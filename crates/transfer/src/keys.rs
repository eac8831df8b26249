//! TSIG keys (RFC 8945) as the configuration names them: a name, an algorithm and a base64
//! secret, the way BIND, NSD and Knot write them, so one key block is copied between them.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use domain::tsig::{Algorithm, Key, KeyName};

/// The algorithms accepted, by their RFC 8945 names (hmac-md5 is not: it is broken).
pub const ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// A key as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// The key's name, as written (e.g. `transfer-key` or `transfer-key.`).
    pub name: String,
    /// One of [`ALGORITHMS`].
    pub algorithm: String,
    /// The shared secret, base64.
    pub secret: String,
}

/// A key that cannot be used, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key name \"{0}\" is not a domain name; write e.g. \"transfer-key\"")]
    Name(String),
    #[error("algorithm \"{0}\" is not supported; use one of hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha1")]
    Algorithm(String),
    #[error("the secret of key \"{0}\" is not base64; generate one with `tsig-keygen -a hmac-sha256 NAME` or `openssl rand -base64 32`")]
    Secret(String),
    #[error("the secret of key \"{name}\" is {bytes} bytes; use at least {min} (`openssl rand -base64 32`)")]
    ShortSecret {
        name: String,
        bytes: usize,
        min: usize,
    },
    #[error("key \"{0}\" is defined twice")]
    Duplicate(String),
}

/// Secrets shorter than this are refused: RFC 8945 §6 asks for at least the hash's output,
/// and a short secret is a guessable one.
pub const MIN_SECRET_BYTES: usize = 16;

/// The configured keys, by name and algorithm: what a signed request is checked against.
#[derive(Clone, Default)]
pub struct Keys {
    by_name: Arc<HashMap<(KeyName, Algorithm), Key>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_list()
            .entries(
                self.by_name
                    .keys()
                    .map(|(name, algorithm)| format!("{name} {algorithm}")),
            )
            .finish()
    }
}

impl Keys {
    /// Checks every key; the first bad one is the error.
    pub fn new(configs: &[KeyConfig]) -> Result<Keys, KeyError> {
        let mut by_name = HashMap::new();
        for config in configs {
            let key = key(config)?;
            let id = (key.name().clone(), key.algorithm());
            if by_name.insert(id, key).is_some() {
                return Err(KeyError::Duplicate(config.name.clone()));
            }
        }
        Ok(Keys {
            by_name: Arc::new(by_name),
        })
    }

    /// What `domain`'s TSIG checks requests against.
    pub(crate) fn store(&self) -> &Arc<HashMap<(KeyName, Algorithm), Key>> {
        &self.by_name
    }

    /// The key called `name` (any algorithm), for signing what we send.
    pub fn get(&self, name: &str) -> Option<Key> {
        let name = key_name(name).ok()?;
        self.by_name
            .iter()
            .find(|((key, _), _)| *key == name)
            .map(|(_, key)| key.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// One configured key, checked.
pub fn key(config: &KeyConfig) -> Result<Key, KeyError> {
    let name = key_name(&config.name)?;
    let algorithm = algorithm(&config.algorithm)?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(config.secret.trim())
        .map_err(|_| KeyError::Secret(config.name.clone()))?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::ShortSecret {
            name: config.name.clone(),
            bytes: secret.len(),
            min: MIN_SECRET_BYTES,
        });
    }
    Key::new(algorithm, &secret, name, None, None)
        .map_err(|_| KeyError::Secret(config.name.clone()))
}

/// An algorithm by its RFC 8945 name (case-insensitive, trailing dot allowed).
pub fn algorithm(text: &str) -> Result<Algorithm, KeyError> {
    let lower = text.trim_end_matches('.').to_ascii_lowercase();
    if !ALGORITHMS.contains(&lower.as_str()) {
        return Err(KeyError::Algorithm(text.to_string()));
    }
    Algorithm::from_str(&lower).map_err(|_| KeyError::Algorithm(text.to_string()))
}

/// A key name as a lower-cased absolute domain name (`name` and `name.` are one key).
pub fn key_name(text: &str) -> Result<KeyName, KeyError> {
    let lower = text.to_ascii_lowercase();
    let absolute = if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    };
    if text.is_empty() || absolute == "." {
        return Err(KeyError::Name(text.to_string()));
    }
    KeyName::from_str(&absolute).map_err(|_| KeyError::Name(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, algorithm: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            name: name.into(),
            algorithm: algorithm.into(),
            secret: secret.into(),
        }
    }

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==";

    #[test]
    fn a_key_is_found_by_its_name_with_or_without_the_trailing_dot() {
        let keys = Keys::new(&[config("Transfer-Key", "hmac-sha256", SECRET)]).unwrap();
        assert!(keys.get("transfer-key").is_some());
        assert!(keys.get("transfer-key.").is_some());
        assert!(keys.get("other").is_none());
    }

    #[test]
    fn every_supported_algorithm_makes_a_key_and_md5_does_not() {
        for name in ALGORITHMS {
            assert!(key(&config("k", name, SECRET)).is_ok(), "{name}");
        }
        assert_eq!(
            key(&config("k", "hmac-md5", SECRET)).unwrap_err(),
            KeyError::Algorithm("hmac-md5".into())
        );
    }

    #[test]
    fn bad_secrets_and_duplicates_are_refused_with_what_to_do() {
        assert!(matches!(
            key(&config("k", "hmac-sha256", "not base64!")),
            Err(KeyError::Secret(_))
        ));
        assert!(matches!(
            key(&config("k", "hmac-sha256", "c2hvcnQ=")),
            Err(KeyError::ShortSecret { bytes: 5, .. })
        ));
        let twice = [
            config("k", "hmac-sha256", SECRET),
            config("K.", "hmac-sha256", SECRET),
        ];
        assert_eq!(
            Keys::new(&twice).unwrap_err(),
            KeyError::Duplicate("K.".into())
        );
        assert!(matches!(key_name(""), Err(KeyError::Name(_))));
    }
}
