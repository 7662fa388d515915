//! The fields that choose an API key: kind, name, team and role, service account,
//! permissions, expiry and tier. The dashboard's "Create an API key" and the connect flow's
//! approval page (`/device`) show the same fields (`templates/key_fields.html`), offer the
//! same kinds (`manage::api_keys::creatable_kinds`) and read them the same way, so a person
//! can hand a tool through the browser exactly what they could create by hand, and nothing more.

use chrono::{NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

use super::form::{Choice, sentence};
use crate::access::{Action, Permission, Resource, TeamRole};
use crate::audit::Origin;
use crate::config::Environment;
use crate::db::DbConnection;
use crate::db::users::User;
use crate::domain::{ApiKeyKind, DisplayName};
use crate::error::AppError;
use crate::manage::api_keys::{self, KeyRequest, creatable_kinds, may_set_tier, teams_for_team_keys, vet_key};
use crate::manage::{Acting, Caller, SignedInUser};
use crate::ratelimit::Tier;

/// The form fields this module reads, which a page carrying other parameters beside them
/// (the consent page's OAuth request) must tell apart.
pub const FIELDS: [&str; 9] =
    ["kind", "name", "permissions", "team_id", "team_role", "service_account", "tier", "expires", "expires_on"];

/// How people call each kind.
pub fn kind_label(kind: ApiKeyKind) -> &'static str {
    match kind {
        ApiKeyKind::Personal => "Personal",
        ApiKeyKind::Service => "Service account",
        ApiKeyKind::Team => "Team",
        ApiKeyKind::TenantOwner => "Tenant owner",
        ApiKeyKind::Restricted => "Restricted",
    }
}

/// What each kind is for.
pub fn kind_description(kind: ApiKeyKind) -> &'static str {
    match kind {
        ApiKeyKind::Personal => "Acts as you, with exactly your access. Stops working if your account is deactivated.",
        ApiKeyKind::Service => "For a program: a new service account with the tenant permissions you choose.",
        ApiKeyKind::Team => "Acts in one team with a role: viewer, editor or admin.",
        ApiKeyKind::TenantOwner => "Reaches everything in the tenant. Keep it for bootstrapping and emergencies.",
        ApiKeyKind::Restricted => "Only the permissions you tick (an rk_ key), for one script or integration.",
    }
}

fn resource_label(resource: Option<Resource>) -> &'static str {
    match resource {
        None => "Every resource",
        Some(Resource::Clients) => "OAuth apps",
        Some(Resource::Apis) => "APIs",
        Some(Resource::Users) => "Users",
        Some(Resource::Teams) => "Teams",
        Some(Resource::ApiKeys) => "API keys",
        Some(Resource::Consents) => "Consents",
        Some(Resource::SigningKeys) => "Signing keys",
        Some(Resource::AuditLog) => "Audit log",
    }
}

const ACTIONS: [Action; 4] = [Action::Read, Action::Write, Action::Delete, Action::Admin];

/// A trimmed, non-empty form value.
pub fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub struct PermissionCell {
    pub id: String,
    pub value: String,
    pub label: String,
    pub checked: bool,
}

pub struct PermissionRow {
    pub label: &'static str,
    pub cells: Vec<PermissionCell>,
}

#[derive(Clone, Copy)]
pub struct KindOption {
    pub value: &'static str,
    pub label: &'static str,
    pub description: &'static str,
}

impl KindOption {
    pub fn of(kind: ApiKeyKind) -> Self {
        Self { value: kind.as_str(), label: kind_label(kind), description: kind_description(kind) }
    }
}

/// What `templates/key_fields.html` shows, for one kind.
pub struct KeyFields {
    pub kind: KindOption,
    pub name: String,
    pub name_error: Option<String>,
    pub teams: Vec<Choice>,
    pub roles: Vec<Choice>,
    /// Existing service accounts a service key may join instead of making a new one.
    pub accounts: Vec<Choice>,
    pub new_account: bool,
    pub permissions: Vec<PermissionRow>,
    pub permissions_needed: bool,
    pub tiers: Vec<Choice>,
    pub expiries: Vec<Choice>,
    pub expires_on: String,
    pub expires_error: Option<String>,
    pub environment: &'static str,
    pub error: Option<String>,
}

/// What the person typed, kept when the form comes back with an error.
#[derive(Deserialize, Default)]
pub struct KeyForm {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    pub team_id: Option<String>,
    pub team_role: Option<String>,
    /// A service key's account: `new`, or an existing account's id.
    pub service_account: Option<String>,
    pub tier: Option<String>,
    pub expires: Option<String>,
    pub expires_on: Option<String>,
}

const EXPIRIES: [(&str, &str); 6] = [
    ("never", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("180", "In 180 days"),
    ("365", "In a year"),
    ("date", "On a date (below)"),
];

/// What the form may offer this person: the kinds, teams, accounts and tiers they may use.
pub struct Offer {
    pub kinds: Vec<ApiKeyKind>,
    teams: Vec<(String, String)>,
    accounts: Vec<(String, String)>,
    tiers: bool,
}

impl Offer {
    /// What `caller` may hand out, by the rules `manage::api_keys::create_key` applies.
    pub fn load(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Self, AppError> {
        Ok(Self {
            kinds: creatable_kinds(conn, caller)?,
            teams: teams_for_team_keys(conn, caller)?,
            accounts: api_keys::service_accounts_for_keys(conn, caller)?,
            tiers: may_set_tier(caller),
        })
    }

    /// The kinds offered, as links or radio buttons show them.
    pub fn kind_options(&self) -> Vec<KindOption> {
        self.kinds.iter().copied().map(KindOption::of).collect()
    }

    /// `value` as a kind on offer.
    pub fn kind(&self, value: &str) -> Option<ApiKeyKind> {
        ApiKeyKind::from_stored(value.trim()).filter(|kind| self.kinds.contains(kind))
    }
}

/// Refusals placed on the form: as a whole, by the name, by the expiry.
#[derive(Default)]
pub struct FieldErrors {
    pub form: Option<String>,
    pub name: Option<String>,
    pub expires: Option<String>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.form.is_some() || self.name.is_some() || self.expires.is_some()
    }

    /// A refusal from `manage` (a message in API wording), shown on the form as a sentence.
    pub fn refused(message: &str) -> Self {
        Self { form: Some(sentence(message)), ..Self::default() }
    }
}

/// The fields for `kind`, filled with what `form` holds.
pub fn fields(
    environment: Environment,
    offer: &Offer,
    kind: ApiKeyKind,
    form: &KeyForm,
    errors: FieldErrors,
) -> KeyFields {
    let selected = |value: &Option<String>, candidate: &str| value.as_deref() == Some(candidate);
    let rows = std::iter::once(None).chain(Resource::ALL.into_iter().map(Some));
    KeyFields {
        kind: KindOption::of(kind),
        name: form.name.clone(),
        name_error: errors.name,
        teams: offer
            .teams
            .iter()
            .map(|(id, name)| Choice { value: id.clone(), label: name.clone(), selected: selected(&form.team_id, id) })
            .collect(),
        accounts: offer
            .accounts
            .iter()
            .map(|(id, name)| Choice {
                value: id.clone(),
                label: name.clone(),
                selected: selected(&form.service_account, id),
            })
            .collect(),
        new_account: given(&form.service_account).is_none_or(|a| a == "new"),
        roles: [TeamRole::Viewer, TeamRole::Editor, TeamRole::Admin]
            .into_iter()
            .map(|r| Choice {
                value: r.as_str().into(),
                label: r.as_str().into(),
                selected: selected(&form.team_role, r.as_str()),
            })
            .collect(),
        permissions: rows
            .map(|resource| PermissionRow {
                label: resource_label(resource),
                cells: ACTIONS
                    .into_iter()
                    .map(|action| {
                        let value = Permission { resource, action }.to_string();
                        PermissionCell {
                            id: format!("perm-{}", value.replace(':', "-")),
                            label: format!("{}: {}", resource_label(resource), action.as_str()),
                            checked: form.permissions.contains(&value),
                            value,
                        }
                    })
                    .collect(),
            })
            .collect(),
        permissions_needed: matches!(kind, ApiKeyKind::Restricted | ApiKeyKind::Service),
        tiers: if offer.tiers {
            [Tier::Free, Tier::Pro, Tier::Enterprise]
                .into_iter()
                .map(|t| Choice {
                    value: t.as_str().into(),
                    label: t.as_str().into(),
                    selected: selected(&form.tier, t.as_str()),
                })
                .collect()
        } else {
            Vec::new()
        },
        expiries: EXPIRIES
            .into_iter()
            .map(|(value, label)| Choice {
                value: value.into(),
                label: label.into(),
                selected: form.expires.as_deref().unwrap_or("never") == value,
            })
            .collect(),
        expires_on: form.expires_on.clone().unwrap_or_default(),
        expires_error: errors.expires,
        environment: environment.as_str(),
        error: errors.form,
    }
}

/// The expiry the form asks for: `Err` is the message for the field.
fn expiry(form: &KeyForm, today: NaiveDate) -> Result<Option<chrono::DateTime<Utc>>, String> {
    let now = Utc::now();
    match form.expires.as_deref().map(str::trim).filter(|v| !v.is_empty()).unwrap_or("never") {
        "never" => Ok(None),
        "date" => {
            let value = form.expires_on.as_deref().map(str::trim).unwrap_or_default();
            let day =
                NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| "Choose a date (YYYY-MM-DD).".to_owned())?;
            if day <= today {
                return Err("Choose a date after today.".into());
            }
            Ok(Some(day.and_time(chrono::NaiveTime::MIN).and_utc()))
        }
        days => match days.parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => Ok(Some(now + TimeDelta::days(days))),
            _ => Err("Choose one of the offered expiries.".into()),
        },
    }
}

/// Reads the form as a request for a key of `kind`, with what a person must fix; whether the
/// person may have that key is `manage`'s to say.
pub fn read(form: &KeyForm, kind: ApiKeyKind, today: NaiveDate) -> (KeyRequest, FieldErrors) {
    let mut errors = FieldErrors::default();
    if let Err(problem) = DisplayName::parse(&form.name) {
        errors.name = Some(sentence(&format!("the name {problem}")));
    }
    let expires_at = expiry(form, today).unwrap_or_else(|message| {
        errors.expires = Some(message);
        None
    });
    let team_role = match given(&form.team_role).map(str::parse::<TeamRole>) {
        Some(Ok(role)) => Some(role),
        Some(Err(message)) => {
            errors.form = Some(sentence(&message));
            None
        }
        None => None,
    };
    let tier = match given(&form.tier).map(str::parse::<Tier>) {
        Some(Ok(tier)) => Some(tier),
        Some(Err(message)) => {
            errors.form = Some(sentence(&message));
            None
        }
        None => None,
    };
    let existing_account =
        given(&form.service_account).filter(|a| *a != "new" && kind == ApiKeyKind::Service).map(str::to_owned);
    let request = KeyRequest {
        kind,
        name: form.name.clone(),
        permissions: match kind {
            ApiKeyKind::Restricted => form.permissions.clone(),
            ApiKeyKind::Service if existing_account.is_none() => form.permissions.clone(),
            _ => vec![],
        },
        service_account_id: existing_account,
        team_id: (kind == ApiKeyKind::Team).then(|| given(&form.team_id).map(str::to_owned)).flatten(),
        team_role: if kind == ApiKeyKind::Team { team_role } else { None },
        tier,
        expires_at,
    };
    (request, errors)
}

/// A page's choice of key for a tool that asked for one (the connect flow): the kinds on
/// offer, or the chosen kind's fields.
pub struct KeyChoice {
    pub kinds: Vec<KindOption>,
    pub key: Option<KeyFields>,
    /// Why the kind posted could not be had, while none is chosen.
    pub error: Option<String>,
    /// This page's address with `kind=` last, to which a kind's value is appended.
    pub kind_link: String,
}

/// Where a person's choice stands: which kind, what was typed, what to fix.
pub struct KeyDraft {
    offer: Offer,
    kind: Option<ApiKeyKind>,
    form: KeyForm,
    errors: FieldErrors,
}

impl KeyDraft {
    /// A new draft for `kind` (from the page's address) if it is on offer; with one kind on
    /// offer, that one.
    pub fn new(offer: Offer, kind: Option<&str>) -> Self {
        let only = (offer.kinds.len() == 1).then(|| offer.kinds.first().copied()).flatten();
        let kind = kind.and_then(|value| offer.kind(value)).or(only);
        Self { offer, kind, form: KeyForm::default(), errors: FieldErrors::default() }
    }

    pub fn has_errors(&self) -> bool {
        self.errors.any()
    }

    pub fn choice(self, environment: Environment, kind_link: String) -> KeyChoice {
        let kinds = self.offer.kind_options();
        match self.kind {
            Some(kind) => KeyChoice {
                kinds,
                key: Some(fields(environment, &self.offer, kind, &self.form, self.errors)),
                error: None,
                kind_link,
            },
            None => KeyChoice { kinds, key: None, error: self.errors.form, kind_link },
        }
    }
}

/// `user` signed in, as the caller their choices are vetted as.
fn person(conn: &mut DbConnection, user: &User) -> Result<SignedInUser, AppError> {
    SignedInUser::load(conn, user)
}

/// What `user` may offer a tool: the kinds of key they may create (from a blocking context).
pub fn offer_to(conn: &mut DbConnection, user: &User, origin: &Origin) -> Result<Offer, AppError> {
    let person = person(conn, user)?;
    Offer::load(conn, &person.caller(origin.ip.as_deref(), &origin.request_id))
}

/// Reads the posted `form` and vets it as `user`, by the rules that make the key later: the
/// request to keep, or the draft to show again with what to fix.
pub fn vet_choice(
    conn: &mut DbConnection,
    user: &User,
    origin: &Origin,
    form: KeyForm,
) -> Result<Result<KeyRequest, KeyDraft>, AppError> {
    let person = person(conn, user)?;
    let caller: Caller<'_> = person.caller(origin.ip.as_deref(), &origin.request_id);
    let offer = Offer::load(conn, &caller)?;
    let Some(kind) = offer.kind(&form.kind) else {
        let errors = FieldErrors::refused("choose a kind of key you may create");
        return Ok(Err(KeyDraft { offer, kind: None, form, errors }));
    };
    let (request, errors) = read(&form, kind, Utc::now().date_naive());
    let errors = if errors.any() {
        errors
    } else {
        match vet_key(conn, &caller, request.clone()) {
            Ok(_) => return Ok(Ok(request)),
            Err(AppError::BadRequest(why) | AppError::Forbidden(why) | AppError::Conflict(why)) => {
                FieldErrors::refused(&why)
            }
            Err(AppError::NotFound) => FieldErrors::refused("that team does not exist"),
            Err(other) => return Err(other),
        }
    };
    Ok(Err(KeyDraft { offer, kind: Some(kind), form, errors }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_future_dates_or_offered_periods() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let form = |expires: &str, on: &str| KeyForm {
            expires: Some(expires.into()),
            expires_on: Some(on.into()),
            ..KeyForm::default()
        };
        assert_eq!(expiry(&form("never", ""), today), Ok(None));
        assert_eq!(expiry(&KeyForm::default(), today), Ok(None));
        let on = expiry(&form("date", "2027-01-31"), today).unwrap().unwrap();
        assert_eq!(on.to_rfc3339(), "2027-01-31T00:00:00+00:00");
        assert!(expiry(&form("date", "2026-12-02"), today).is_err());
        assert!(expiry(&form("date", "31/01/2027"), today).is_err());
        assert!(expiry(&form("0", ""), today).is_err());
        assert!(expiry(&form("99999", ""), today).is_err());
        assert!(expiry(&form("30", ""), today).unwrap().is_some());
    }

    #[test]
    fn a_kind_takes_only_its_own_fields() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let form = KeyForm {
            name: "deploys".into(),
            permissions: vec!["clients:read".into()],
            team_id: Some("t1".into()),
            team_role: Some("editor".into()),
            ..KeyForm::default()
        };
        let (personal, errors) = read(&form, ApiKeyKind::Personal, today);
        assert!(!errors.any());
        assert!(personal.permissions.is_empty() && personal.team_id.is_none() && personal.team_role.is_none());
        let (restricted, _) = read(&form, ApiKeyKind::Restricted, today);
        assert_eq!(restricted.permissions, ["clients:read"]);
        let (team, _) = read(&form, ApiKeyKind::Team, today);
        assert_eq!((team.team_id.as_deref(), team.team_role), (Some("t1"), Some(TeamRole::Editor)));
        let (_, errors) = read(&KeyForm { team_role: Some("boss".into()), ..form }, ApiKeyKind::Team, today);
        assert!(errors.form.is_some());
    }
}
