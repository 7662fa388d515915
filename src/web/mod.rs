//! Latchkey's own pages: sign-in, sign-out, consent, the account page (the "http" floor,
//! beside `oauth`, whose decisions the consent page carries out). HTML from askama
//! templates, CSS from `static/`; script only where the browser's APIs need it (passkeys)
//! or for a convenience (copy buttons).
//!
//! Floor: http (docs/architecture.md); may name `oauth` (the consent page carries out its decisions); `oauth` never names it.

pub mod account;
pub mod consent;
pub mod csrf;
pub mod dashboard;
pub mod device;
pub mod enrolment;
pub mod factors;
pub mod form;
pub mod invitation;
pub mod key_form;
pub mod login;
pub mod pages;
pub mod passkey_sign_in;
pub mod password_reset;
pub mod second_factor;
pub mod session;
pub mod setup;
pub mod throttle;

use actix_web::http::Method;
use actix_web::web;

use crate::http::{only, routes};

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in [crate::oauth::AUTHORIZE_PATH, crate::oauth::GUIDES_AUTHORIZE_PATH] {
        cfg.service(routes(
            path,
            vec![
                (Method::GET, web::get().to(consent::get_authorize)),
                (Method::POST, web::post().to(consent::post_authorize)),
            ],
        ));
    }
    cfg.service(
        web::resource("/login").route(web::get().to(login::get_login)).route(web::post().to(login::post_login)),
    )
    .service(routes(
        second_factor::SECOND_FACTOR_PATH,
        vec![
            (Method::GET, web::get().to(second_factor::get_second_factor)),
            (Method::POST, web::post().to(second_factor::post_second_factor)),
        ],
    ))
    .service(only(second_factor::PASSKEY_PATH, Method::POST, web::post().to(second_factor::post_second_factor_passkey)))
    .service(only(enrolment::ENROL_PATH, Method::GET, web::get().to(enrolment::get_enrol)))
    .service(only("/login/enrol/totp", Method::POST, web::post().to(enrolment::post_enrol_totp)))
    .service(only("/login/enrol/totp/confirm", Method::POST, web::post().to(enrolment::post_enrol_totp_confirm)))
    .service(only("/login/enrol/passkey", Method::POST, web::post().to(enrolment::post_enrol_passkey)))
    .service(only("/login/enrol/passkey/confirm", Method::POST, web::post().to(enrolment::post_enrol_passkey_confirm)))
    .service(only(passkey_sign_in::OPTIONS_PATH, Method::POST, web::post().to(passkey_sign_in::post_options)))
    .service(only(passkey_sign_in::SIGN_IN_PATH, Method::POST, web::post().to(passkey_sign_in::post_sign_in)))
    .service(routes(
        password_reset::FORGOT_PATH,
        vec![
            (Method::GET, web::get().to(password_reset::get_forgot)),
            (Method::POST, web::post().to(password_reset::post_forgot)),
        ],
    ))
    .service(routes(
        password_reset::RESET_PATH,
        vec![
            (Method::GET, web::get().to(password_reset::get_reset)),
            (Method::POST, web::post().to(password_reset::post_reset)),
        ],
    ))
    .service(web::resource("/logout").route(web::get().to(login::get_logout)).route(web::post().to(login::post_logout)))
    .service(only("/", Method::GET, web::get().to(account::get_home)))
    .service(routes(
        crate::oauth::device::DEVICE_PATH,
        vec![(Method::GET, web::get().to(device::get_device)), (Method::POST, web::post().to(device::post_device))],
    ))
    .service(only(device::DECIDE_PATH, Method::POST, web::post().to(device::post_decide)))
    .service(only("/device/qr", Method::GET, web::get().to(device::get_qr)))
    .service(only("/account", Method::GET, web::get().to(account::get_account)))
    .service(only("/account/consents/revoke", Method::POST, web::post().to(account::post_revoke_consent)))
    .service(routes(
        "/invitation",
        vec![
            (Method::GET, web::get().to(invitation::get_invitation)),
            (Method::POST, web::post().to(invitation::post_invitation)),
        ],
    ))
    .service(only("/account/api-keys", Method::POST, web::post().to(account::post_create_key)))
    .service(only("/account/password", Method::POST, web::post().to(account::post_password)))
    .service(routes(
        "/account/totp",
        vec![(Method::GET, web::get().to(factors::get_totp)), (Method::POST, web::post().to(factors::post_totp))],
    ))
    .service(only("/account/totp/confirm", Method::POST, web::post().to(factors::post_totp_confirm)))
    .service(only("/account/totp/remove", Method::POST, web::post().to(factors::post_totp_remove)))
    .service(only("/account/recovery-codes", Method::POST, web::post().to(factors::post_recovery_codes)))
    .service(only("/account/passkeys", Method::POST, web::post().to(factors::post_passkey)))
    .service(only("/account/passkeys/confirm", Method::POST, web::post().to(factors::post_passkey_confirm)))
    .service(routes(
        "/account/passkeys/{id}/remove",
        vec![
            (Method::GET, web::get().to(factors::get_passkey_remove)),
            (Method::POST, web::post().to(factors::post_passkey_remove)),
        ],
    ))
    .service(only("/account/api-keys/delete", Method::POST, web::post().to(account::post_delete_key)))
    .service(routes(
        crate::manage::setup::SETUP_PATH,
        vec![(Method::GET, web::get().to(setup::get_setup)), (Method::POST, web::post().to(setup::post_setup))],
    ))
    .service(only(dashboard::HOME, Method::GET, web::get().to(dashboard::overview::get_overview)))
    .service(only(dashboard::secret::PATH, Method::GET, web::get().to(dashboard::secret::get_secret)))
    .service(routes(
        dashboard::api_keys::LIST,
        vec![
            (Method::GET, web::get().to(dashboard::api_keys::get_list)),
            (Method::POST, web::post().to(dashboard::api_keys::post_create)),
        ],
    ))
    .service(routes(
        dashboard::apps::LIST,
        vec![
            (Method::GET, web::get().to(dashboard::apps::get_list)),
            (Method::POST, web::post().to(dashboard::apps::post_create)),
        ],
    ))
    .service(only("/dashboard/apps/new", Method::GET, web::get().to(dashboard::apps::get_new)))
    .service(only("/dashboard/apps/{id}", Method::GET, web::get().to(dashboard::apps::get_app)))
    .service(routes(
        "/dashboard/apps/{id}/edit",
        vec![
            (Method::GET, web::get().to(dashboard::apps::get_edit)),
            (Method::POST, web::post().to(dashboard::apps::post_edit)),
        ],
    ))
    .service(routes(
        "/dashboard/apps/{id}/rotate",
        vec![
            (Method::GET, web::get().to(dashboard::apps::get_rotate)),
            (Method::POST, web::post().to(dashboard::apps::post_rotate)),
        ],
    ))
    .service(routes(
        "/dashboard/apps/{id}/delete",
        vec![
            (Method::GET, web::get().to(dashboard::apps::get_delete)),
            (Method::POST, web::post().to(dashboard::apps::post_delete)),
        ],
    ))
    .service(routes(
        dashboard::apis::LIST,
        vec![
            (Method::GET, web::get().to(dashboard::apis::get_list)),
            (Method::POST, web::post().to(dashboard::apis::post_create)),
        ],
    ))
    .service(only("/dashboard/apis/new", Method::GET, web::get().to(dashboard::apis::get_new)))
    .service(routes(
        "/dashboard/apis/{id}/edit",
        vec![
            (Method::GET, web::get().to(dashboard::apis::get_edit)),
            (Method::POST, web::post().to(dashboard::apis::post_edit)),
        ],
    ))
    .service(routes(
        "/dashboard/apis/{id}/delete",
        vec![
            (Method::GET, web::get().to(dashboard::apis::get_delete)),
            (Method::POST, web::post().to(dashboard::apis::post_delete)),
        ],
    ))
    .service(routes(
        dashboard::teams::LIST,
        vec![
            (Method::GET, web::get().to(dashboard::teams::get_list)),
            (Method::POST, web::post().to(dashboard::teams::post_create)),
        ],
    ))
    .service(only("/dashboard/teams/{id}", Method::GET, web::get().to(dashboard::teams::get_team)))
    .service(only("/dashboard/teams/{id}/members", Method::POST, web::post().to(dashboard::teams::post_members)))
    .service(only("/dashboard/teams/{id}/rename", Method::POST, web::post().to(dashboard::teams::post_rename)))
    .service(routes(
        "/dashboard/teams/{id}/delete",
        vec![
            (Method::GET, web::get().to(dashboard::teams::get_delete)),
            (Method::POST, web::post().to(dashboard::teams::post_delete)),
        ],
    ))
    .service(only(dashboard::users::LIST, Method::GET, web::get().to(dashboard::users::get_list)))
    .service(only("/dashboard/users/sign-in-policy", Method::POST, web::post().to(dashboard::users::post_policy)))
    .service(routes(
        "/dashboard/users/invite",
        vec![
            (Method::GET, web::get().to(dashboard::users::get_invite)),
            (Method::POST, web::post().to(dashboard::users::post_invite)),
        ],
    ))
    .service(routes(
        "/dashboard/users/{id}/{change}",
        vec![
            (Method::GET, web::get().to(dashboard::users::get_change)),
            (Method::POST, web::post().to(dashboard::users::post_change)),
        ],
    ))
    .service(only(dashboard::signing_keys::LIST, Method::GET, web::get().to(dashboard::signing_keys::get_list)))
    .service(routes(
        "/dashboard/signing-keys/rotate",
        vec![
            (Method::GET, web::get().to(dashboard::signing_keys::get_rotate)),
            (Method::POST, web::post().to(dashboard::signing_keys::post_rotate)),
        ],
    ))
    .service(routes(
        "/dashboard/signing-keys/{kid}/withdraw",
        vec![
            (Method::GET, web::get().to(dashboard::signing_keys::get_withdraw)),
            (Method::POST, web::post().to(dashboard::signing_keys::post_withdraw)),
        ],
    ))
    .service(only(dashboard::audit_log::PATH, Method::GET, web::get().to(dashboard::audit_log::get_audit_log)))
    .service(only("/dashboard/api-keys/new", Method::GET, web::get().to(dashboard::api_keys::get_new)))
    .service(routes(
        "/dashboard/api-keys/{id}/rotate",
        vec![
            (Method::GET, web::get().to(dashboard::api_keys::get_rotate)),
            (Method::POST, web::post().to(dashboard::api_keys::post_rotate)),
        ],
    ))
    .service(routes(
        "/dashboard/api-keys/{id}/revoke",
        vec![
            (Method::GET, web::get().to(dashboard::api_keys::get_revoke)),
            (Method::POST, web::post().to(dashboard::api_keys::post_revoke)),
        ],
    ))
    .service(only("/static/copy.js", Method::GET, web::get().to(pages::get_copy_script)))
    .service(only("/static/passkey.js", Method::GET, web::get().to(pages::get_passkey_script)))
    .service(only("/static/style.css", Method::GET, web::get().to(pages::get_stylesheet)));
}
