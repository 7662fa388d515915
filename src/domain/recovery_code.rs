//! Recovery codes: ten characters of Crockford's base32 (50 bits), shown as two groups of
//! five, forgiving in what a person types back (case, dashes, spaces, and the letters
//! Crockford reads as digits).

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const LENGTH: usize = 10;

#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    /// A code from `LENGTH` random bytes (32 divides 256: each character is uniform).
    pub fn from_random(random: &[u8; LENGTH]) -> Self {
        Self(random.iter().map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char).collect())
    }

    /// What a person typed, if it can be a recovery code.
    pub fn parse(input: &str) -> Option<Self> {
        let mut code = String::with_capacity(LENGTH);
        for c in input.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let c = match c.to_ascii_lowercase() {
                'o' => '0',
                'i' | 'l' => '1',
                other => other,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || code.len() == LENGTH {
                return None;
            }
            code.push(c);
        }
        (code.len() == LENGTH).then_some(Self(code))
    }

    /// The canonical form, which is what gets hashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As shown to the person: `abcde-fghjk`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..5], &self.0[5..])
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_back_however_it_is_typed() {
        let code = RecoveryCode::from_random(&[0, 1, 2, 3, 4, 250, 251, 252, 253, 255]);
        assert_eq!(code.display(), "01234-tvwxz");
        assert_eq!(RecoveryCode::parse("01234-tvwxz"), Some(code.clone()));
        assert_eq!(RecoveryCode::parse(" O1234 TVWXZ "), Some(code.clone()));
        assert_eq!(RecoveryCode::parse("oI234tvwxz"), Some(code));
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for input in ["", "01234", "01234-tvwxz0", "01234-tvwxu", "123456", "01234-tvwxé"] {
            assert_eq!(RecoveryCode::parse(input), None, "{input}");
        }
    }
}
