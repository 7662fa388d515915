use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens (RFC 6749 §3.3): order and duplicates carry no meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid scope token")]
pub struct ScopeError(pub String);

impl Scopes {
    /// Parses a space-delimited scope string; empty input is the empty set.
    pub fn parse(value: &str) -> Result<Self, ScopeError> {
        value.split(' ').filter(|token| !token.is_empty()).map(Self::parse_token).collect::<Result<_, _>>().map(Self)
    }

    /// Builds a set from separate tokens, as given on a command line.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let mut scopes = BTreeSet::new();
        for token in tokens {
            scopes.extend(Self::parse(token)?.0);
        }
        Ok(Self(scopes))
    }

    // scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII except space, `"` and `\`.
    fn parse_token(token: &str) -> Result<String, ScopeError> {
        let valid = token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if valid { Ok(token.to_owned()) } else { Err(ScopeError(token.to_owned())) }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// The tokens of `self` that `allowed` lacks, for error messages.
    pub fn not_in<'a>(&'a self, allowed: &'a Scopes) -> Vec<&'a str> {
        self.0.difference(&allowed.0).map(String::as_str).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

/// In the OpenAPI document: scope tokens separated by spaces, as one string (RFC 6749 §3.3).
impl utoipa::PartialSchema for Scopes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Scope tokens separated by spaces: printable ASCII except `\"` and `\\`"))
            .pattern(Some(r"^[ !#-\[\]-~]*$"))
            .into()
    }
}

impl utoipa::ToSchema for Scopes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_ignores_order_duplicates_and_extra_spaces() {
        let scopes = Scopes::parse("write  read write").unwrap();
        assert_eq!(scopes.to_string(), "read write");
        assert_eq!(scopes, Scopes::parse("read write").unwrap());
    }

    #[test]
    fn characters_outside_the_scope_grammar_are_refused() {
        for bad in ["re\"ad", "a\\b", "caf\u{e9}", "tab\there"] {
            assert!(Scopes::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Scopes::parse("clients:read urn:x-y/z").is_ok());
    }

    #[test]
    fn subset_and_difference_follow_set_semantics() {
        let allowed = Scopes::parse("read write").unwrap();
        let asked = Scopes::parse("read admin").unwrap();
        assert!(!asked.is_subset(&allowed));
        assert_eq!(asked.not_in(&allowed), vec!["admin"]);
        assert_eq!(asked.intersection(&allowed).to_string(), "read");
        assert!(Scopes::default().is_subset(&allowed));
    }

    #[test]
    fn tokens_given_separately_or_space_joined_are_the_same_set() {
        let scopes = Scopes::from_tokens(["read", "write delete"]).unwrap();
        assert_eq!(scopes.to_string(), "delete read write");
    }
}

/// Scope strings arrive from every client, in forms, queries and JSON bodies.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn in_grammar(token: &str) -> bool {
        !token.is_empty()
            && token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    }

    proptest! {
        /// Accepted exactly when every space-separated token is in the RFC 6749 grammar, and
        /// then printing and parsing again gives the same set.
        #[test]
        fn parsing_follows_the_grammar_and_round_trips(value in prop_oneof!["[ -~\t\u{e9}]{0,40}", any::<String>()]) {
            let grammatical = value.split(' ').filter(|t| !t.is_empty()).all(in_grammar);
            match Scopes::parse(&value) {
                Ok(scopes) => {
                    prop_assert!(grammatical);
                    prop_assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes);
                }
                Err(ScopeError(token)) => {
                    prop_assert!(!grammatical);
                    prop_assert!(!in_grammar(&token));
                }
            }
        }

        /// Order, repetition and runs of spaces carry no meaning.
        #[test]
        fn a_scope_string_is_a_set(tokens in prop::collection::vec("[a-z:]{1,6}", 0..6), gaps in prop::collection::vec(" {1,3}", 6)) {
            let forward = tokens.iter().zip(&gaps).map(|(t, g)| format!("{t}{g}")).collect::<String>();
            let backward = tokens.iter().rev().cloned().collect::<Vec<_>>().join(" ");
            prop_assert_eq!(Scopes::parse(&forward).unwrap(), Scopes::parse(&backward).unwrap());
            let set = Scopes::parse(&forward).unwrap();
            prop_assert!(tokens.iter().all(|t| set.contains(t)));
        }
    }
}
