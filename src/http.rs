//! Route helpers every HTTP family uses (the "shared" floor): resources that answer 405
//! with `Allow` for other methods, HEAD wherever GET is served, and the JSON 404 for paths
//! nothing serves.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, Resource, Route, web};

use crate::error::json_error;

/// What a path nothing serves answers.
pub async fn not_found() -> HttpResponse {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint".into())
}

/// A resource served by one method; any other method gets 405 with `Allow`, in JSON.
pub fn only(path: &str, method: Method, route: Route) -> Resource {
    routes(path, vec![(method, route)])
}

/// HEAD is answered wherever GET is (RFC 9110 §9.3.2): the request is routed as a GET, and
/// actix's HTTP/1 codec, which remembers that the request was HEAD, sends the GET's status
/// and headers (its `Content-Length` included) without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// A resource answering these methods; any other gets 405 with `Allow` naming them (and
/// HEAD, wherever GET is served).
pub fn routes(path: &str, routes: Vec<(Method, Route)>) -> Resource {
    let mut allowed: Vec<&str> = routes.iter().map(|(method, _)| method.as_str()).collect();
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    let allow = allowed.join(", ");
    let mut resource = web::resource(path);
    for (_, route) in routes {
        resource = resource.route(route);
    }
    resource.default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this endpoint accepts {allow} only"),
            );
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(ALLOW, value);
            }
            response
        }
    }))
}
