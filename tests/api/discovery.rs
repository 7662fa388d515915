//! Metadata (RFC 8414, OpenID Connect Discovery) and the JWKS.

use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

async fn both_metadata_documents_list_exactly_the_implemented_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;

    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let metadata: Value = response.json().await.unwrap();
        let issuer = app.issuer();
        assert_eq!(metadata["issuer"], issuer);
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth2/token"));
        assert_eq!(metadata["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
        assert_eq!(metadata["introspection_endpoint"], format!("{issuer}/oauth2/introspect"));
        assert_eq!(metadata["revocation_endpoint"], format!("{issuer}/oauth2/revoke"));
        assert_eq!(metadata["authorization_endpoint"], format!("{issuer}/oauth2/authorize"));
        assert_eq!(metadata["userinfo_endpoint"], format!("{issuer}/oauth2/userinfo"));
        assert_eq!(metadata["end_session_endpoint"], format!("{issuer}/logout"));
        assert_eq!(metadata["device_authorization_endpoint"], format!("{issuer}/oauth2/device_authorization"));
        assert_eq!(
            metadata["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:device_code"
            ])
        );
        assert_eq!(metadata["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
        assert_eq!(metadata["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
        assert_eq!(
            metadata["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "client_secret_jwt",
                "private_key_jwt",
                "none"
            ])
        );
        assert_eq!(
            metadata["introspection_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["HS256", "RS256", "ES256", "EdDSA"])
        );
        // Every advertised endpoint answers (POST endpoints refuse GET with 404, not 500).
        for endpoint in
            ["token_endpoint", "introspection_endpoint", "revocation_endpoint", "device_authorization_endpoint"]
        {
            let url = metadata[endpoint].as_str().unwrap();
            let response = app.http.post(url).send().await.unwrap();
            assert!(response.status().is_client_error(), "{endpoint}: {}", response.status());
        }
    }
}

async fn the_jwks_publishes_public_rsa_keys_only(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(key["n"].as_str().unwrap().len(), 342);
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(key.get(private).is_none(), "private member {private} published");
    }
}

crate::on_both_backends!(
    both_metadata_documents_list_exactly_the_implemented_endpoints,
    the_jwks_publishes_public_rsa_keys_only,
);
