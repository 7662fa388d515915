//! Whole numbers as JSON Schema counts them: `60` and `60.0` are both the integer 60 (JSON
//! Schema 2020-12 §6.3, which the OpenAPI document follows), so a client that writes every
//! number as a float is not refused for it. `60.5` is still refused.

use serde::{Deserialize, Deserializer, de};

/// For `#[serde(deserialize_with = "…")]` on an `i64`.
pub fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(whole) = number.as_i64() {
        return Ok(whole);
    }
    match number.as_f64() {
        // Exactly representable: no larger than 2^53 in magnitude.
        Some(float) if float.fract() == 0.0 && float.abs() <= 9_007_199_254_740_992.0 => Ok(float as i64),
        _ => Err(de::Error::invalid_value(de::Unexpected::Other(&number.to_string()), &"a whole number")),
    }
}

/// For `#[serde(default, deserialize_with = "…")]` on an `Option<i64>`.
pub fn optional_whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_number")] i64);
    Ok(Option::<Whole>::deserialize(deserializer)?.map(|Whole(n)| n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "optional_whole_number")]
        secs: Option<i64>,
        #[serde(default, deserialize_with = "whole_number")]
        grace: i64,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_not() {
        let body = parse(r#"{"secs": 1892.0, "grace": 0.0}"#).unwrap();
        assert_eq!((body.secs, body.grace), (Some(1892), 0));
        assert_eq!(parse(r#"{"secs": -3}"#).unwrap().secs, Some(-3));
        assert_eq!(parse(r#"{"secs": null}"#).unwrap().secs, None);
        assert_eq!(parse("{}").unwrap().secs, None);
        for bad in [r#"{"secs": 60.5}"#, r#"{"secs": 1e300}"#, r#"{"secs": "60"}"#, r#"{"grace": true}"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
