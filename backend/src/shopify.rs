//! Shopify: the platform's rules (`shop` domains, `oauth` query signatures, App Bridge
//! `session_token`s, token `cipher`), the `ShopifyClient` port (`client`) with its HTTPS adapter
//! (`admin_api`), and the install lifecycle built on them (`install`, `compliance`).
//!
//! The rule modules are pure: no IO, no async, no clock reads (callers pass `now`). They follow
//! Shopify's own libraries (`@shopify/shopify-api`, the `shopify_app` gem) where shopify.dev leaves
//! a detail open; each module says which.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub mod admin_api;
pub mod bulk;
pub mod catalogue;
pub mod cipher;
pub mod client;
pub mod compliance;
pub mod graphql;
pub mod install;
pub mod oauth;
pub mod order;
pub mod session_token;
pub mod shop;
pub mod sync;
pub mod throttle;

/// A Shopify id from a JSON payload as text: ids are integers beyond 2^53, so they are never read
/// through f64. Numbers and non-empty strings; anything else is no id.
pub fn id_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

/// The number inside a GraphQL global id of `kind` (`gid://shopify/Order/123` → `123`); `None` for
/// another kind or anything not ending in digits. Ids are compared as text, never through f64.
pub fn gid_number<'a>(gid: &'a str, kind: &str) -> Option<&'a str> {
    let rest = gid
        .strip_prefix("gid://shopify/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?;
    // A GID may carry parameters (`…/123?x=y`); the id ends there.
    let digits = rest.split_once('?').map_or(rest, |(digits, _)| digits);
    (!digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())).then_some(digits)
}

/// The Admin API version every call and webhook subscription uses (as in `shopify.app.toml`).
pub const API_VERSION: &str = "2026-10";

/// A secret such as the app's client secret: printable only on purpose, through [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret text, for signing and verifying; never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(redacted)")
    }
}

/// An HMAC-SHA256 keyed with `secret`, ready for `update`.
fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// HMAC-SHA256 of `message` under `secret`.
fn sign(message: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut mac = hmac_sha256(secret);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is the HMAC-SHA256 of `message` under any of `secrets`, each compared in
/// constant time (`verify_slice`); a tag of the wrong length never matches.
fn signed_by_any(message: &[u8], tag: &[u8], secrets: &[&[u8]]) -> bool {
    secrets.iter().any(|secret| {
        let mut mac = hmac_sha256(secret);
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_never_shows_the_value() {
        let secret = Secret::new("shpss_very_secret");
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
        assert_eq!(secret.clone().expose(), "shpss_very_secret");
    }

    #[test]
    fn a_signature_verifies_under_its_secret_only() {
        let tag = sign(b"message", b"current");
        assert!(signed_by_any(b"message", &tag, &[b"current"]));
        assert!(signed_by_any(b"message", &tag, &[b"next", b"current"]));
        assert!(!signed_by_any(b"message", &tag, &[b"other"]));
        assert!(!signed_by_any(b"message", &tag, &[]));
        assert!(!signed_by_any(b"message", &tag[..31], &[b"current"]));
        assert!(!signed_by_any(b"massage", &tag, &[b"current"]));
    }

    #[test]
    fn gids_give_their_digits_only_for_their_kind() {
        assert_eq!(
            gid_number("gid://shopify/Order/9007199254740993", "Order"),
            Some("9007199254740993")
        );
        assert_eq!(
            gid_number("gid://shopify/LineItem/12?x=1", "LineItem"),
            Some("12")
        );
        assert_eq!(gid_number("gid://shopify/LineItem/12", "Order"), None);
        assert_eq!(gid_number("gid://shopify/Order/", "Order"), None);
        assert_eq!(gid_number("gid://shopify/Order/1a", "Order"), None);
        assert_eq!(gid_number("12", "Order"), None);
    }

    #[test]
    fn shopify_app_toml_pins_our_api_version_and_subscribes_every_topic_we_handle() {
        let toml = include_str!("../../shopify.app.toml");
        assert!(toml.contains(&format!("api_version = \"{API_VERSION}\"")));
        for topic in install::LIFECYCLE_TOPICS {
            assert!(toml.contains(&format!("\"{topic}\"")), "{topic} missing");
        }
        assert!(toml.contains("embedded = true"));
        assert!(toml.contains("/auth/callback"));
    }
}
