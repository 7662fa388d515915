//! How a person signed in: the methods of RFC 8176 (`amr`) and the authentication context
//! class (`acr`) Latchkey reports for them in id tokens, access tokens and introspection.

use std::fmt;

use chrono::NaiveDateTime;

/// The context class of a sign-in with one factor (a password).
pub const ACR_PASSWORD: &str = "urn:latchkey:acr:pwd";
/// The context class of a sign-in with two factors: a password and an authenticator app, a
/// recovery code or a passkey; or a passkey alone, which proves possession of the key and,
/// by its user verification, a PIN or biometric.
pub const ACR_MULTI_FACTOR: &str = "urn:latchkey:acr:mfa";
/// Weakest first: a request for one is met by it and by every class after it.
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_PASSWORD, ACR_MULTI_FACTOR];

/// One way of proving who one is, named as RFC 8176 §2 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    /// `pwd`: the account's password.
    Password,
    /// `otp`: a one-time code, from an authenticator app (RFC 6238) or a recovery code.
    OneTimeCode,
    /// `hwk`: a passkey bound to one device (a security key, a platform authenticator).
    HardwareKey,
    /// `swk`: a passkey its provider syncs between devices (WebAuthn's backup-eligible flag).
    SoftwareKey,
}

impl SignInMethod {
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::OneTimeCode => "otp",
            Self::HardwareKey => "hwk",
            Self::SoftwareKey => "swk",
        }
    }

    /// The passkey method for a credential that is (or is not) synced between devices.
    pub fn passkey(backup_eligible: bool) -> Self {
        if backup_eligible { Self::SoftwareKey } else { Self::HardwareKey }
    }

    /// A passkey: Latchkey asks every passkey for user verification (a PIN or biometric on
    /// the device), so one is two factors by itself.
    fn is_passkey(self) -> bool {
        matches!(self, Self::HardwareKey | Self::SoftwareKey)
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Password, Self::OneTimeCode, Self::HardwareKey, Self::SoftwareKey]
            .into_iter()
            .find(|method| method.amr() == value)
    }
}

/// The methods a sign-in used, in the order given. Stored space-separated ("pwd otp"); `mfa`
/// is not stored but reported whenever two factors were used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInMethods(Vec<SignInMethod>);

impl SignInMethods {
    pub fn password() -> Self {
        Self(vec![SignInMethod::Password])
    }

    /// One method alone (a passkey without a password).
    pub fn only(method: SignInMethod) -> Self {
        Self(vec![method])
    }

    /// These methods and one more (a second factor after the password).
    #[must_use]
    pub fn and(mut self, method: SignInMethod) -> Self {
        if !self.0.contains(&method) {
            self.0.push(method);
        }
        self
    }

    /// What a row holds. Names this version does not know are dropped rather than reported:
    /// a token never claims more than the server can vouch for.
    pub fn from_stored(stored: &str) -> Self {
        let mut methods = Vec::new();
        for method in stored.split(' ').filter_map(SignInMethod::parse) {
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        Self(methods)
    }

    pub fn is_multi_factor(&self) -> bool {
        self.0.len() >= 2 || self.0.iter().any(|method| method.is_passkey())
    }

    /// The `amr` claim (RFC 8176): each method, then `mfa` if there were two factors or more
    /// (a passkey counts as two: possession, and the PIN or biometric that unlocked it).
    pub fn amr(&self) -> Vec<String> {
        let mut amr: Vec<String> = self.0.iter().map(|method| method.amr().to_owned()).collect();
        if self.is_multi_factor() {
            amr.push("mfa".to_owned());
        }
        amr
    }

    /// The `acr` claim: the strongest class this sign-in meets.
    pub fn acr(&self) -> &'static str {
        if self.is_multi_factor() { ACR_MULTI_FACTOR } else { ACR_PASSWORD }
    }

    /// Whether this sign-in meets the class `acr` (one of [`ACR_VALUES_SUPPORTED`]; an
    /// unknown class is never met).
    pub fn meets(&self, acr: &str) -> bool {
        let rank = |value: &str| ACR_VALUES_SUPPORTED.iter().position(|known| *known == value);
        match (rank(self.acr()), rank(acr)) {
            (Some(have), Some(wanted)) => have >= wanted,
            _ => false,
        }
    }
}

/// A sign-in as tokens report it: how (`amr`, `acr`) and when (`auth_time`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    pub methods: SignInMethods,
    pub at: NaiveDateTime,
}

impl Authentication {
    /// From a row that recorded the methods (`amr`) and the time of a sign-in. Rows from
    /// before methods were recorded came from password sign-ins, the only kind there was.
    pub fn from_stored(amr: Option<&str>, at: NaiveDateTime) -> Self {
        Self { methods: amr.map_or_else(SignInMethods::password, SignInMethods::from_stored), at }
    }

    /// `auth_time`: seconds since the epoch.
    pub fn auth_time(&self) -> i64 {
        self.at.and_utc().timestamp()
    }

    /// Whether this sign-in used two factors at most `window` before `now`: proof enough,
    /// for a few minutes, to stand in for the current password.
    pub fn is_recent_multi_factor(&self, now: NaiveDateTime, window: chrono::TimeDelta) -> bool {
        self.methods.is_multi_factor() && now - self.at <= window
    }
}

impl fmt::Display for SignInMethods {
    /// As stored: the methods, space-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|method| method.amr()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_alone_is_one_factor() {
        let password = SignInMethods::password();
        assert_eq!(password.amr(), ["pwd"]);
        assert_eq!(password.acr(), ACR_PASSWORD);
        assert!(password.meets(ACR_PASSWORD));
        assert!(!password.meets(ACR_MULTI_FACTOR));
    }

    #[test]
    fn a_code_after_the_password_is_multi_factor() {
        let both = SignInMethods::password().and(SignInMethod::OneTimeCode);
        assert_eq!(both.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(both.acr(), ACR_MULTI_FACTOR);
        assert!(both.meets(ACR_PASSWORD) && both.meets(ACR_MULTI_FACTOR));
        assert!(!both.meets("urn:example:unknown"));
        // The same method twice is still one factor.
        assert!(!SignInMethods::password().and(SignInMethod::Password).is_multi_factor());
    }

    #[test]
    fn a_passkey_is_two_factors_alone_and_says_whether_it_is_synced() {
        let device_bound = SignInMethods::only(SignInMethod::passkey(false));
        assert_eq!(device_bound.amr(), ["hwk", "mfa"]);
        assert_eq!(device_bound.acr(), ACR_MULTI_FACTOR);
        let synced = SignInMethods::only(SignInMethod::passkey(true));
        assert_eq!(synced.amr(), ["swk", "mfa"]);
        let after_password = SignInMethods::password().and(SignInMethod::passkey(false));
        assert_eq!(after_password.amr(), ["pwd", "hwk", "mfa"]);
        assert_eq!(SignInMethods::from_stored(&after_password.to_string()), after_password);
    }

    #[test]
    fn only_a_recent_two_factor_sign_in_is_recent_multi_factor() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc();
        let window = chrono::TimeDelta::minutes(10);
        let two = Authentication { methods: SignInMethods::only(SignInMethod::passkey(false)), at };
        assert!(two.is_recent_multi_factor(at + window, window));
        assert!(!two.is_recent_multi_factor(at + window + chrono::TimeDelta::seconds(1), window));
        let one = Authentication { methods: SignInMethods::password(), at };
        assert!(!one.is_recent_multi_factor(at, window));
    }

    #[test]
    fn stored_methods_read_back_and_unknown_names_are_dropped() {
        let both = SignInMethods::password().and(SignInMethod::OneTimeCode);
        assert_eq!(SignInMethods::from_stored(&both.to_string()), both);
        assert_eq!(SignInMethods::from_stored("pwd face otp pwd"), both);
        assert_eq!(SignInMethods::from_stored("face").amr(), Vec::<String>::new());
    }
}
