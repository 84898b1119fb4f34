//! App Bridge session tokens (ID tokens): HS256 JWTs signed with the client secret.
//!
//! Follows <https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens>.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::crypto::{
    base64url, base64url_decode, hmac_sha256, random_hex, uuid_v4, verify_hmac_sha256,
};

/// Why a session token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    /// Not three base64url parts of JSON.
    #[error("session token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not `HS256`.
    #[error("session token algorithm {0:?} is not HS256")]
    Algorithm(String),
    /// No accepted secret produced the signature.
    #[error("session token signature does not verify")]
    Signature,
    /// A required claim is absent or of the wrong type.
    #[error("session token claim {0} is missing or malformed")]
    Claim(&'static str),
    /// `exp` has passed.
    #[error("session token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("session token is not valid yet")]
    NotYetValid,
    /// `aud` is not the app's client id.
    #[error("session token audience is another app")]
    Audience,
    /// `dest` (or `iss`) names another shop.
    #[error("session token was issued for another shop")]
    Destination,
}

/// Leeway on `exp` and `nbf`, as Shopify's libraries allow for clock skew.
const LEEWAY_SECONDS: i64 = 10;

/// The claims App Bridge puts in a session token for `shop` and `user_id`, living 60 seconds from `now`.
pub fn standard_claims(
    api_key: &str,
    shop: &str,
    user_id: u64,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let issued_at = now.timestamp();
    let claims = json!({
        "iss": format!("https://{shop}/admin"),
        "dest": format!("https://{shop}"),
        "aud": api_key,
        "sub": user_id.to_string(),
        "exp": issued_at + 60,
        "nbf": issued_at,
        "iat": issued_at,
        "jti": uuid_v4(),
        "sid": random_hex(32),
        "sig": random_hex(32),
    });
    match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Signs `claims` as an HS256 JWT with `secret`.
pub fn sign(secret: &str, claims: &Map<String, Value>) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = base64url(Value::Object(claims.clone()).to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = base64url(&hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// Verifies a session token for `shop` against any of `secrets`, returning its claims.
///
/// # Errors
/// [`SessionTokenError`] naming the first check that failed.
pub fn verify(
    token: &str,
    secrets: &[&str],
    api_key: &str,
    shop: &str,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, SessionTokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionTokenError::Malformed);
    };
    let header: Value = decode_json(header)?;
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if algorithm != "HS256" {
        return Err(SessionTokenError::Algorithm(algorithm.to_owned()));
    }
    let signature = base64url_decode(signature).ok_or(SessionTokenError::Malformed)?;
    let signing_input = format!(
        "{}.{}",
        token.split('.').next().unwrap_or_default(),
        token.split('.').nth(1).unwrap_or_default()
    );
    if !secrets
        .iter()
        .any(|secret| verify_hmac_sha256(secret, signing_input.as_bytes(), &signature))
    {
        return Err(SessionTokenError::Signature);
    }
    let Value::Object(claims) = decode_json(payload)? else {
        return Err(SessionTokenError::Malformed);
    };
    let now = now.timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(SessionTokenError::Claim("exp"))?;
    if exp + LEEWAY_SECONDS <= now {
        return Err(SessionTokenError::Expired);
    }
    let nbf = claims
        .get("nbf")
        .and_then(Value::as_i64)
        .ok_or(SessionTokenError::Claim("nbf"))?;
    if nbf > now + LEEWAY_SECONDS {
        return Err(SessionTokenError::NotYetValid);
    }
    if claims.get("aud").and_then(Value::as_str) != Some(api_key) {
        return Err(SessionTokenError::Audience);
    }
    let dest = claims
        .get("dest")
        .and_then(Value::as_str)
        .ok_or(SessionTokenError::Claim("dest"))?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(SessionTokenError::Claim("iss"))?;
    if dest != format!("https://{shop}") || iss != format!("https://{shop}/admin") {
        return Err(SessionTokenError::Destination);
    }
    if claims.get("sub").and_then(Value::as_str).is_none() {
        return Err(SessionTokenError::Claim("sub"));
    }
    Ok(claims)
}

fn decode_json(part: &str) -> Result<Value, SessionTokenError> {
    let bytes = base64url_decode(part).ok_or(SessionTokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| SessionTokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = "acme.myshopify.com";

    #[track_caller]
    fn check(edit: impl FnOnce(&mut Map<String, Value>), secret: &str, expected: &str) {
        let now = Utc::now();
        let mut claims = standard_claims("key", SHOP, 7, now);
        edit(&mut claims);
        let token = sign(secret, &claims);
        let got = match verify(&token, &["secret"], "key", SHOP, now) {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn a_fresh_token_verifies() {
        check(|_| {}, "secret", "ok");
    }

    #[test]
    fn another_secret_does_not_verify() {
        check(|_| {}, "other", "session token signature does not verify");
    }

    #[test]
    fn expiry_beyond_the_leeway_is_refused() {
        check(
            |claims| {
                claims.insert("exp".into(), json!(Utc::now().timestamp() - 11));
            },
            "secret",
            "session token expired",
        );
    }

    #[test]
    fn expiry_within_the_leeway_is_accepted() {
        check(
            |claims| {
                claims.insert("exp".into(), json!(Utc::now().timestamp() - 5));
            },
            "secret",
            "ok",
        );
    }

    #[test]
    fn another_audience_is_refused() {
        check(
            |claims| {
                claims.insert("aud".into(), json!("other"));
            },
            "secret",
            "session token audience is another app",
        );
    }

    #[test]
    fn another_shop_is_refused() {
        check(
            |claims| {
                claims.insert("dest".into(), json!("https://evil.myshopify.com"));
            },
            "secret",
            "session token was issued for another shop",
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let claims = standard_claims("key", SHOP, 7, Utc::now());
        let token = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none"}"#),
            base64url(Value::Object(claims).to_string().as_bytes())
        );
        let error = verify(&token, &["secret"], "key", SHOP, Utc::now()).unwrap_err();
        assert_eq!(error, SessionTokenError::Algorithm("none".into()));
    }
}
