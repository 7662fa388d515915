use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

use super::name::is_invisible;

/// An email address as Latchkey keeps and compares it: the form two addresses that look the
/// same share. NFKC folds compatibility forms (full-width `ａｄａ` is `ada`), then case is
/// folded; an address that could still pass for another (characters that show nothing, or a
/// local part or domain label mixing scripts, as a Cyrillic `а` among Latin letters does) is
/// refused rather than kept. The check of the address itself stays loose (one `@`,
/// something on each side): the only real test of an address is mail reaching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("`{0}` is not an email address")]
    Malformed(String),
    #[error("`{0}` contains characters that show nothing or change how text reads")]
    Invisible(String),
    #[error("`{0}` mixes scripts (say, a Cyrillic letter among Latin ones), so it could pass for another address")]
    MixedScript(String),
}

/// Emails longer than this are refused (RFC 5321 §4.5.3.1.3 path limit, less the brackets).
const MAX_LENGTH: usize = 254;

impl Email {
    pub fn parse(value: &str) -> Result<Self, EmailError> {
        let trimmed = value.trim();
        if trimmed.chars().any(is_invisible) {
            return Err(EmailError::Invisible(trimmed.to_owned()));
        }
        let folded: String = trimmed.nfkc().collect::<String>().to_lowercase().nfkc().collect();
        let malformed = || EmailError::Malformed(folded.clone());
        if folded.len() > MAX_LENGTH || folded.chars().any(|c| c.is_whitespace() || is_invisible(c)) {
            return Err(malformed());
        }
        let (local, domain) = folded.split_once('@').ok_or_else(malformed)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(malformed());
        }
        if !local.is_single_script() || domain.split('.').any(|label| !label.is_single_script()) {
            return Err(EmailError::MixedScript(folded));
        }
        Ok(Self(folded))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(value: &str) -> Result<String, EmailError> {
        Email::parse(value).map(Email::into_string)
    }

    #[test]
    fn addresses_that_look_the_same_are_the_same() {
        assert_eq!(parsed("  Ada@Example.COM "), Ok("ada@example.com".into()));
        assert_eq!(parsed("ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ"), Ok("ada@example.com".into()), "full-width");
        assert_eq!(parsed("ADA@EXAMPLE.COM"), parsed("ada@example.com"));
        assert_eq!(parsed("ﬁnn@example.com"), Ok("finn@example.com".into()), "a ligature");
    }

    #[test]
    fn addresses_in_one_script_each_are_welcome() {
        for address in ["адам@пример.рф", "ada@пример.рф", "太郎@例え.jp", "o'neil+tag@example.co.uk"]
        {
            assert!(parsed(address).is_ok(), "{address}");
        }
    }

    #[test]
    fn look_alikes_and_invisibles_are_refused() {
        for (address, why) in [
            ("\u{0430}da@example.com", "a Cyrillic a in a Latin local part"),
            ("ada@ex\u{0430}mple.com", "a Cyrillic a in a Latin domain label"),
            ("ad\u{200B}a@example.com", "a zero-width space"),
            ("ada\u{202E}@example.com", "a direction override"),
            ("ada@example.com\u{FEFF}", "a byte-order mark"),
        ] {
            assert!(matches!(parsed(address), Err(EmailError::MixedScript(_) | EmailError::Invisible(_))), "{why}");
        }
        for bad in
            ["", "ada", "@example.com", "ada@", "a da@example.com", "a@b@c", &format!("{}@x.com", "a".repeat(250))]
        {
            assert!(matches!(parsed(bad), Err(EmailError::Malformed(_))), "{bad:?}");
        }
    }
}
