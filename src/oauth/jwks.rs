//! The JSON Web Key Set (RFC 7517 §5) at `jwks_uri`: every key that signs or still verifies.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn get_jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        // Short enough that a rotation reaches verifiers soon; they refetch on an unknown kid anyway.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")))
        .body(state.keys.current().jwks_json())
}
