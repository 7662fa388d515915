//! Signing keys in the dashboard: each key with its state, rotating an algorithm's key, and
//! withdrawing a retired key that leaked (with the consequence spelled out). Each action is
//! `manage::signing_keys`' own call; this instance reloads its keys at once, the others
//! within `key_refresh_secs`, as after the API's calls.

use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use serde::Deserialize;

use super::{PageError, PageResult, Section, Shell, Visitor, date, see_other};
use crate::access::{Action, Resource};
use crate::domain::SigningAlgorithm;
use crate::error::AppError;
use crate::manage::signing_keys::{self, SigningKeyView};
use crate::state::AppState;
use crate::web::form::PageForm;

pub const LIST: &str = "/dashboard/signing-keys";

const ALGORITHMS: [SigningAlgorithm; 3] = [SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA];

struct KeyRow {
    kid: String,
    algorithm: String,
    state: &'static str,
    created: String,
    published_until: String,
    withdrawable: bool,
}

#[derive(Template)]
#[template(path = "dashboard/signing_keys.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    keys: Vec<KeyRow>,
    algorithms: Vec<&'static str>,
    may_change: bool,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn state_label(view: &SigningKeyView) -> &'static str {
    match view.state {
        "active" => "Signs now",
        "retired" => "Retired, still published",
        _ => "No longer published",
    }
}

pub async fn get_list(visitor: Visitor, query: web::Query<DoneQuery>) -> PageResult {
    let listed = visitor.run(|conn, caller, _| signing_keys::list_signing_keys(conn, caller)).await;
    let views = listed?;
    let may_change = visitor.reach().can(Resource::SigningKeys, Action::Write);
    let keys = views
        .iter()
        .rev()
        .map(|view| KeyRow {
            kid: view.kid.clone(),
            algorithm: view.algorithm.clone(),
            state: state_label(view),
            created: date(Some(view.created_at)),
            published_until: match (view.state, view.published_until) {
                ("active", _) => "While it signs".into(),
                (_, Some(until)) => until.format("%-d %b %Y %H:%M UTC").to_string(),
                (_, None) => "—".into(),
            },
            withdrawable: may_change && view.state == "retired",
        })
        .collect();
    let page = ListPage {
        shell: visitor.shell(Section::SigningKeys),
        notice: match query.done.as_deref() {
            Some("rotated") => Some("A new key signs now. The previous one stays published until its tokens expire."),
            Some("withdrawn") => Some("The key was withdrawn: tokens it signed no longer verify."),
            _ => None,
        },
        keys,
        algorithms: ALGORITHMS.iter().map(|a| a.as_str()).collect(),
        may_change,
    };
    visitor.page(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "dashboard/signing_key_confirm.html")]
struct ConfirmPage {
    shell: Shell,
    /// `rotate` (of `subject`, an algorithm) or `withdraw` (of `subject`, a kid).
    what: &'static str,
    subject: String,
}

#[derive(Deserialize)]
pub struct RotateQuery {
    algorithm: Option<String>,
}

fn algorithm(value: Option<&str>) -> Result<SigningAlgorithm, AppError> {
    let value = value.unwrap_or("RS256");
    ALGORITHMS.into_iter().find(|a| a.as_str() == value).ok_or_else(|| {
        AppError::BadRequest(format!("unknown signing algorithm `{value}` (expected RS256, ES256 or EdDSA)"))
    })
}

fn may_change(visitor: &Visitor) -> Result<(), AppError> {
    if visitor.reach().can(Resource::SigningKeys, Action::Write) {
        Ok(())
    } else {
        Err(AppError::Forbidden("changing signing keys takes signing_keys:write".into()))
    }
}

pub async fn get_rotate(visitor: Visitor, query: web::Query<RotateQuery>) -> PageResult {
    let algorithm = match may_change(&visitor).and_then(|()| algorithm(query.algorithm.as_deref())) {
        Ok(algorithm) => algorithm,
        Err(refused) => return Err(refused.into()),
    };
    let page = ConfirmPage {
        shell: visitor.shell(Section::SigningKeys),
        what: "rotate",
        subject: algorithm.as_str().to_owned(),
    };
    visitor.page(StatusCode::OK, &page)
}

pub async fn get_withdraw(visitor: Visitor, kid: web::Path<String>) -> PageResult {
    if let Err(refused) = may_change(&visitor) {
        return Err(refused.into());
    }
    let kid = kid.into_inner();
    let wanted = kid.clone();
    let listed = visitor.run(|conn, caller, _| signing_keys::list_signing_keys(conn, caller)).await;
    match listed.map(|keys| keys.into_iter().find(|k| k.kid == wanted)) {
        Ok(Some(key)) if key.state == "retired" => {
            let page = ConfirmPage { shell: visitor.shell(Section::SigningKeys), what: "withdraw", subject: kid };
            visitor.page(StatusCode::OK, &page)
        }
        Ok(Some(_)) => Err(PageError::from(AppError::Conflict(
            "only a retired key that is still published can be withdrawn; the key that signs is rotated first".into(),
        ))),
        Ok(None) => Ok(super::not_found_page()),
        Err(refused) => Err(refused.into()),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    algorithm: String,
}

pub async fn post_rotate(visitor: Visitor, form: PageForm<ConfirmForm>, state: web::Data<AppState>) -> PageResult {
    let form = form.into_inner();
    let algorithm = match algorithm(Some(form.algorithm.as_str())) {
        Ok(algorithm) => algorithm,
        Err(refused) => return Err(refused.into()),
    };
    let rotated = visitor
        .run(move |conn, caller, state| {
            signing_keys::rotate_signing_key(conn, &state.sealer, caller, algorithm, &state.settings)
        })
        .await;
    match rotated {
        Ok(_) => {
            state.reload_keys().await?;
            Ok(see_other(&format!("{LIST}?done=rotated")))
        }
        Err(refused) => Err(refused.into()),
    }
}

pub async fn post_withdraw(
    visitor: Visitor,
    kid: web::Path<String>,
    _form: PageForm<ConfirmForm>,
    state: web::Data<AppState>,
) -> PageResult {
    let kid = kid.into_inner();
    let withdrawn = visitor.run(move |conn, caller, _| signing_keys::withdraw_signing_key(conn, caller, &kid)).await;
    match withdrawn {
        Ok(_) => {
            state.reload_keys().await?;
            Ok(see_other(&format!("{LIST}?done=withdrawn")))
        }
        Err(refused) => Err(refused.into()),
    }
}
