//! Consents: which apps a user let have which scopes, for which API. A consent the person
//! asked to remember lets the next request for no more than it covers skip the consent page;
//! withdrawing one revokes the tokens the app holds for that user.

use serde::Serialize;

use super::Caller;
use crate::access::{Action, Resource, Target};
use crate::audit;
use crate::db::DbConnection;
use crate::db::consents::{
    Consent, ConsentGrant, delete_consent, find_consent, find_consent_by_id, list_consents as db_list_consents,
    save_consent,
};
use crate::db::refresh_tokens::revoke_families_of_user_client;
use crate::domain::Scopes;
use crate::error::AppError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub client_name: String,
    /// The API the scopes are for, or the issuer for Latchkey itself (empty for consents
    /// recorded before consent was per API).
    pub audience: String,
    pub scope: String,
    /// Whether the user asked not to be asked again.
    pub remembered: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Whether `user_id` asked to be remembered letting `client_id` have every scope of `scope`
/// for `audience`: a `read` granted for one API is no consent to another API's `read`.
pub fn is_remembered(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    audience: &str,
    scope: &Scopes,
) -> Result<bool, AppError> {
    let consent = find_consent(conn, user_id, client_id, audience)?;
    Ok(consent.is_some_and(|c| c.remembered && scope.is_subset(&Scopes::parse(&c.scope).unwrap_or_default())))
}

/// Records that `user_id` allowed `client_id` `scope` for `audience`, added to what they
/// allowed before; `remember` decides whether the next request skips the page. Every approval
/// is recorded, remembered or not: the account page lists it.
pub fn record_approval(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    audience: &str,
    scope: &Scopes,
    remember: bool,
) -> Result<(), AppError> {
    let previous = find_consent(conn, user_id, client_id, audience)?;
    let mut scopes: Vec<&str> = scope.iter().collect();
    if let Some(previous) = &previous {
        scopes.extend(previous.scope.split(' ').filter(|s| !s.is_empty()));
    }
    let merged = Scopes::from_tokens(scopes).unwrap_or_default();
    let grant = ConsentGrant { user_id, client_id, audience, scope: &merged.to_string(), remembered: remember };
    Ok(save_consent(conn, &grant, crate::db::now())?)
}

fn view(consent: &Consent, client_name: String) -> ConsentView {
    ConsentView {
        id: consent.id.clone(),
        user_id: consent.user_id.clone(),
        client_id: consent.client_id.clone(),
        client_name,
        audience: consent.audience.clone(),
        scope: consent.scope.clone(),
        remembered: consent.remembered,
        created_at: crate::db::utc(consent.created_at),
        updated_at: crate::db::utc(consent.updated_at),
    }
}

/// Every consent the caller may see, optionally only one user's.
pub fn list_consents(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    user_id: Option<&str>,
) -> Result<Vec<ConsentView>, AppError> {
    let listing = caller.listing(Resource::Consents)?;
    let user = match (listing.all, user_id, listing.user.as_deref()) {
        (true, wanted, _) => wanted,
        (false, Some(wanted), Some(own)) if wanted != own => return Ok(Vec::new()),
        (false, _, own) => own,
    };
    Ok(db_list_consents(conn, user)?.into_iter().map(|(consent, name)| view(&consent, name)).collect())
}

/// Who let the client in (email, what they allowed, since when), when the caller may see
/// consents; `None` when they may not. The client itself must be in the caller's reach.
pub fn consents_for_client(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    client_id: &str,
) -> Result<Option<Vec<(String, ConsentView)>>, AppError> {
    super::clients::get_client(conn, caller, client_id)?;
    if !caller.reach.can(Resource::Consents, Action::Read) {
        return Ok(None);
    }
    let consents = crate::db::consents::list_consents_for_client(conn, client_id)?;
    Ok(Some(consents.into_iter().map(|(consent, email)| (email, view(&consent, String::new()))).collect()))
}

/// Withdraws a consent and revokes the refresh tokens (and their access tokens) the client
/// holds for the user.
pub fn revoke_consent(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<(), AppError> {
    let consent = find_consent_by_id(conn, id)?.ok_or(AppError::NotFound)?;
    caller.check(Target::of(Resource::Consents).of_user(Some(&consent.user_id)), Action::Delete)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        let now = crate::db::now();
        delete_consent(conn, &consent.user_id, &consent.client_id)?;
        let revoked = revoke_families_of_user_client(conn, &consent.user_id, &consent.client_id, now)?;
        audit::record(
            conn,
            &caller
                .audit
                .change("consent.revoked")
                .target("client", &consent.client_id)
                .details(serde_json::json!({ "user_id": consent.user_id, "refresh_tokens_revoked": revoked })),
        )?;
        Ok(())
    })
}
