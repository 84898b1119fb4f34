//! Signatures and random identifiers, each as Shopify documents it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Characters left as they are when encoding a query value: alphanumerics and `*-._`, as
/// `URLSearchParams` does; a space becomes `%20` (Shopify's 15.x libraries), not `+`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// HMAC-SHA256 of `message` keyed with `secret`.
pub fn hmac_sha256(secret: &str, message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time check that `tag` is the HMAC-SHA256 of `message` under `secret`.
pub fn verify_hmac_sha256(secret: &str, message: &[u8], tag: &[u8]) -> bool {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

/// `X-Shopify-Hmac-Sha256`: base64 (standard alphabet, padded) of the HMAC of the raw body.
pub fn webhook_hmac(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(secret, body))
}

/// Percent-encodes one query value the way Shopify signs it.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Builds `name=value&…` from pairs in the given order, values encoded as Shopify signs them.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode_query_value(name), encode_query_value(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `hmac` query parameter: parameters other than `hmac` and `signature`, sorted by name, joined as
/// `name=value` with `&`, HMAC-SHA256 with the client secret, lower-case hex.
pub fn query_hmac(secret: &str, pairs: &[(&str, String)]) -> String {
    let mut signed: Vec<(&str, String)> = pairs
        .iter()
        .filter(|(name, _)| *name != "hmac" && *name != "signature")
        .cloned()
        .collect();
    signed.sort_by(|left, right| left.0.cmp(right.0));
    hex::encode(hmac_sha256(secret, query_string(&signed).as_bytes()))
}

/// `length` random bytes as lower-case hex.
pub fn random_hex(length: usize) -> String {
    let mut bytes = vec![0_u8; length];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A random version-4 UUID in its usual text form.
pub fn uuid_v4() -> String {
    let mut bytes = [0_u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let text = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &text[..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..]
    )
}

/// base64url without padding, as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The `host` parameter: base64 of `admin.shopify.com/store/{handle}` (padding dropped, as Shopify sends it).
pub fn host_param(handle: &str) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(format!("admin.shopify.com/store/{handle}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_encode_space_as_percent_twenty_and_keep_unreserved_marks() {
        assert_eq!(
            encode_query_value("a b*c-d.e_f~g/h"),
            "a%20b*c-d.e_f%7Eg%2Fh"
        );
    }

    #[test]
    fn query_hmac_ignores_hmac_and_signature_and_sorts_names() {
        let unsorted = [
            ("shop", "a.myshopify.com".to_owned()),
            ("code", "x".to_owned()),
            ("hmac", "zz".to_owned()),
        ];
        let sorted = [
            ("code", "x".to_owned()),
            ("shop", "a.myshopify.com".to_owned()),
        ];
        assert_eq!(query_hmac("s", &unsorted), query_hmac("s", &sorted));
        assert_eq!(
            query_hmac("s", &sorted),
            hex::encode(hmac_sha256("s", b"code=x&shop=a.myshopify.com"))
        );
    }

    #[test]
    fn uuids_have_version_four_and_the_rfc_variant() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}
