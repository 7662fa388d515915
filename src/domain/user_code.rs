//! The code a person types to approve a device (RFC 8628 §6.1): eight letters from the
//! RFC's base-20 alphabet, consonants only, so no digit-letter look-alikes (0/O, 1/I, 5/S)
//! and no words, shown as `XXXX-XXXX`. 20^8 ≈ 2^34.6 codes; guessing is throttled where
//! codes are entered.

use std::fmt;

/// RFC 8628 §6.1's twenty consonants: no digits, no vowels.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LENGTH: usize = 8;

#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A code drawn from `random` (uniformly: bytes past the last multiple of 20 are
    /// skipped); `None` if `random` ran out first, which a caller with 32 bytes meets with a
    /// probability below 2^-100.
    pub fn from_random(random: &[u8]) -> Option<Self> {
        let limit = u8::try_from(256 - 256 % ALPHABET.len()).unwrap_or(u8::MAX);
        let code: String = random
            .iter()
            .filter(|byte| **byte < limit)
            .take(LENGTH)
            .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
            .collect();
        (code.len() == LENGTH).then_some(Self(code))
    }

    /// What a person typed, forgiving case, spaces and dashes; `None` if it cannot be a code.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > 32 {
            return None;
        }
        let code: String =
            input.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        let valid = code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// The canonical form, which is what gets hashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As shown to people: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..LENGTH / 2], &self.0[LENGTH / 2..])
    }
}

/// Never the code itself in logs: it is a credential while it is pending.
impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_eight_letters_of_the_alphabet_shown_in_two_halves() {
        let code = UserCode::from_random(&[0, 19, 20, 39, 250, 1, 2, 3, 4]).unwrap();
        assert_eq!(code.as_str(), "BZBZCDFG", "250 is past the last multiple of 20 and skipped");
        assert_eq!(code.display(), "BZBZ-CDFG");
        assert!(UserCode::from_random(&[0; 7]).is_none(), "too few bytes");
    }

    #[test]
    fn typing_is_forgiven_but_look_alikes_are_not_codes() {
        let code = UserCode::parse(" wdjb-mjht ").unwrap();
        assert_eq!(code.as_str(), "WDJBMJHT");
        assert_eq!(UserCode::parse("WD JB MJ HT"), Some(code));
        for bad in ["WDJBMJH", "WDJBMJHTX", "0DJBMJHT", "ADJBMJHT", "WDJB-MJH!", "", &"B".repeat(40)] {
            assert!(UserCode::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_alphabet_has_no_vowels_or_digits() {
        assert!(ALPHABET.iter().all(|c| c.is_ascii_uppercase() && !b"AEIOUY".contains(c)));
        let mut letters = ALPHABET.to_vec();
        letters.sort_unstable();
        letters.dedup();
        assert_eq!(letters.len(), ALPHABET.len());
    }
}
