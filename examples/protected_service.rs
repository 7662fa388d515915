//! A small microservice that accepts Latchkey's access tokens without calling Latchkey:
//! `GET /orders` needs the `read` scope, `POST /orders` needs `write`, and `DELETE
//! /orders/{id}` needs `write` and a sign-in with two factors (RFC 9470 step-up: a
//! password-only token gets 401 `insufficient_user_authentication` with the `acr_values` to
//! ask for).
//!
//! ```sh
//! LATCHKEY_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=https://orders.example.com \
//!   cargo run --example protected_service --features verify,actix
//! ```
//!
//! See docs/microservices.md for the whole walk from a fresh Latchkey to a refused token.

use actix_web::{App, HttpResponse, HttpServer, web};
use latchkey::verify::actix::{Bearer, BearerError, ProtectedResource};
use latchkey::verify::{ACR_MULTI_FACTOR, Verifier};

async fn list_orders(token: Bearer) -> Result<HttpResponse, BearerError> {
    token.require_scope("read")?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "orders": [], "caller": token.subject })))
}

async fn create_order(token: Bearer) -> Result<HttpResponse, BearerError> {
    token.require_scope("write")?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "created_by": token.subject })))
}

/// Destroying something asks more of the sign-in than reading it.
async fn delete_order(token: Bearer, id: web::Path<String>) -> Result<HttpResponse, BearerError> {
    token.require_scope("write")?;
    token.require_acr(&[ACR_MULTI_FACTOR])?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": id.into_inner(), "by": token.subject })))
}

/// The service's routes, for `App::configure`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::get().to(list_orders))
        .route("/orders", web::post().to(create_order))
        .route("/orders/{id}", web::delete().to(delete_order));
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer = setting("LATCHKEY_ISSUER", "http://127.0.0.1:8080");
    let audience = setting("API_AUDIENCE", "https://orders.example.com");
    let bind = setting("BIND", "127.0.0.1:8090");
    // Fetches the issuer's metadata and keys once; later keys arrive on their own.
    let verifier = Verifier::discover(&issuer, &audience).await.map_err(std::io::Error::other)?;
    let resource = ProtectedResource::new(verifier, &audience, &["read", "write"]);
    println!("orders service on http://{bind}, trusting {issuer} for {audience}");
    HttpServer::new(move || App::new().configure(|cfg| resource.configure(cfg)).configure(routes))
        .bind(bind)?
        .run()
        .await
}
