use unicode_security::GeneralSecurityProfile;
use unicode_security::general_security_profile::IdentifierType;

/// The longest name a person may give anything, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A name people read: of a client on the consent page, of a team, a key, an API or a user.
/// Trimmed, 1 to 200 characters, and free of anything that shows nothing or changes how the
/// text around it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must be 1 to {MAX_NAME_CHARS} characters")]
    Length,
    #[error("must not contain control, invisible or text-direction characters (found U+{0:04X})")]
    Invisible(u32),
}

/// Whether `c` shows nothing, or changes how the text around it shows: controls, the
/// bidirectional formatting characters (U+202E makes `evil\u{202E}gnp.exe` read as
/// `evilexe.png`), and Unicode's other default-ignorable characters (zero-width spaces,
/// word joiners, soft hyphens…).
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}')
        || c.identifier_type() == Some(IdentifierType::Default_Ignorable)
}

/// What emoji are made of and nothing else needs: the zero-width joiner between the parts of
/// 👩‍💻, and the variation selectors that pick a glyph's emoji form.
fn builds_emoji(c: char) -> bool {
    matches!(c, '\u{200D}' | '\u{FE00}'..='\u{FE0F}')
}

impl DisplayName {
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let name = value.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::Length);
        }
        if let Some(c) = name.chars().find(|&c| is_invisible(c) && !builds_emoji(c)) {
            return Err(NameError::Invisible(u32::from(c)));
        }
        Ok(Self(name.to_owned()))
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

    #[test]
    fn names_in_any_script_with_emoji_are_kept_trimmed() {
        for (given, kept) in [
            ("  Photo Printer ", "Photo Printer"),
            ("Ünïcødé Ltd.", "Ünïcødé Ltd."),
            ("Фото", "Фото"),
            ("写真アプリ", "写真アプリ"),
            ("Dev 👩\u{200D}💻 team", "Dev 👩\u{200D}💻 team"),
            ("Hearts ❤\u{FE0F}", "Hearts ❤\u{FE0F}"),
        ] {
            assert_eq!(DisplayName::parse(given).map(DisplayName::into_string), Ok(kept.to_owned()), "{given}");
        }
    }

    #[test]
    fn controls_invisibles_and_direction_overrides_are_refused() {
        for hostile in [
            "evil\u{202E}gnp.exe",
            "evil\u{2067}x",
            "ad\u{200B}min",
            "ad\u{2060}min",
            "soft\u{00AD}hyphen",
            "line\nbreak",
            "tab\there",
            "nul\u{0}",
            "bom\u{FEFF}",
            "para\u{2029}graph",
        ] {
            assert!(matches!(DisplayName::parse(hostile), Err(NameError::Invisible(_))), "{hostile:?}");
        }
        assert_eq!(DisplayName::parse("   "), Err(NameError::Length));
        assert_eq!(DisplayName::parse(&"x".repeat(201)), Err(NameError::Length));
    }
}
