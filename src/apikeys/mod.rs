//! The API-key format: `{sk|rk}_{live|test}_` + 30 random base62 characters + a 6-character
//! base62 CRC32 of everything before it. The checksum lets the server (and leak scanners)
//! reject a mistyped or truncated key without touching the database.
//!
//! NEVER CHANGE THE PREFIXES OF EXISTING KEYS: scanners and customers match on them.
//!
//! Floor: credential (docs/architecture.md); below `manage`; answers with its own `KeyRefusal`, never an HTTP body.

pub mod authenticate;

use std::fmt;

use crate::config::Environment;
use crate::crypto::random_base62;

const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `sk_` keys act with their kind's full reach; `rk_` keys carry an explicit subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    Secret,
    Restricted,
}

impl KeyClass {
    fn prefix(self) -> &'static str {
        match self {
            Self::Secret => "sk",
            Self::Restricted => "rk",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyFormatError {
    #[error("the key does not start with sk_live_, sk_test_, rk_live_ or rk_test_")]
    Prefix,
    #[error("the key has the wrong length")]
    Length,
    #[error("the key contains characters outside [0-9A-Za-z]")]
    Characters,
    #[error("the key's checksum does not match: it is mistyped or truncated")]
    Checksum,
}

/// A key whose shape and checksum are right; whether it exists is for the database.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedApiKey<'a> {
    pub class: KeyClass,
    pub environment: Environment,
    key: &'a str,
}

impl fmt::Debug for ParsedApiKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedApiKey")
            .field("class", &self.class)
            .field("environment", &self.environment)
            .field("key", &display_prefix(self.key))
            .finish()
    }
}

impl ParsedApiKey<'_> {
    pub fn as_str(&self) -> &str {
        self.key
    }
}

fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 digits are ASCII")
}

pub fn generate(class: KeyClass, environment: Environment) -> String {
    let body = format!("{}_{}_{}", class.prefix(), environment.as_str(), random_base62(RANDOM_LEN));
    let checksum = checksum(&body);
    body + &checksum
}

pub fn parse(key: &str) -> Result<ParsedApiKey<'_>, ApiKeyFormatError> {
    let (class, environment, rest) = [
        (KeyClass::Secret, Environment::Live),
        (KeyClass::Secret, Environment::Test),
        (KeyClass::Restricted, Environment::Live),
        (KeyClass::Restricted, Environment::Test),
    ]
    .into_iter()
    .find_map(|(class, env)| {
        let prefix = format!("{}_{}_", class.prefix(), env.as_str());
        key.strip_prefix(&prefix).map(|rest| (class, env, rest))
    })
    .ok_or(ApiKeyFormatError::Prefix)?;
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN {
        return Err(ApiKeyFormatError::Length);
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiKeyFormatError::Characters);
    }
    let (body, given) = key.split_at(key.len() - CHECKSUM_LEN);
    if checksum(body) != given {
        return Err(ApiKeyFormatError::Checksum);
    }
    Ok(ParsedApiKey { class, environment, key })
}

/// What lists show of a key: its prefix and the first four random characters.
pub fn display_prefix(key: &str) -> String {
    let prefix_len = key.match_indices('_').nth(1).map_or(0, |(i, _)| i + 1);
    key.chars().take(prefix_len + 4).collect()
}

/// The last four characters, shown beside the prefix.
pub fn last_four(key: &str) -> String {
    let skip = key.chars().count().saturating_sub(4);
    key.chars().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_with_their_class_and_environment() {
        for class in [KeyClass::Secret, KeyClass::Restricted] {
            for env in [Environment::Live, Environment::Test] {
                let key = generate(class, env);
                let parsed = parse(&key).unwrap();
                assert_eq!((parsed.class, parsed.environment), (class, env));
                assert_eq!(parsed.as_str(), key);
            }
        }
        assert!(generate(KeyClass::Secret, Environment::Live).starts_with("sk_live_"));
        assert!(generate(KeyClass::Restricted, Environment::Test).starts_with("rk_test_"));
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let key = generate(KeyClass::Secret, Environment::Test);
        for position in 8..key.len() {
            for replacement in BASE62.iter().map(|&b| b as char) {
                let mut typo: Vec<char> = key.chars().collect();
                if typo[position] == replacement {
                    continue;
                }
                typo[position] = replacement;
                let typo: String = typo.into_iter().collect();
                assert!(parse(&typo).is_err(), "{typo} passed");
            }
        }
    }

    #[test]
    fn truncated_extended_and_foreign_keys_are_refused_with_a_reason() {
        let key = generate(KeyClass::Secret, Environment::Live);
        assert_eq!(parse(&key[..key.len() - 1]), Err(ApiKeyFormatError::Length));
        assert_eq!(parse(&format!("{key}0")), Err(ApiKeyFormatError::Length));
        assert_eq!(parse(&key.replacen("sk_live_", "pk_live_", 1)), Err(ApiKeyFormatError::Prefix));
        assert_eq!(parse(&key.replacen("sk_live_", "sk_prod_", 1)), Err(ApiKeyFormatError::Prefix));
        let mut bad: String = key[..key.len() - 7].to_string();
        bad.push_str("-AAAAAA");
        assert_eq!(parse(&bad), Err(ApiKeyFormatError::Characters));
        assert_eq!(parse(""), Err(ApiKeyFormatError::Prefix));
    }

    #[test]
    fn arbitrary_input_never_panics_and_rarely_parses() {
        // A cheap property test: random strings of plausible shapes must be refused
        // (a random 6-character checksum matches with probability 1 in 56 billion).
        for _ in 0..2000 {
            let len = usize::from(crate::crypto::random_bytes::<1>()[0] % 50);
            let candidate = format!("sk_test_{}", random_base62(len));
            assert!(parse(&candidate).is_err(), "{candidate}");
        }
        for odd in ["sk_test_\u{e9}\u{e9}", "sk_", "_", "sk_test_", "rk_live_\0"] {
            assert!(parse(odd).is_err());
        }
    }

    #[test]
    fn lists_show_a_prefix_and_the_last_four_characters_only() {
        let key = generate(KeyClass::Secret, Environment::Test);
        assert_eq!(display_prefix(&key), key[..12]);
        assert_eq!(last_four(&key), key[key.len() - 4..]);
        assert!(!format!("{:?}", parse(&key).unwrap()).contains(&key[12..]));
    }
}

/// Keys arrive in `Authorization` headers from anyone.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn class_and_environment() -> impl Strategy<Value = (KeyClass, Environment)> {
        (
            prop_oneof![Just(KeyClass::Secret), Just(KeyClass::Restricted)],
            prop_oneof![Just(Environment::Live), Just(Environment::Test)],
        )
    }

    proptest! {
        #[test]
        fn anything_accepted_has_a_known_prefix_and_the_exact_length(value in prop_oneof![
            "(sk|rk)_(live|test)_[0-9A-Za-z_\u{e9}]{30,40}",
            any::<String>(),
        ]) {
            if let Ok(parsed) = parse(&value) {
                prop_assert_eq!(parsed.as_str(), value.as_str());
                prop_assert_eq!(value.len(), 8 + RANDOM_LEN + CHECKSUM_LEN);
                let prefix = format!("{}_{}_", parsed.class.prefix(), parsed.environment.as_str());
                prop_assert!(value.starts_with(&prefix));
            }
            // What lists and logs show of a key never panics, whatever the key.
            prop_assert!(display_prefix(&value).chars().count() <= value.chars().count());
            prop_assert!(last_four(&value).chars().count() <= 4);
        }

        /// CRC32 catches every error within 32 bits, so any single mistyped character, in
        /// the prefix, the random part or the checksum, is refused before the database.
        #[test]
        fn one_mistyped_character_is_always_caught(
            (class, environment) in class_and_environment(),
            at in any::<prop::sample::Index>(),
            typed in any::<char>(),
        ) {
            let key = generate(class, environment);
            let position = at.index(key.len());
            prop_assume!(!key[position..].starts_with(typed));
            let mut mistyped = key.clone();
            mistyped.replace_range(position..position + 1, &typed.to_string());
            prop_assert!(parse(&mistyped).is_err(), "{} accepted", mistyped);
        }

        #[test]
        fn a_truncated_or_extended_key_is_refused((class, environment) in class_and_environment(), cut in 1usize..44, extra in "[0-9A-Za-z]{1,4}") {
            let key = generate(class, environment);
            prop_assert!(parse(&key[..key.len() - cut]).is_err());
            let extended = key.clone() + &extra;
            prop_assert!(parse(&extended).is_err());
        }
    }
}
