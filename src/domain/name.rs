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

/// The JSON Schema `pattern` (ECMA 262 and Python `re` alike) that accepts exactly what
/// [`DisplayName::parse`] accepts, derived from the same predicates so that the OpenAPI
/// document cannot promise more, or less, than the server takes. With `blank_allowed`, text
/// that trims to nothing passes too (an optional name left empty).
pub fn display_name_pattern(blank_allowed: bool) -> String {
    // Each class walks every `char`: once per process, not once per schema that names a
    // display name (the OpenAPI document names it often, and took seconds to build).
    static CLASSES: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
        (character_class(char::is_whitespace), character_class(|c| is_invisible(c) && !builds_emoji(c)))
    });
    let (space, refused) = (&CLASSES.0, &CLASSES.1);
    let edge = format!("[^{space}{refused}]");
    let inner = MAX_NAME_CHARS - 2;
    let name = format!("{edge}(?:[^{refused}]{{0,{inner}}}{edge})?[{space}]*");
    if blank_allowed { format!("^[{space}]*(?:{name})?$") } else { format!("^[{space}]*{name}$") }
}

/// The members of a regular-expression character class (without brackets) matching every
/// `char` for which `member` holds, as ranges.
fn character_class(member: impl Fn(char) -> bool) -> String {
    fn push(class: &mut String, c: char) {
        match c {
            '\\' | ']' | '[' | '^' | '-' => {
                class.push('\\');
                class.push(c);
            }
            ' '..='~' => class.push(c),
            // Escaped where both dialects read `\uXXXX`; beyond the BMP, the character itself.
            c if u32::from(c) <= 0xFFFF => class.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => class.push(c),
        }
    }
    let mut class = String::new();
    let mut run: Option<(char, char)> = None;
    // One `None` past the last character closes the final run.
    let chars = (0..=u32::from(char::MAX)).filter_map(char::from_u32).map(Some).chain([None]);
    for next in chars.map(|c| c.filter(|&c| member(c))) {
        match (&mut run, next) {
            (Some((_, last)), Some(c)) if u32::from(*last) + 1 == u32::from(c) => *last = c,
            (_, next) => {
                if let Some((first, last)) = run.take() {
                    push(&mut class, first);
                    if last != first {
                        class.push('-');
                        push(&mut class, last);
                    }
                }
                run = next.map(|c| (c, c));
            }
        }
    }
    class
}

/// A display name in the OpenAPI document: a string with `display_name_pattern(false)`.
impl utoipa::PartialSchema for DisplayName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!(
                "1 to {MAX_NAME_CHARS} characters once trimmed, with no control, invisible or text-direction \
                 characters (emoji joiners and variation selectors are fine)"
            )))
            .pattern(Some(display_name_pattern(false)))
            .into()
    }
}

impl utoipa::ToSchema for DisplayName {}

/// A person's optional name in the OpenAPI document: blank means none.
pub struct OptionalDisplayName;

impl utoipa::PartialSchema for OptionalDisplayName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Blank for none, else as a DisplayName".to_owned()))
            .pattern(Some(display_name_pattern(true)))
            .into()
    }
}

impl utoipa::ToSchema for OptionalDisplayName {}

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

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// The document's patterns (required, then optional), compiled once as a validator
    /// would: Rust's `regex` spells `\uXXXX` as `\x{XXXX}`.
    static PATTERNS: std::sync::LazyLock<(regex::Regex, regex::Regex)> = std::sync::LazyLock::new(|| {
        let escape = regex::Regex::new(r"\\u([0-9A-F]{4})").unwrap();
        let compile = |blank_allowed| {
            let pattern = display_name_pattern(blank_allowed);
            regex::Regex::new(&escape.replace_all(&pattern, r"\x{$1}")).unwrap()
        };
        (compile(false), compile(true))
    });

    fn name_like() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ \t\n\u{85}\u{a0}\u{3000}a-zé😀\u{200b}\u{200d}\u{202e}\u{fe0f}\u{e0001}\u{0}\u{7f}]{0,8}",
            "[a-z ]{195,205}",
        ]
    }

    proptest! {
        #[test]
        fn the_documented_pattern_accepts_exactly_what_the_server_does(value in name_like()) {
            let (pattern, optional) = &*PATTERNS;
            prop_assert_eq!(pattern.is_match(&value), DisplayName::parse(&value).is_ok(), "{:?}", value);
            let blank = value.trim().is_empty();
            prop_assert_eq!(optional.is_match(&value), blank || DisplayName::parse(&value).is_ok(), "{:?}", value);
        }
    }
}
