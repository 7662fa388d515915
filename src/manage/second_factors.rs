//! A person's second factors: an authenticator app (RFC 6238 TOTP) and single-use recovery
//! codes. The app's secret is sealed under the master key for this person alone; recovery
//! codes are kept as keyed hashes; every enrolment, removal and use is audited.
//!
//! Codes are spent here by conditional updates (a time step later than the last accepted
//! one, a recovery code not yet used), so that a code is accepted once however many
//! requests race with it.

use totp_rs::{Builder, Totp};

use crate::audit::{self, Actor, Origin, Outcome};
use crate::crypto::{Sealer, TokenHasher, random_bytes};
use crate::db::DbConnection;
use crate::db::second_factors as store;
use crate::db::users::User;
use crate::domain::Issuer;
use crate::domain::RecoveryCode;
use crate::error::AppError;
use crate::mail::Mail;
use crate::manage::Caller;
use crate::manage::users::UserView;

/// How many recovery codes a person gets at once.
pub const RECOVERY_CODES: usize = 10;

/// RFC 6238's defaults, which every authenticator app supports: HMAC-SHA-1, six digits, 30 s.
const STEP_SECS: u64 = 30;
/// One step either side of now (RFC 6238 §5.2): a clock a little off, a code typed late.
const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;

/// An authenticator app being set up: what the person scans or types into it.
pub struct TotpSetup {
    /// The `otpauth://` link the QR code carries.
    pub uri: String,
    /// The secret in base32, for typing by hand.
    pub secret: String,
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefused {
    /// Not a code of this person's app or an unused recovery code.
    Wrong,
    /// A right code, already used (RFC 6238 §5.2: each is accepted once).
    Replayed,
}

/// The second factor a code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    AuthenticatorApp,
    /// A recovery code, with how many unused ones are left.
    RecoveryCode {
        left: i64,
    },
}

/// What the account page shows of a person's factors.
pub struct Factors {
    pub totp: Option<store::TotpFactor>,
    pub passkeys: Vec<crate::db::passkeys::PasskeyRow>,
    pub recovery_codes_left: i64,
}

/// The app's parameters; `account` and `issuer` only label it in the app (neither may hold
/// a colon, by the otpauth format).
fn authenticator(secret: Vec<u8>, account: &str, issuer: &str) -> Result<Totp, AppError> {
    let clean = |label: &str| label.replace(':', " ");
    Builder::new()
        .with_secret(secret)
        .with_digits(6)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECS)
        .with_account_name(clean(account))
        .with_issuer(Some(clean(issuer)))
        .build()
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("authenticator parameters: {e}")))
}

/// The time step a six-digit `code` belongs to, if it is right for `secret` at `unix_time`
/// or one step either side.
fn step_of(totp: &Totp, code: &str, unix_time: u64) -> Option<i64> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(&digits, unix_time).and_then(|step| i64::try_from(step).ok())
}

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default()
}

fn open_secret(sealer: &Sealer, factor: &store::TotpFactor) -> Result<Vec<u8>, AppError> {
    sealer.open(&factor.secret_sealed, &store::TotpFactor::seal_context(&factor.user_id)).map_err(|_| {
        AppError::Unexpected(anyhow::anyhow!("an authenticator secret does not open under the master key"))
    })
}

/// The step `code` belongs to if it is right for `factor`'s secret now (or one step either
/// side).
fn step_now(sealer: &Sealer, factor: &store::TotpFactor, code: &str) -> Result<Option<i64>, AppError> {
    let totp = authenticator(open_secret(sealer, factor)?, "", "Latchkey")?;
    Ok(step_of(&totp, code, unix_now()))
}

fn setup_of(totp: &Totp) -> Result<TotpSetup, AppError> {
    let uri = totp.to_url().map_err(|e| AppError::Unexpected(anyhow::anyhow!("otpauth link: {e}")))?;
    Ok(TotpSetup { uri, secret: totp.secret().to_base32() })
}

/// The app `user` is setting up (begun, not yet confirmed), to show again on a reload or
/// after a wrong first code.
pub fn setup_in_progress(
    conn: &mut DbConnection,
    sealer: &Sealer,
    user: &User,
    issuer: &str,
) -> Result<Option<TotpSetup>, AppError> {
    match store::find_totp(conn, &user.id)? {
        Some(factor) if !factor.is_confirmed() => {
            Ok(Some(setup_of(&authenticator(open_secret(sealer, &factor)?, &user.email, issuer)?)?))
        }
        _ => Ok(None),
    }
}

pub fn factors(conn: &mut DbConnection, user_id: &str) -> Result<Factors, AppError> {
    Ok(Factors {
        totp: store::find_totp(conn, user_id)?,
        passkeys: crate::db::passkeys::passkeys_of_user(conn, user_id)?,
        recovery_codes_left: store::count_unused_recovery_codes(conn, user_id)?,
    })
}

/// Whether signing in as this person with a password takes a second factor: an
/// authenticator app or a passkey.
pub fn has_second_factor(conn: &mut DbConnection, user_id: &str) -> Result<bool, AppError> {
    Ok(store::find_totp(conn, user_id)?.is_some_and(|factor| factor.is_confirmed())
        || crate::db::passkeys::count_passkeys(conn, user_id)? > 0)
}

/// The tenant's sign-in policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInPolicy {
    /// Every password sign-in ends with a second factor: people without one set one up
    /// (an authenticator app or a passkey) before their sign-in finishes.
    pub second_factor_required: bool,
}

/// Whether the owners of `user`'s tenant require a second factor of everyone.
pub fn second_factor_required(conn: &mut DbConnection, user: &User) -> Result<bool, AppError> {
    Ok(crate::db::tenants::requires_second_factor(conn, &user.tenant_id)?)
}

/// The policy, for anyone who may manage the tenant's users.
pub fn sign_in_policy(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<SignInPolicy, AppError> {
    caller.listing(crate::access::Resource::Users)?;
    let required = crate::db::tenants::requires_second_factor(conn, crate::db::DEFAULT_TENANT_ID)?;
    Ok(SignInPolicy { second_factor_required: required })
}

/// Sets the policy (owners only). It binds sign-ins from now on: sessions already open stay.
pub fn set_sign_in_policy(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    policy: SignInPolicy,
) -> Result<SignInPolicy, AppError> {
    caller.require_owner("set the sign-in policy")?;
    crate::db::write_transaction(conn, |conn| {
        let tenant = crate::db::DEFAULT_TENANT_ID;
        if crate::db::tenants::requires_second_factor(conn, tenant)? == policy.second_factor_required {
            return Ok(policy);
        }
        crate::db::tenants::set_requires_second_factor(conn, tenant, policy.second_factor_required)?;
        let entry = caller
            .audit
            .change("tenant.sign_in_policy_changed")
            .target("tenant", tenant)
            .details(serde_json::json!({ "second_factor_required": policy.second_factor_required }));
        audit::record(conn, &entry)?;
        Ok(policy)
    })
}

/// Refuses to take away `user_id`'s last second factor while the policy requires one: they
/// could not sign in with a password again without setting one up, so they set up the new
/// one first. Call it inside the removal's transaction, after the removal.
pub(super) fn ensure_policy_still_met(conn: &mut DbConnection, user_id: &str) -> Result<(), AppError> {
    let Some(user) = crate::db::users::find_user(conn, user_id)? else {
        return Ok(());
    };
    if second_factor_required(conn, &user)? && !has_second_factor(conn, user_id)? {
        return Err(AppError::Conflict(
            "The owners require two-step sign-in: add another second factor before removing your last one.".into(),
        ));
    }
    Ok(())
}

/// Starts setting up an authenticator app with a new secret (replacing one being set up).
/// Refused while one is confirmed: it must be removed first.
pub fn begin_totp(
    conn: &mut DbConnection,
    sealer: &Sealer,
    user: &User,
    issuer: &str,
    origin: &Origin,
) -> Result<TotpSetup, AppError> {
    let secret = random_bytes::<SECRET_BYTES>();
    let sealed = sealer.seal(&secret, &store::TotpFactor::seal_context(&user.id));
    crate::db::write_transaction(conn, |conn| {
        if !store::begin_totp(conn, &user.id, &sealed, crate::db::now())? {
            return Err(AppError::Conflict("An authenticator app is set up already. Remove it first.".into()));
        }
        let entry = audit::Context::of(Actor::User(&user.id), origin.ip.as_deref(), Some(&origin.request_id))
            .change("user.totp_setup_started")
            .target("user", &user.id);
        audit::record(conn, &entry)?;
        Ok(())
    })?;
    setup_of(&authenticator(secret.to_vec(), &user.email, issuer)?)
}

/// New recovery codes for `user_id`, replacing all others; their hashes are stored, the
/// codes themselves only returned.
pub(super) fn issue_recovery_codes(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    user_id: &str,
) -> Result<Vec<RecoveryCode>, AppError> {
    let codes: Vec<RecoveryCode> =
        (0..RECOVERY_CODES).map(|_| RecoveryCode::from_random(&random_bytes::<10>())).collect();
    let hashes: Vec<String> = codes.iter().map(|code| hasher.hash(code.as_str()).into_string()).collect();
    store::replace_recovery_codes(conn, user_id, &hashes, crate::db::now())?;
    Ok(codes)
}

/// Confirms the app being set up with a first code from it. The person's first second factor
/// comes with recovery codes, returned to be shown once.
pub fn confirm_totp(
    conn: &mut DbConnection,
    sealer: &Sealer,
    hasher: &TokenHasher,
    user_id: &str,
    code: &str,
    origin: &Origin,
) -> Result<Result<Vec<RecoveryCode>, CodeRefused>, AppError> {
    let context = audit::Context::of(Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id));
    crate::db::write_transaction(conn, |conn| {
        let factor = match store::find_totp(conn, user_id)? {
            Some(factor) if !factor.is_confirmed() => factor,
            _ => return Err(AppError::Conflict("There is no authenticator app being set up.".into())),
        };
        let Some(step) = step_now(sealer, &factor, code)? else {
            let entry = context
                .entry("user.totp_setup_failed", Outcome::Failure)
                .target("user", user_id)
                .details(serde_json::json!({ "reason": "wrong code" }));
            audit::record(conn, &entry)?;
            return Ok(Err(CodeRefused::Wrong));
        };
        store::confirm_totp(conn, user_id, step, crate::db::now())?;
        let first = store::count_unused_recovery_codes(conn, user_id)? == 0;
        let codes = if first { issue_recovery_codes(conn, hasher, user_id)? } else { Vec::new() };
        let entry = context
            .change("user.totp_enrolled")
            .target("user", user_id)
            .details(serde_json::json!({ "recovery_codes_issued": codes.len() }));
        audit::record(conn, &entry)?;
        Ok(Ok(codes))
    })
}

/// Checks a second factor given at sign-in: six digits are a code from the app (accepted
/// once per time step), anything else is tried as a recovery code (accepted once). Failures
/// are audited here; the caller counts them against the sign-in throttle.
pub fn verify_second_factor(
    conn: &mut DbConnection,
    sealer: &Sealer,
    hasher: &TokenHasher,
    user_id: &str,
    code: &str,
    origin: &Origin,
) -> Result<Result<SecondFactor, CodeRefused>, AppError> {
    let context = audit::Context::of(Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id));
    crate::db::write_transaction(conn, |conn| {
        let now = crate::db::now();
        let looks_like_app_code = code.chars().filter(|c| !c.is_whitespace()).all(|c| c.is_ascii_digit());
        let outcome = if looks_like_app_code {
            match store::find_totp(conn, user_id)?.filter(store::TotpFactor::is_confirmed) {
                None => Err(CodeRefused::Wrong),
                Some(factor) => match step_now(sealer, &factor, code)? {
                    None => Err(CodeRefused::Wrong),
                    Some(step) if store::spend_totp_step(conn, user_id, step, now)? => {
                        Ok(SecondFactor::AuthenticatorApp)
                    }
                    Some(_) => Err(CodeRefused::Replayed),
                },
            }
        } else {
            match RecoveryCode::parse(code) {
                Some(recovery)
                    if hasher
                        .presented(recovery.as_str())
                        .any(|hash| store::spend_recovery_code(conn, user_id, hash, now))? =>
                {
                    Ok(SecondFactor::RecoveryCode { left: store::count_unused_recovery_codes(conn, user_id)? })
                }
                _ => Err(CodeRefused::Wrong),
            }
        };
        let entry = match outcome {
            Ok(SecondFactor::AuthenticatorApp) => None,
            Ok(SecondFactor::RecoveryCode { left }) => Some(
                context
                    .entry("user.recovery_code_used", Outcome::Success)
                    .target("user", user_id)
                    .details(serde_json::json!({ "left": left })),
            ),
            Err(refused) => {
                Some(context.entry("user.second_factor_failed", Outcome::Failure).target("user", user_id).details(
                    serde_json::json!({ "reason": match refused {
                        CodeRefused::Wrong => "wrong code",
                        CodeRefused::Replayed => "code already used",
                    } }),
                ))
            }
        };
        if let Some(entry) = entry {
            audit::record(conn, &entry)?;
        }
        Ok(outcome)
    })
}

/// An owner resets someone's second factors (they lost their phone and their recovery
/// codes): the app and the codes go, and signing in asks only for the password until they
/// set up a new app. Audited as the owner's change; answers the person, who is to be told.
pub fn reset_for(conn: &mut DbConnection, caller: &Caller<'_>, user_id: &str) -> Result<UserView, AppError> {
    let user = super::users::get_user(conn, caller, user_id)?;
    caller.require_owner("reset someone's two-step sign-in")?;
    crate::db::write_transaction(conn, |conn| {
        let app = store::delete_totp(conn, user_id)?;
        let passkeys = crate::db::passkeys::delete_passkeys_of_user(conn, user_id)?;
        let codes = store::delete_recovery_codes(conn, user_id)?;
        if app == 0 && passkeys == 0 && codes == 0 {
            return Err(AppError::Conflict("the user has no second factor to reset".into()));
        }
        crate::db::pending_sign_ins::delete_pending_sign_ins_of_user(conn, user_id)?;
        let entry =
            caller.audit.change("user.second_factors_reset").target("user", user_id).details(serde_json::json!({
                "authenticator_app_removed": app > 0,
                "passkeys_removed": passkeys,
                "recovery_codes_deleted": codes,
            }));
        audit::record(conn, &entry)?;
        Ok(())
    })?;
    Ok(user)
}

/// The mail that tells someone an owner reset their second factors: a reset they did not
/// ask for must not go unnoticed.
pub fn reset_notice(issuer: &Issuer, user: &UserView) -> Mail {
    Mail {
        to: user.email.clone(),
        subject: "Your two-step sign-in was reset".to_owned(),
        body: format!(
            "Hello {name},\n\n\
             an owner of {issuer} reset your two-step sign-in: your authenticator app, your passkeys \
             and your recovery codes no longer work, and signing in asks only for your password.\n\n\
             Set up a new second factor on your account page: {account}\n\n\
             If you did not ask for this, tell the owners of {issuer} at once.\n",
            name = user.name.as_deref().filter(|name| !name.is_empty()).unwrap_or(&user.email),
            account = issuer.endpoint("/account"),
        ),
    }
}

/// Removes the authenticator app. If it was the last second factor (no passkey left), the
/// recovery codes go too.
pub fn remove_totp(conn: &mut DbConnection, user_id: &str, origin: &Origin) -> Result<(), AppError> {
    crate::db::write_transaction(conn, |conn| {
        if store::delete_totp(conn, user_id)? == 0 {
            return Err(AppError::NotFound);
        }
        ensure_policy_still_met(conn, user_id)?;
        let codes = if has_second_factor(conn, user_id)? { 0 } else { store::delete_recovery_codes(conn, user_id)? };
        let entry = audit::Context::of(Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id))
            .change("user.totp_removed")
            .target("user", user_id)
            .details(serde_json::json!({ "recovery_codes_deleted": codes }));
        audit::record(conn, &entry)?;
        Ok(())
    })
}

/// Ten new recovery codes; every earlier one stops working. Only for a person with a second
/// factor: without one there is nothing to recover.
pub fn regenerate_recovery_codes(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    user_id: &str,
    origin: &Origin,
) -> Result<Vec<RecoveryCode>, AppError> {
    crate::db::write_transaction(conn, |conn| {
        if !has_second_factor(conn, user_id)? {
            return Err(AppError::Conflict("Set up an authenticator app first.".into()));
        }
        let codes = issue_recovery_codes(conn, hasher, user_id)?;
        let entry = audit::Context::of(Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id))
            .change("user.recovery_codes_regenerated")
            .target("user", user_id);
        audit::record(conn, &entry)?;
        Ok(codes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 secret and times. Its codes have eight digits; six-digit
    /// codes are the same number modulo 10^6 (RFC 4226 §5.3), so their last six digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: &[(u64, &str)] = &[
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    fn rfc_app() -> Totp {
        authenticator(RFC_SECRET.to_vec(), "ada@example.com", "Latchkey").unwrap()
    }

    #[test]
    fn codes_match_rfc_6238_test_vectors() {
        let app = rfc_app();
        for (time, eight_digits) in RFC_VECTORS {
            let code = &eight_digits[2..];
            assert_eq!(app.generate(*time).to_string(), code, "at {time}");
            assert_eq!(step_of(&app, code, *time), Some(i64::try_from(time / 30).unwrap()), "at {time}");
        }
    }

    #[test]
    fn a_code_is_good_one_step_either_side_and_no_further() {
        let app = rfc_app();
        let time = 1_111_111_111;
        let code = app.generate(time).to_string();
        assert!(step_of(&app, &code, time + 30).is_some());
        assert!(step_of(&app, &code, time - 30).is_some());
        assert_eq!(step_of(&app, &code, time + 90), None);
        assert_eq!(step_of(&app, &code, time - 90), None);
    }

    #[test]
    fn malformed_codes_are_wrong_not_errors() {
        let app = rfc_app();
        for code in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert_eq!(step_of(&app, code, 59), None, "{code}");
        }
        assert!(step_of(&app, "287 082", 59).is_some());
    }

    #[test]
    fn the_link_names_the_person_and_the_server_and_carries_the_secret() {
        let app = authenticator(RFC_SECRET.to_vec(), "ada@example.com", "auth.example.com:8443").unwrap();
        let uri = app.to_url().unwrap();
        assert!(uri.starts_with("otpauth://totp/auth.example.com%208443:ada%40example.com?"), "{uri}");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
    }
}
