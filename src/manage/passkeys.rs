//! Passkeys (WebAuthn, with webauthn-rs): registering them on the account page, signing in
//! with one instead of a password (a discoverable credential names its account), and using
//! one as the second factor after the password.
//!
//! Every ceremony's state (the challenge and what must come back) is kept in the database,
//! not in the browser, and taken once: a challenge cannot be answered twice, on any
//! instance. Latchkey asks every passkey for user verification (PIN or biometric), so a
//! passkey alone is a two-factor sign-in. Everything that changes a person's passkeys, and
//! every refused passkey, is audited.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Credential, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::audit::{self, Actor, Origin, Outcome};
use crate::crypto::{TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::passkeys::{self as store, NewCeremony, NewPasskey, PasskeyRow};
use crate::db::users::User;
use crate::domain::{Issuer, RecoveryCode, SignInMethod};
use crate::error::AppError;

/// How long a browser has to answer a challenge: long enough to find a security key.
const CEREMONY_TTL: TimeDelta = TimeDelta::minutes(5);
/// A name is for telling passkeys apart on the account page.
const MAX_NAME_CHARS: usize = 100;

const REGISTER: &str = "register";
const SIGN_IN: &str = "sign_in";
const SECOND_FACTOR: &str = "second_factor";

/// The relying party for this issuer, or `None` when its host is an IP address: WebAuthn
/// scopes credentials to a domain name, and browsers refuse passkeys for bare addresses.
pub fn relying_party(issuer: &Issuer) -> Result<Option<Webauthn>, AppError> {
    let origin = Url::parse(issuer.as_str()).map_err(|e| AppError::Unexpected(e.into()))?;
    let Some(url::Host::Domain(domain)) = origin.host() else {
        return Ok(None);
    };
    let domain = domain.to_owned();
    let webauthn = WebauthnBuilder::new(&domain, &origin)
        .and_then(|builder| builder.rp_name(&domain).timeout(CEREMONY_TTL.to_std().unwrap_or_default()).build())
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("passkey relying party for {domain}: {e}")))?;
    Ok(Some(webauthn))
}

/// A challenge for the browser: the id it sends back with its answer, and the options for
/// `navigator.credentials` (JSON).
#[derive(Debug)]
pub struct Challenge {
    pub ceremony: String,
    pub options: String,
}

/// Why a passkey was not accepted. Each is the person's to read, never a server error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRefused {
    /// The challenge was answered already, expired, or belongs to someone else.
    Expired,
    /// The browser's answer is not a WebAuthn response.
    Malformed,
    /// No account has this passkey (it was removed, or made for another site).
    Unknown,
    /// The signature, origin, challenge or user verification did not check out.
    Failed,
    /// This passkey is registered already (to this account or another).
    AlreadyRegistered,
}

impl PasskeyRefused {
    fn reason(self) -> &'static str {
        match self {
            Self::Expired => "challenge expired or used",
            Self::Malformed => "malformed response",
            Self::Unknown => "unknown passkey",
            Self::Failed => "verification failed",
            Self::AlreadyRegistered => "already registered",
        }
    }
}

/// What registration keeps between the two requests: webauthn-rs's state, the name the
/// person chose and the user handle the authenticator was given.
#[derive(Serialize, Deserialize)]
struct Registering {
    name: String,
    handle: Uuid,
    state: PasskeyRegistration,
}

fn json<T: Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|e| AppError::Unexpected(e.into()))
}

fn unexpected(e: impl std::fmt::Display) -> AppError {
    AppError::Unexpected(anyhow::anyhow!("passkey ceremony: {e}"))
}

/// Stores a ceremony's state and returns the id the browser gets for it.
fn start_ceremony(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    purpose: &str,
    user_id: Option<&str>,
    state: &str,
) -> Result<String, AppError> {
    let ceremony = random_token::<32>();
    let id_hash = hasher.hash(&ceremony);
    store::insert_ceremony(
        conn,
        &NewCeremony {
            id_hash: id_hash.as_str(),
            purpose,
            user_id,
            state,
            expires_at: crate::db::now() + CEREMONY_TTL,
        },
    )?;
    Ok(ceremony)
}

/// The ceremony's state, taken (it cannot be used again), if it is for `purpose`, unexpired
/// and (when `user_id` is given) that person's.
fn take_ceremony(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    ceremony: &str,
    purpose: &str,
    user_id: Option<&str>,
) -> Result<Option<String>, AppError> {
    let now = crate::db::now();
    let taken = hasher.presented(ceremony).find(|hash| store::take_ceremony(conn, hash, purpose, now))?;
    Ok(taken.filter(|taken| user_id.is_none_or(|user_id| taken.user_id.as_deref() == Some(user_id))).map(|t| t.state))
}

fn credential_id(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref())
}

fn passkey_of(row: &PasskeyRow) -> Result<Passkey, AppError> {
    serde_json::from_str(&row.credential).map_err(|e| unexpected(format!("stored passkey {}: {e}", row.id)))
}

/// The name a person gave, trimmed; or why it will not do.
pub fn passkey_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the passkey a name, such as the device it is on.".into());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!("A passkey's name is at most {MAX_NAME_CHARS} characters, on one line."));
    }
    Ok(name.to_owned())
}

/// Starts registering a passkey for `user`. The authenticator is asked for a discoverable
/// credential (so that it can sign in without an email) and told of the person's other
/// passkeys (so that one device does not register twice).
pub fn begin_registration(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    user: &User,
    name: &str,
) -> Result<Challenge, AppError> {
    let existing = store::passkeys_of_user(conn, &user.id)?;
    // One handle per person, random (never their id or email: the authenticator keeps it).
    let handle = match existing.first() {
        Some(first) => Uuid::parse_str(&first.user_handle).map_err(unexpected)?,
        None => Uuid::new_v4(),
    };
    let exclude = existing.iter().map(|row| passkey_of(row).map(|p| p.cred_id().clone())).collect::<Result<_, _>>()?;
    let (options, state) = webauthn
        .start_passkey_registration(handle, &user.email, user.display_name(), Some(exclude))
        .map_err(unexpected)?;
    let state = json(&Registering { name: name.to_owned(), handle, state })?;
    let ceremony = start_ceremony(conn, hasher, REGISTER, Some(&user.id), &state)?;
    Ok(Challenge { ceremony, options: creation_options(&options)? })
}

/// The options for `navigator.credentials.create`, asking for a discoverable credential:
/// webauthn-rs leaves residence to the authenticator, and signing in without an email needs
/// one.
fn creation_options(options: &CreationChallengeResponse) -> Result<String, AppError> {
    let mut options = serde_json::to_value(options).map_err(unexpected)?;
    let selection = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| unexpected("registration options without authenticatorSelection"))?;
    selection.insert("residentKey".into(), "required".into());
    selection.insert("requireResidentKey".into(), true.into());
    json(&options)
}

/// What registering a passkey gave.
#[derive(Debug)]
pub struct Registered {
    /// How the passkey signs in (`hwk`, or `swk` for one synced between devices).
    pub method: SignInMethod,
    /// Recovery codes, when this passkey is the person's first second factor (shown once).
    pub recovery_codes: Vec<RecoveryCode>,
}

/// Finishes registering: the browser's `response` to the challenge `ceremony`.
pub fn finish_registration(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    user: &User,
    ceremony: &str,
    response: &str,
    origin: &Origin,
) -> Result<Result<Registered, PasskeyRefused>, AppError> {
    let context = audit::Context::of(Actor::User(&user.id), origin.ip.as_deref(), Some(&origin.request_id));
    crate::db::write_transaction(conn, |conn| {
        let refused = |conn: &mut DbConnection, refused: PasskeyRefused| -> Result<_, AppError> {
            let entry = context
                .entry("user.passkey_registration_failed", Outcome::Failure)
                .target("user", &user.id)
                .details(serde_json::json!({ "reason": refused.reason() }));
            audit::record(conn, &entry)?;
            Ok(Err(refused))
        };
        let Some(state) = take_ceremony(conn, hasher, ceremony, REGISTER, Some(&user.id))? else {
            return refused(conn, PasskeyRefused::Expired);
        };
        let registering: Registering = serde_json::from_str(&state).map_err(unexpected)?;
        let Ok(response) = serde_json::from_str::<RegisterPublicKeyCredential>(response) else {
            return refused(conn, PasskeyRefused::Malformed);
        };
        let passkey = match webauthn.finish_passkey_registration(&response, &registering.state) {
            Ok(passkey) => passkey,
            Err(error) => {
                tracing::info!(%error, "passkey registration refused");
                return refused(conn, PasskeyRefused::Failed);
            }
        };
        let credential_id = credential_id(&passkey);
        if store::credential_id_taken(conn, &credential_id)? {
            return refused(conn, PasskeyRefused::AlreadyRegistered);
        }
        let first_second_factor = !super::second_factors::has_second_factor(conn, &user.id)?;
        let id = Uuid::new_v4().to_string();
        let backup_eligible = Credential::from(passkey.clone()).backup_eligible;
        store::insert_passkey(
            conn,
            &NewPasskey {
                id: &id,
                user_id: &user.id,
                credential_id: &credential_id,
                user_handle: &registering.handle.to_string(),
                name: &registering.name,
                credential: &json(&passkey)?,
                backup_eligible,
                created_at: crate::db::now(),
            },
        )?;
        let recovery_codes = if first_second_factor {
            super::second_factors::issue_recovery_codes(conn, hasher, &user.id)?
        } else {
            Vec::new()
        };
        let entry = context.change("user.passkey_added").target("user", &user.id).details(serde_json::json!({
            "passkey_id": id,
            "name": registering.name,
            "recovery_codes_issued": recovery_codes.len(),
        }));
        audit::record(conn, &entry)?;
        let method = SignInMethod::passkey(backup_eligible);
        Ok(Ok(Registered { method, recovery_codes }))
    })
}

/// Starts a sign-in with a passkey and no email: the browser offers the passkeys it has
/// for this site.
pub fn begin_sign_in(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
) -> Result<Challenge, AppError> {
    let (options, state) = webauthn.start_discoverable_authentication().map_err(unexpected)?;
    let ceremony = start_ceremony(conn, hasher, SIGN_IN, None, &json(&state)?)?;
    Ok(Challenge { ceremony, options: json(&options)? })
}

/// Checks an answer against a passkey row and records its use (the new signature counter).
fn verify_with(
    conn: &mut DbConnection,
    row: &PasskeyRow,
    check: impl FnOnce(&Passkey) -> Result<webauthn_rs::prelude::AuthenticationResult, webauthn_rs::prelude::WebauthnError>,
) -> Result<Result<SignInMethod, PasskeyRefused>, AppError> {
    let mut passkey = passkey_of(row)?;
    let result = match check(&passkey) {
        Ok(result) => result,
        Err(error) => {
            tracing::info!(%error, passkey_id = %row.id, "passkey refused");
            return Ok(Err(PasskeyRefused::Failed));
        }
    };
    passkey.update_credential(&result);
    store::record_use(conn, &row.id, &json(&passkey)?, crate::db::now())?;
    Ok(Ok(SignInMethod::passkey(result.backup_eligible())))
}

fn record_refusal(
    conn: &mut DbConnection,
    origin: &Origin,
    user_id: Option<&str>,
    refused: PasskeyRefused,
) -> Result<(), AppError> {
    let actor = user_id.map_or(Actor::Anonymous, Actor::User);
    let entry = audit::Context::of(actor, origin.ip.as_deref(), Some(&origin.request_id))
        .entry("user.passkey_failed", Outcome::Failure)
        .target("user", user_id.unwrap_or_default())
        .details(serde_json::json!({ "reason": refused.reason() }));
    audit::record(conn, &entry)?;
    Ok(())
}

/// Finishes a sign-in with a passkey alone: the account its user handle names, if active,
/// and how it signed in (`hwk` or `swk`).
pub fn finish_sign_in(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    ceremony: &str,
    response: &str,
    origin: &Origin,
) -> Result<Result<(User, SignInMethod), PasskeyRefused>, AppError> {
    crate::db::write_transaction(conn, |conn| {
        let outcome = sign_in_outcome(conn, webauthn, hasher, ceremony, response)?;
        if let Err((user_id, refused)) = &outcome {
            record_refusal(conn, origin, user_id.as_deref(), *refused)?;
        }
        Ok(outcome.map_err(|(_, refused)| refused))
    })
}

type Attributed<T> = Result<T, (Option<String>, PasskeyRefused)>;

fn sign_in_outcome(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    ceremony: &str,
    response: &str,
) -> Result<Attributed<(User, SignInMethod)>, AppError> {
    let Some(state) = take_ceremony(conn, hasher, ceremony, SIGN_IN, None)? else {
        return Ok(Err((None, PasskeyRefused::Expired)));
    };
    let state: DiscoverableAuthentication = serde_json::from_str(&state).map_err(unexpected)?;
    let Ok(response) = serde_json::from_str::<PublicKeyCredential>(response) else {
        return Ok(Err((None, PasskeyRefused::Malformed)));
    };
    let Ok((handle, credential_id)) = webauthn.identify_discoverable_authentication(&response) else {
        return Ok(Err((None, PasskeyRefused::Malformed)));
    };
    let found = store::find_by_credential_id(conn, &URL_SAFE_NO_PAD.encode(credential_id))?;
    let Some((row, user)) = found.filter(|(row, _)| row.user_handle == handle.to_string()) else {
        return Ok(Err((None, PasskeyRefused::Unknown)));
    };
    let checked = verify_with(conn, &row, |passkey| {
        webauthn.finish_discoverable_authentication_v2(&response, state, DiscoverableKey::from(passkey))
    })?;
    Ok(checked.map(|method| (user, method)).map_err(|refused| (Some(row.user_id.clone()), refused)))
}

/// Starts the passkey step after a right password, for the person's own passkeys; `None`
/// when they have none.
pub fn begin_second_factor(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    user_id: &str,
) -> Result<Option<Challenge>, AppError> {
    let rows = store::passkeys_of_user(conn, user_id)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let passkeys = rows.iter().map(passkey_of).collect::<Result<Vec<_>, _>>()?;
    let (options, state) = webauthn.start_passkey_authentication(&passkeys).map_err(unexpected)?;
    let ceremony = start_ceremony(conn, hasher, SECOND_FACTOR, Some(user_id), &json(&state)?)?;
    Ok(Some(Challenge { ceremony, options: json(&options)? }))
}

/// Finishes the passkey step after the password: one of `user_id`'s passkeys, and which
/// kind.
pub fn finish_second_factor(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    user_id: &str,
    ceremony: &str,
    response: &str,
    origin: &Origin,
) -> Result<Result<SignInMethod, PasskeyRefused>, AppError> {
    crate::db::write_transaction(conn, |conn| {
        let outcome = second_factor_outcome(conn, webauthn, hasher, user_id, ceremony, response)?;
        if let Err(refused) = outcome {
            record_refusal(conn, origin, Some(user_id), refused)?;
        }
        Ok(outcome)
    })
}

fn second_factor_outcome(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    hasher: &TokenHasher,
    user_id: &str,
    ceremony: &str,
    response: &str,
) -> Result<Result<SignInMethod, PasskeyRefused>, AppError> {
    let Some(state) = take_ceremony(conn, hasher, ceremony, SECOND_FACTOR, Some(user_id))? else {
        return Ok(Err(PasskeyRefused::Expired));
    };
    let state: PasskeyAuthentication = serde_json::from_str(&state).map_err(unexpected)?;
    let Ok(response) = serde_json::from_str::<PublicKeyCredential>(response) else {
        return Ok(Err(PasskeyRefused::Malformed));
    };
    let found = store::find_by_credential_id(conn, &URL_SAFE_NO_PAD.encode(response.get_credential_id()))?;
    let Some((row, _)) = found.filter(|(row, _)| row.user_id == user_id) else {
        return Ok(Err(PasskeyRefused::Unknown));
    };
    verify_with(conn, &row, |_| webauthn.finish_passkey_authentication(&response, &state))
}

/// Removes one of the person's passkeys. With their last second factor go the recovery
/// codes.
pub fn remove(conn: &mut DbConnection, user_id: &str, passkey_id: &str, origin: &Origin) -> Result<(), AppError> {
    crate::db::write_transaction(conn, |conn| {
        let name = store::passkeys_of_user(conn, user_id)?
            .into_iter()
            .find(|row| row.id == passkey_id)
            .map(|row| row.name)
            .ok_or(AppError::NotFound)?;
        store::delete_passkey(conn, user_id, passkey_id)?;
        super::second_factors::ensure_policy_still_met(conn, user_id)?;
        let codes = if super::second_factors::has_second_factor(conn, user_id)? {
            0
        } else {
            crate::db::second_factors::delete_recovery_codes(conn, user_id)?
        };
        let entry = audit::Context::of(Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id))
            .change("user.passkey_removed")
            .target("user", user_id)
            .details(serde_json::json!({ "passkey_id": passkey_id, "name": name, "recovery_codes_deleted": codes }));
        audit::record(conn, &entry)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_issuer_is_a_relying_party_and_an_address_is_not() {
        let issuer = |url: &str| Issuer::from_url(&Url::parse(url).unwrap());
        assert!(relying_party(&issuer("https://auth.example.com")).unwrap().is_some());
        assert!(relying_party(&issuer("http://localhost:8080")).unwrap().is_some());
        assert!(relying_party(&issuer("http://127.0.0.1:8080")).unwrap().is_none());
        assert!(relying_party(&issuer("http://[::1]:8080")).unwrap().is_none());
    }

    #[test]
    fn names_are_trimmed_bounded_and_on_one_line() {
        assert_eq!(passkey_name("  Laptop  ").unwrap(), "Laptop");
        assert!(passkey_name("   ").is_err());
        assert!(passkey_name("a\nb").is_err());
        assert!(passkey_name(&"x".repeat(101)).is_err());
        assert_eq!(passkey_name(&"é".repeat(100)).unwrap().chars().count(), 100);
    }

    #[test]
    fn a_registration_asks_for_a_discoverable_credential_with_user_verification() {
        let webauthn =
            relying_party(&Issuer::from_url(&Url::parse("https://auth.example.com").unwrap())).unwrap().unwrap();
        let handle = Uuid::new_v4();
        let (options, _) = webauthn.start_passkey_registration(handle, "ada@example.com", "Ada", None).unwrap();
        let options: serde_json::Value = serde_json::from_str(&creation_options(&options).unwrap()).unwrap();
        assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(options["publicKey"]["authenticatorSelection"]["requireResidentKey"], true);
        assert_eq!(options["publicKey"]["userVerification"], serde_json::Value::Null);
        assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "auth.example.com");
    }
}
