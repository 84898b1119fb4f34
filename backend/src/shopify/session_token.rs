//! App Bridge session tokens: the short-lived HS256 JWT an embedded app receives as
//! `Authorization: Bearer …` (or `id_token` on the first document load), signed with the app's
//! client secret.
//!
//! Verification order: shape, then the header's algorithm (exactly `HS256`), then the signature
//! against each secret, and only then the claims. Time claims allow 10 s of clock skew, as
//! `@shopify/shopify-api` does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::shop::ShopDomain;
use super::{sign as hmac_sign, signed_by_any};

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 10;

/// The claims an app relies on, from a verified session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The shop named by both `iss` and `dest`.
    pub shop: ShopDomain,
    /// `sub`: the Shopify user, when the token names one.
    pub user_id: Option<String>,
    /// `sid`: the Shopify admin session, when the token names one.
    pub session_id: Option<String>,
    /// `exp`, in seconds since 1970.
    pub expires_at: i64,
    /// `jti`: the token's unique id.
    pub token_id: String,
}

/// Why a session token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    /// The token is not three base64url parts holding JSON objects, or a claim has the wrong type.
    #[error("session token is malformed: {0}")]
    Malformed(String),
    /// The header names an algorithm other than HS256, or none.
    #[error("session token algorithm {0} is not supported; only HS256 is")]
    UnsupportedAlgorithm(String),
    /// The signature does not match under any of the app's secrets.
    #[error("session token signature does not match the app's client secret")]
    BadSignature,
    /// A required claim is absent.
    #[error("session token has no {0} claim")]
    MissingClaim(&'static str),
    /// `exp` is more than the leeway in the past.
    #[error("session token expired at {expires_at} (now {now}, leeway {LEEWAY_SECONDS} s)")]
    Expired {
        /// `exp`.
        expires_at: i64,
        /// Now, in seconds since 1970.
        now: i64,
    },
    /// `nbf` is more than the leeway in the future.
    #[error(
        "session token is not valid before {not_before} (now {now}, leeway {LEEWAY_SECONDS} s)"
    )]
    NotYetValid {
        /// `nbf`.
        not_before: i64,
        /// Now, in seconds since 1970.
        now: i64,
    },
    /// `aud` is not a string equal to the app's client id.
    #[error("session token audience {0} is not this app's client id")]
    WrongAudience(String),
    /// `iss` is not `https://{shop}/admin` for a valid shop.
    #[error("session token issuer {0} is not https://{{shop}}/admin for a valid shop domain")]
    BadIssuer(String),
    /// `dest` is not `https://{shop}` for a valid shop.
    #[error("session token destination {0} is not https://{{shop}} for a valid shop domain")]
    BadDestination(String),
    /// `iss` and `dest` name different shops.
    #[error("session token issuer names {issuer} but its destination names {destination}")]
    ShopMismatch {
        /// The shop in `iss`.
        issuer: String,
        /// The shop in `dest`.
        destination: String,
    },
}

/// Verifies a session token for the app `api_key` (its client id) against each secret in turn,
/// the current one first, and returns its claims.
///
/// # Errors
/// One [`SessionTokenError`] variant per refusal: shape, algorithm, signature (checked before any
/// claim is read), `exp`/`nbf` outside the 10 s leeway, `aud`, `iss`, `dest`, and missing claims.
pub fn verify(
    token: &str,
    api_key: &str,
    secrets: &[&[u8]],
    now: i64,
) -> Result<SessionToken, SessionTokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(SessionTokenError::Malformed(format!(
            "expected 3 dot-separated parts, found {}",
            parts.len()
        )));
    };
    let header = decode_object(header, "header")?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => {
            return Err(SessionTokenError::UnsupportedAlgorithm(format!("{alg:?}")));
        }
        Some(other) => return Err(SessionTokenError::UnsupportedAlgorithm(other.to_string())),
        None => return Err(SessionTokenError::UnsupportedAlgorithm("(none)".to_owned())),
    }
    let tag = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SessionTokenError::BadSignature)?;
    let signing_input = &token[..token.len() - signature.len() - 1];
    if !signed_by_any(signing_input.as_bytes(), &tag, secrets) {
        return Err(SessionTokenError::BadSignature);
    }
    let claims = decode_object(payload, "payload")?;
    check_claims(&claims, api_key, now)
}

/// Signs `claims` as an HS256 session token under `secret`, as Shopify does (for tests and the
/// Admin simulator).
pub fn sign(claims: &Value, secret: &[u8]) -> String {
    sign_with_header(
        &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        claims,
        secret,
    )
}

/// Signs `claims` under `secret` with any header, so tests can forge the header.
fn sign_with_header(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(hmac_sign(signing_input.as_bytes(), secret));
    format!("{signing_input}.{signature}")
}

/// Decodes one base64url part into a JSON object.
fn decode_object(part: &str, name: &str) -> Result<Map<String, Value>, SessionTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| SessionTokenError::Malformed(format!("{name} is not unpadded base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(SessionTokenError::Malformed(format!(
            "{name} is not a JSON object"
        ))),
    }
}

/// Checks the claims of a token whose signature already verified.
fn check_claims(
    claims: &Map<String, Value>,
    api_key: &str,
    now: i64,
) -> Result<SessionToken, SessionTokenError> {
    let expires_at = whole_seconds(claims, "exp")?;
    if expires_at <= now.saturating_sub(LEEWAY_SECONDS) {
        return Err(SessionTokenError::Expired { expires_at, now });
    }
    let not_before = whole_seconds(claims, "nbf")?;
    if not_before > now.saturating_add(LEEWAY_SECONDS) {
        return Err(SessionTokenError::NotYetValid { not_before, now });
    }
    match claims.get("aud") {
        Some(Value::String(audience)) if audience == api_key => {}
        Some(other) => return Err(SessionTokenError::WrongAudience(other.to_string())),
        None => return Err(SessionTokenError::MissingClaim("aud")),
    }
    let issuer = required_string(claims, "iss")?;
    let issuer_shop = issuer
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix("/admin"))
        .and_then(canonical_shop)
        .ok_or_else(|| SessionTokenError::BadIssuer(format!("{issuer:?}")))?;
    let destination = required_string(claims, "dest")?;
    let destination_shop = destination
        .strip_prefix("https://")
        .and_then(canonical_shop)
        .ok_or_else(|| SessionTokenError::BadDestination(format!("{destination:?}")))?;
    if issuer_shop != destination_shop {
        return Err(SessionTokenError::ShopMismatch {
            issuer: issuer_shop.to_string(),
            destination: destination_shop.to_string(),
        });
    }
    Ok(SessionToken {
        shop: destination_shop,
        user_id: optional_string(claims, "sub")?,
        session_id: optional_string(claims, "sid")?,
        expires_at,
        token_id: required_string(claims, "jti")?.to_owned(),
    })
}

/// The shop in `text` when `text` is exactly a shop domain in canonical (lower-case) form: a
/// signed claim is compared as written, not normalised.
fn canonical_shop(text: &str) -> Option<ShopDomain> {
    ShopDomain::parse(text)
        .ok()
        .filter(|shop| shop.as_str() == text)
}

/// A required NumericDate claim, as whole seconds.
fn whole_seconds(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<i64, SessionTokenError> {
    let value = claims
        .get(name)
        .ok_or(SessionTokenError::MissingClaim(name))?;
    value.as_i64().ok_or_else(|| {
        SessionTokenError::Malformed(format!("{name} is {value}, not whole seconds since 1970"))
    })
}

/// A required string claim.
fn required_string<'claims>(
    claims: &'claims Map<String, Value>,
    name: &'static str,
) -> Result<&'claims str, SessionTokenError> {
    optional_str(claims, name)?.ok_or(SessionTokenError::MissingClaim(name))
}

/// An optional string claim, owned.
fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, SessionTokenError> {
    Ok(optional_str(claims, name)?.map(str::to_owned))
}

/// An optional string claim: absent is `None`, any other type is malformed.
fn optional_str<'claims>(
    claims: &'claims Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'claims str>, SessionTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(SessionTokenError::Malformed(format!(
            "{name} is {other}, not a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"current-secret";
    const PREVIOUS: &[u8] = b"previous-secret";
    const API_KEY: &str = "client-id-123";
    const NOW: i64 = 1_700_000_000;

    fn claims() -> Value {
        json!({
            "iss": "https://acme.myshopify.com/admin",
            "dest": "https://acme.myshopify.com",
            "aud": API_KEY,
            "sub": "42",
            "exp": NOW + 60,
            "nbf": NOW - 5,
            "iat": NOW - 5,
            "jti": "f8912129-1af6-4cad-9ca3-76b0f7621087",
            "sid": "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
        })
    }

    fn with(changes: Value) -> Value {
        let mut claims = claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    #[track_caller]
    fn check(token: &str, expected: &str) {
        let got = match verify(token, API_KEY, &[SECRET, PREVIOUS], NOW) {
            Ok(session) => format!(
                "ok {} sub={:?} sid={} exp={} jti={}",
                session.shop,
                session.user_id,
                session.session_id.is_some(),
                session.expires_at,
                session.token_id
            ),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[track_caller]
    fn check_claims(changes: Value, expected: &str) {
        check(&sign(&with(changes), SECRET), expected);
    }

    const OK: &str = "ok acme.myshopify.com sub=Some(\"42\") sid=true exp=1700000060 jti=f8912129-1af6-4cad-9ca3-76b0f7621087";

    #[test]
    fn a_valid_token_gives_its_claims() {
        check_claims(json!({}), OK);
    }

    #[test]
    fn sub_and_sid_are_optional() {
        check_claims(
            json!({"sub": null, "sid": null}),
            "ok acme.myshopify.com sub=None sid=false exp=1700000060 jti=f8912129-1af6-4cad-9ca3-76b0f7621087",
        );
        check_claims(
            json!({"sub": 42}),
            "session token is malformed: sub is 42, not a string",
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_during_rotation() {
        check(&sign(&claims(), PREVIOUS), OK);
        assert_eq!(
            verify(&sign(&claims(), PREVIOUS), API_KEY, &[SECRET], NOW),
            Err(SessionTokenError::BadSignature)
        );
    }

    #[test]
    fn expiry_allows_ten_seconds_of_skew_and_no_more() {
        check_claims(
            json!({"exp": NOW - 9}),
            "ok acme.myshopify.com sub=Some(\"42\") sid=true exp=1699999991 jti=f8912129-1af6-4cad-9ca3-76b0f7621087",
        );
        check_claims(
            json!({"exp": NOW - 10}),
            "session token expired at 1699999990 (now 1700000000, leeway 10 s)",
        );
        check_claims(
            json!({"exp": NOW - 3600}),
            "session token expired at 1699996400 (now 1700000000, leeway 10 s)",
        );
        check_claims(json!({"exp": null}), "session token has no exp claim");
        check_claims(
            json!({"exp": "1700000060"}),
            "session token is malformed: exp is \"1700000060\", not whole seconds since 1970",
        );
    }

    #[test]
    fn not_before_allows_ten_seconds_of_skew_and_no_more() {
        check_claims(json!({"nbf": NOW + 10}), OK);
        check_claims(
            json!({"nbf": NOW + 11}),
            "session token is not valid before 1700000011 (now 1700000000, leeway 10 s)",
        );
        check_claims(json!({"nbf": null}), "session token has no nbf claim");
    }

    #[test]
    fn the_audience_must_be_this_app_as_a_string() {
        check_claims(
            json!({"aud": "another-app"}),
            "session token audience \"another-app\" is not this app's client id",
        );
        check_claims(
            json!({"aud": [API_KEY]}),
            "session token audience [\"client-id-123\"] is not this app's client id",
        );
        check_claims(
            json!({"aud": "CLIENT-ID-123"}),
            "session token audience \"CLIENT-ID-123\" is not this app's client id",
        );
        check_claims(json!({"aud": null}), "session token has no aud claim");
    }

    #[test]
    fn issuer_and_destination_must_name_the_same_valid_shop() {
        check_claims(
            json!({"dest": "https://other.myshopify.com"}),
            "session token issuer names acme.myshopify.com but its destination names other.myshopify.com",
        );
        check_claims(
            json!({"dest": "https://evil.com"}),
            "session token destination \"https://evil.com\" is not https://{shop} for a valid shop domain",
        );
        check_claims(
            json!({"dest": "acme.myshopify.com"}),
            "session token destination \"acme.myshopify.com\" is not https://{shop} for a valid shop domain",
        );
        check_claims(
            json!({"dest": "https://ACME.myshopify.com"}),
            "session token destination \"https://ACME.myshopify.com\" is not https://{shop} for a valid shop domain",
        );
        check_claims(
            json!({"dest": "https://acme.myshopify.com/"}),
            "session token destination \"https://acme.myshopify.com/\" is not https://{shop} for a valid shop domain",
        );
        check_claims(
            json!({"iss": "https://acme.myshopify.com"}),
            "session token issuer \"https://acme.myshopify.com\" is not https://{shop}/admin for a valid shop domain",
        );
        check_claims(
            json!({"iss": "https://evil.com/admin"}),
            "session token issuer \"https://evil.com/admin\" is not https://{shop}/admin for a valid shop domain",
        );
        check_claims(json!({"iss": null}), "session token has no iss claim");
        check_claims(json!({"dest": null}), "session token has no dest claim");
        check_claims(
            json!({"dest": 7}),
            "session token is malformed: dest is 7, not a string",
        );
    }

    #[test]
    fn the_token_id_is_required() {
        check_claims(json!({"jti": null}), "session token has no jti claim");
    }

    #[test]
    fn a_wrong_signature_is_refused_before_any_claim_is_read() {
        check(
            &sign(&claims(), b"someone-else"),
            "session token signature does not match the app's client secret",
        );
        // An expired token under the wrong key still reports the signature, not the expiry.
        check(
            &sign(&with(json!({"exp": 1})), b"someone-else"),
            "session token signature does not match the app's client secret",
        );
        let token = sign(&claims(), SECRET);
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let mut flipped = signature.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        check(
            &format!("{signing_input}.{}", String::from_utf8(flipped).unwrap()),
            "session token signature does not match the app's client secret",
        );
        check(
            &format!("{signing_input}.{signature}="),
            "session token signature does not match the app's client secret",
        );
        let forged_payload = URL_SAFE_NO_PAD.encode(with(json!({"sub": "1"})).to_string());
        let header = signing_input.split('.').next().unwrap();
        check(
            &format!("{header}.{forged_payload}.{signature}"),
            "session token signature does not match the app's client secret",
        );
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused() {
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        check(
            &unsigned,
            "session token algorithm \"none\" is not supported; only HS256 is",
        );
        for (header, expected) in [
            (json!({"alg": "HS512"}), "\"HS512\""),
            (json!({"alg": "RS256"}), "\"RS256\""),
            (json!({"alg": "hs256"}), "\"hs256\""),
            (json!({"alg": ["HS256"]}), "[\"HS256\"]"),
            (json!({"typ": "JWT"}), "(none)"),
        ] {
            check(
                &sign_with_header(&header, &claims(), SECRET),
                &format!("session token algorithm {expected} is not supported; only HS256 is"),
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let token = sign(&claims(), SECRET);
        let parts: Vec<&str> = token.split('.').collect();
        check(
            &format!("{}.{}", parts[0], parts[1]),
            "session token is malformed: expected 3 dot-separated parts, found 2",
        );
        check(
            &format!("{token}.extra"),
            "session token is malformed: expected 3 dot-separated parts, found 4",
        );
        check(
            "",
            "session token is malformed: expected 3 dot-separated parts, found 1",
        );
        check(
            &format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            "session token is malformed: header is not unpadded base64url",
        );
        check(
            &format!("not+base64.{}.{}", parts[1], parts[2]),
            "session token is malformed: header is not unpadded base64url",
        );
        check(
            &format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("not json"),
                parts[1],
                parts[2]
            ),
            "session token is malformed: header is not a JSON object",
        );
        let text_payload = sign_with_header(&json!({"alg": "HS256"}), &json!("text"), SECRET);
        check(
            &text_payload,
            "session token is malformed: payload is not a JSON object",
        );
        let signing_input = format!("{}.{}", parts[0], URL_SAFE_NO_PAD.encode("{not json"));
        let signature = URL_SAFE_NO_PAD.encode(hmac_sign(signing_input.as_bytes(), SECRET));
        check(
            &format!("{signing_input}.{signature}"),
            "session token is malformed: payload is not a JSON object",
        );
    }
}
