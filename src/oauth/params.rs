//! Request parameters of the token, introspection and revocation endpoints: an RFC 6749
//! form body or, as the product's docs show, the same fields as a JSON object.

use actix_web::web::{Bytes, Payload};
use actix_web::{HttpMessage, HttpRequest};

use super::error::OAuthError;

/// Far above any legitimate request; bounds what an anonymous caller can make us buffer.
const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Default)]
pub struct OAuthParams {
    values: Vec<(String, String)>,
}

// Values include secrets (client_secret, tokens): never print them.
impl std::fmt::Debug for OAuthParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.iter().map(|(name, _)| name)).finish()
    }
}

impl OAuthParams {
    pub async fn from_request(req: &HttpRequest, payload: Payload) -> Result<Self, OAuthError> {
        let body = match payload.to_bytes_limited(MAX_BODY_BYTES).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return Err(OAuthError::invalid_request("the request body could not be read")),
            Err(_) => return Err(OAuthError::invalid_request("the request body is too large")),
        };
        let content_type = req.mime_type().map_err(|_| OAuthError::invalid_request("malformed Content-Type"))?;
        Self::parse(content_type.as_ref().map(|m| m.essence_str()), &body)
    }

    pub fn parse(content_type: Option<&str>, body: &Bytes) -> Result<Self, OAuthError> {
        match content_type {
            Some("application/x-www-form-urlencoded") => Self::from_form(body),
            Some("application/json") => Self::from_json(body),
            None if body.is_empty() => Ok(Self::default()),
            _ => Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded or application/json",
            )),
        }
    }

    /// The parameters of a URL query string.
    pub fn from_query(query: &str) -> Result<Self, OAuthError> {
        Self::from_form(query.as_bytes())
    }

    /// Every parameter as received, in order.
    /// These parameters without the fields `names` (a page's own, posted beside them).
    pub fn without(mut self, names: &[&str]) -> Self {
        self.values.retain(|(name, _)| !names.contains(&name.as_str()));
        self
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn from_form(body: &[u8]) -> Result<Self, OAuthError> {
        let values: Vec<(String, String)> = serde_html_form::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the form body is not valid application/x-www-form-urlencoded"))?;
        Ok(Self { values })
    }

    fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        use serde_json::Value;
        let object: serde_json::Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| OAuthError::invalid_request("the JSON body must be an object"))?;
        let mut values = Vec::with_capacity(object.len());
        for (name, value) in object {
            match value {
                Value::String(s) => values.push((name, s)),
                Value::Null => {}
                // RFC 8707 allows several `resource` values; a JSON array is their spelling.
                Value::Array(items) => {
                    for item in items {
                        let Value::String(s) = item else {
                            return Err(OAuthError::invalid_request(format!("`{name}` must hold strings")));
                        };
                        values.push((name.clone(), s));
                    }
                }
                _ => return Err(OAuthError::invalid_request(format!("`{name}` must be a string"))),
            }
        }
        Ok(Self { values })
    }

    /// A single-valued parameter. RFC 6749 §3.1: empty means absent, and a parameter
    /// must not be repeated.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = self.values.iter().filter(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(OAuthError::invalid_request(format!("`{name}` must not be repeated")));
        }
        Ok(first)
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
    }

    /// A parameter given more than once, if any: the first repetition in the request's order
    /// (RFC 6749 §3.1 forbids any).
    pub fn repeated(&self) -> Option<&str> {
        // A set, not pairwise comparison: a 64 KiB body can hold thousands of parameters.
        let mut seen = std::collections::HashSet::with_capacity(self.values.len());
        self.values
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .find(|(name, _)| !seen.insert(name.as_str()))
            .map(|(name, _)| name.as_str())
    }

    /// Every value of a parameter that may repeat (RFC 8707 `resource`).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values.iter().filter(move |(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &'static str) -> Result<OAuthParams, OAuthError> {
        OAuthParams::parse(Some("application/x-www-form-urlencoded"), &Bytes::from_static(body.as_bytes()))
    }

    fn json(body: &'static str) -> Result<OAuthParams, OAuthError> {
        OAuthParams::parse(Some("application/json"), &Bytes::from_static(body.as_bytes()))
    }

    #[test]
    fn form_and_json_bodies_yield_the_same_parameters() {
        let a = form("grant_type=client_credentials&scope=read+write").unwrap();
        let b = json(r#"{"grant_type":"client_credentials","scope":"read write"}"#).unwrap();
        for params in [a, b] {
            assert_eq!(params.get("grant_type").unwrap(), Some("client_credentials"));
            assert_eq!(params.get("scope").unwrap(), Some("read write"));
        }
    }

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_are_absent() {
        let params = form("scope=read&scope=write&audience=").unwrap();
        assert!(params.get("scope").is_err());
        assert_eq!(params.get("audience").unwrap(), None);
        assert!(params.required("audience").is_err());
    }

    #[test]
    fn the_first_repetition_is_named() {
        assert_eq!(form("a=1&b=2&b=3&a=4").unwrap().repeated(), Some("b"));
        assert_eq!(form("a=1&b=&b=3").unwrap().repeated(), None, "an empty value counts as absent");
        assert_eq!(form("a=1&b=2").unwrap().repeated(), None);
    }

    #[test]
    fn resource_may_repeat() {
        let params = json(r#"{"resource":["https://a.example","https://b.example"]}"#).unwrap();
        assert_eq!(params.all("resource").count(), 2);
    }

    #[test]
    fn malformed_bodies_are_invalid_requests() {
        assert!(json("[1,2]").is_err());
        assert!(json(r#"{"grant_type": 5}"#).is_err());
        assert!(json("{not json").is_err());
        assert!(OAuthParams::parse(Some("text/plain"), &Bytes::from_static(b"x")).is_err());
        assert!(OAuthParams::parse(None, &Bytes::new()).is_ok());
    }

    #[test]
    fn debug_output_shows_names_not_values() {
        let params = form("client_secret=hunter2").unwrap();
        assert!(!format!("{params:?}").contains("hunter2"));
    }
}

/// Token, introspection and revocation bodies come from anyone who can reach the server.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        let name = prop_oneof![
            Just("grant_type".to_owned()),
            Just("scope".to_owned()),
            Just("resource".to_owned()),
            "[a-z_]{1,8}"
        ];
        prop::collection::vec((name, any::<String>()), 0..6)
    }

    proptest! {
        /// Any bytes under any content type give parameters or an invalid_request, never a
        /// panic.
        #[test]
        fn any_body_is_parsed_or_refused(
            content_type in prop::option::of(prop_oneof![
                Just("application/x-www-form-urlencoded"),
                Just("application/json"),
                Just("text/plain"),
                Just("multipart/form-data"),
            ]),
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..128),
                "[{}\\[\\]\":,a-z0-9 =&%+]{0,64}".prop_map(String::into_bytes),
            ],
        ) {
            if let Err(error) = OAuthParams::parse(content_type, &Bytes::from(body)) {
                prop_assert_eq!(error.error, crate::oauth::error::OAuthErrorCode::InvalidRequest);
            }
        }

        /// What a client form-encodes is what the endpoint reads, byte for byte, secrets with
        /// `&`, `=`, `+` and non-ASCII included.
        #[test]
        fn form_bodies_round_trip(pairs in pairs()) {
            let body = serde_html_form::to_string(&pairs).unwrap();
            let params = OAuthParams::parse(Some("application/x-www-form-urlencoded"), &Bytes::from(body)).unwrap();
            let read: Vec<(&str, &str)> = params.pairs().collect();
            let written: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(read, written);
        }

        /// The same fields as a JSON object read the same as the form, and a parameter is
        /// single-valued exactly when it is not repeated.
        #[test]
        fn json_bodies_read_like_forms(pairs in pairs()) {
            let mut object = serde_json::Map::new();
            for (name, value) in &pairs {
                object.insert(name.clone(), serde_json::Value::String(value.clone()));
            }
            let body = serde_json::to_vec(&object).unwrap();
            let params = OAuthParams::parse(Some("application/json"), &Bytes::from(body)).unwrap();
            for (name, value) in &object {
                let expected = value.as_str().filter(|v| !v.is_empty());
                prop_assert_eq!(params.get(name).unwrap(), expected);
            }

            let form = serde_html_form::to_string(&pairs).unwrap();
            let params = OAuthParams::parse(Some("application/x-www-form-urlencoded"), &Bytes::from(form)).unwrap();
            for (name, _) in &pairs {
                let given = pairs.iter().filter(|(n, v)| n == name && !v.is_empty()).count();
                prop_assert_eq!(params.get(name).is_err(), given > 1, "{}", name);
            }
        }
    }
}
