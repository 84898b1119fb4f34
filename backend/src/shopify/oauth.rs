//! The OAuth query signature Shopify puts on install links and redirects, the install nonce, and
//! the signed cookie that carries the nonce to the callback.
//!
//! The signed message is built as `@shopify/shopify-api` 15 builds it: drop `hmac` and `signature`,
//! sort by name, join `name=value` with `&`, names and values serialised as
//! `application/x-www-form-urlencoded` (`URLSearchParams`: only ASCII letters, digits and `*-._`
//! stay as they are, every other UTF-8 byte becomes `%XX` in upper-case hex) and then `+` for space
//! replaced by `%20`. The signature is the lower-case hex HMAC-SHA256 of that message.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rand::RngCore;

use super::{sign, signed_by_any};

/// Largest distance, in seconds and either way, between a query's `timestamp` and now.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 90;

/// Bytes `URLSearchParams` percent-encodes: everything but ASCII letters, digits and `*-._`.
/// (It writes space as `+`, which Shopify's library then rewrites to `%20`: the same bytes as
/// encoding space directly.)
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// Parameters that are never part of the signed message.
const UNSIGNED: [&str; 2] = ["hmac", "signature"];

/// Why a signed query or its timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The query has no `hmac` parameter.
    #[error("query has no hmac parameter")]
    MissingHmac,
    /// The `hmac` parameter is present but empty.
    #[error("query's hmac parameter is empty")]
    EmptyHmac,
    /// The `hmac` parameter appears more than once.
    #[error("query's hmac parameter appears {count} times; exactly one is allowed")]
    RepeatedHmac {
        /// How many times it appears.
        count: usize,
    },
    /// The `hmac` does not match the query under any of the app's secrets.
    #[error("query's hmac does not match its parameters signed with the app's client secret")]
    BadHmac,
    /// The query string cannot be decoded.
    #[error("query is malformed: {reason}")]
    MalformedQuery {
        /// What is wrong with it.
        reason: String,
    },
    /// The query has no `timestamp` parameter.
    #[error("query has no timestamp parameter")]
    MissingTimestamp,
    /// The `timestamp` is not a whole number of seconds.
    #[error("timestamp {value:?} is not a whole number of seconds since 1970")]
    BadTimestamp {
        /// The value as received.
        value: String,
    },
    /// The `timestamp` is too far from now.
    #[error(
        "timestamp {timestamp} is {distance_seconds} s from now ({now}); at most {} s is allowed",
        TIMESTAMP_TOLERANCE_SECONDS
    )]
    StaleTimestamp {
        /// The timestamp received, in seconds since 1970.
        timestamp: i64,
        /// Now, in seconds since 1970.
        now: i64,
        /// How far apart they are, in seconds.
        distance_seconds: i128,
    },
}

/// A query whose `hmac` was verified: the parameters it signed, last value winning for a repeated
/// name (the value the signature covered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    params: BTreeMap<String, String>,
}

impl SignedQuery {
    /// The decoded value of a signed parameter; `None` for `hmac`, `signature` and absent names.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Every signed parameter, sorted by name.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Checks the signed `timestamp` against `now` with [`check_timestamp`].
    ///
    /// # Errors
    /// [`OAuthError::MissingTimestamp`] when there is none; otherwise as [`check_timestamp`].
    pub fn check_timestamp(&self, now: DateTime<Utc>) -> Result<(), OAuthError> {
        let value = self.get("timestamp").ok_or(OAuthError::MissingTimestamp)?;
        check_timestamp(value, now)
    }
}

/// The lower-case hex HMAC-SHA256 Shopify puts in `hmac` for these query parameters.
pub fn query_hmac(params: &[(String, String)], secret: &[u8]) -> String {
    hex::encode(sign(
        signing_message(&signed_params(params)).as_bytes(),
        secret,
    ))
}

/// Parses a raw query string (without `?`) and verifies its `hmac` against each secret in turn:
/// the current one first, then the previous one while a rotation is under way.
///
/// # Errors
/// When `hmac` is missing, empty, repeated, not 64 lower-case hex digits or does not match;
/// when a name or value is not UTF-8 once percent-decoded.
pub fn verify_query(raw_query: &str, secrets: &[&[u8]]) -> Result<SignedQuery, OAuthError> {
    let pairs = parse_query(raw_query)?;
    let mut hmacs = pairs.iter().filter(|(name, _)| name == "hmac");
    let received = match (hmacs.next(), hmacs.next()) {
        (None, _) => return Err(OAuthError::MissingHmac),
        (Some(_), Some(_)) => {
            return Err(OAuthError::RepeatedHmac {
                count: pairs.iter().filter(|(name, _)| name == "hmac").count(),
            });
        }
        (Some((_, value)), None) => value,
    };
    if received.is_empty() {
        return Err(OAuthError::EmptyHmac);
    }
    // Shopify sends lower-case hex; anything else is not its signature, and the exact form keeps
    // the comparison exact.
    let is_lower_hex = received.len() == 64
        && received
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    let tag = match hex::decode(received) {
        Ok(tag) if is_lower_hex => tag,
        _ => return Err(OAuthError::BadHmac),
    };
    let params = signed_params(&pairs);
    if signed_by_any(signing_message(&params).as_bytes(), &tag, secrets) {
        Ok(SignedQuery {
            params: params
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        })
    } else {
        Err(OAuthError::BadHmac)
    }
}

/// Checks that a query's `timestamp` is a whole number of seconds within
/// ±[`TIMESTAMP_TOLERANCE_SECONDS`] of `now`, boundaries included.
///
/// # Errors
/// [`OAuthError::BadTimestamp`] when it is not digits only (no sign, no fraction);
/// [`OAuthError::StaleTimestamp`] when it is too far from `now`.
pub fn check_timestamp(value: &str, now: DateTime<Utc>) -> Result<(), OAuthError> {
    let bad = || OAuthError::BadTimestamp {
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(bad());
    }
    let timestamp: i64 = value.parse().map_err(|_| bad())?;
    let now = now.timestamp();
    let distance_seconds = (i128::from(now) - i128::from(timestamp)).abs();
    if distance_seconds <= i128::from(TIMESTAMP_TOLERANCE_SECONDS) {
        Ok(())
    } else {
        Err(OAuthError::StaleTimestamp {
            timestamp,
            now,
            distance_seconds,
        })
    }
}

/// A fresh install nonce: 32 random bytes as 64 lower-case hex digits.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Signs a cookie value as `value.base64url(HMAC-SHA256(value))` (no padding).
pub fn sign_cookie_value(value: &str, secret: &[u8]) -> String {
    format!(
        "{value}.{}",
        URL_SAFE_NO_PAD.encode(sign(value.as_bytes(), secret))
    )
}

/// The value inside a cookie made by [`sign_cookie_value`], when its signature matches
/// (compared in constant time); `None` for anything else.
pub fn verify_cookie_value(signed: &str, secret: &[u8]) -> Option<String> {
    let (value, signature) = signed.rsplit_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(signature).ok()?;
    signed_by_any(value.as_bytes(), &tag, &[secret]).then(|| value.to_owned())
}

/// Splits a raw query into decoded `(name, value)` pairs as `URLSearchParams` does: `&`
/// separates pairs (empty ones are skipped), the first `=` separates name from value (none
/// means an empty value), `+` is a space and `%XX` a byte.
///
/// # Errors
/// [`OAuthError::MalformedQuery`] when a component is not UTF-8 once decoded.
pub fn parse_query(raw_query: &str) -> Result<Vec<(String, String)>, OAuthError> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode_component(name)?, decode_component(value)?))
        })
        .collect()
}

/// Decodes one form-encoded name or value.
fn decode_component(text: &str) -> Result<String, OAuthError> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| OAuthError::MalformedQuery {
            reason: format!("{text:?} is not UTF-8 once percent-decoded"),
        })
}

/// The parameters the signature covers: all but `hmac` and `signature`, sorted by name, the last
/// value of a repeated name winning.
fn signed_params(params: &[(String, String)]) -> BTreeMap<&str, &str> {
    params
        .iter()
        .filter(|(name, _)| !UNSIGNED.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// The message that is signed: `name=value` pairs joined by `&`, both form-encoded.
fn signing_message(params: &BTreeMap<&str, &str>) -> String {
    params
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(name, FORM_VALUE),
                utf8_percent_encode(value, FORM_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    const SECRET: &[u8] = b"hush";
    const PREVIOUS: &[u8] = b"old-secret";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    /// A raw query with every pair form-encoded and the `hmac` signed under `secret` appended.
    fn signed_query(list: &[(&str, &str)], secret: &[u8]) -> String {
        let mut raw: Vec<String> = list
            .iter()
            .map(|(name, value)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(name, FORM_VALUE),
                    utf8_percent_encode(value, FORM_VALUE)
                )
            })
            .collect();
        raw.push(format!("hmac={}", query_hmac(&pairs(list), secret)));
        raw.join("&")
    }

    #[track_caller]
    fn check(raw_query: &str, expected: &str) {
        let got = match verify_query(raw_query, &[SECRET, PREVIOUS]) {
            Ok(query) => query
                .params()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(got, expected, "{raw_query}");
    }

    #[test]
    fn shopify_published_example_matches_a_known_answer() {
        // Shopify's long-published OAuth example (secret "hush"); the expected hex was checked
        // independently with Python: hmac.new(b"hush", message, hashlib.sha256).hexdigest().
        let params = pairs(&[
            ("shop", "some-shop.myshopify.com"),
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("timestamp", "1337178173"),
            ("hmac", "ignored"),
        ]);
        assert_eq!(
            query_hmac(&params, b"hush"),
            "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
        );
        check(
            "code=0907a61c0c8d55e99db179b68161bc00&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20&shop=some-shop.myshopify.com&timestamp=1337178173",
            "code=0907a61c0c8d55e99db179b68161bc00 shop=some-shop.myshopify.com timestamp=1337178173",
        );
    }

    #[test]
    fn values_needing_encoding_match_a_known_answer() {
        // Computed independently in Python with an encoder that keeps only ASCII letters, digits
        // and *-._ and writes every other UTF-8 byte as %XX (URLSearchParams with %20 for space):
        // message host=YWRt…&shop=acme.myshopify.com&state=a%20b%26c%3Dd%7Ee%2Bf%2F%C3%A9&timestamp=1700000000
        let params = pairs(&[
            ("timestamp", "1700000000"),
            ("state", "a b&c=d~e+f/é"),
            ("shop", "acme.myshopify.com"),
            ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ"),
        ]);
        assert_eq!(
            query_hmac(&params, b"hush"),
            "7f548bb160fdec921ff2caee6a86b0e730e57fd7b6a2153400c1ad333ec51466"
        );
        assert_eq!(
            signing_message(&signed_params(&params)),
            "host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ&shop=acme.myshopify.com\
             &state=a%20b%26c%3Dd%7Ee%2Bf%2F%C3%A9&timestamp=1700000000"
        );
    }

    #[test]
    fn signed_message_drops_hmac_and_signature_and_keeps_the_last_repeat() {
        let params = pairs(&[
            ("shop", "first.myshopify.com"),
            ("signature", "x"),
            ("hmac", "y"),
            ("shop", "last.myshopify.com"),
            ("a", "1"),
        ]);
        assert_eq!(
            signing_message(&signed_params(&params)),
            "a=1&shop=last.myshopify.com"
        );
    }

    #[test]
    fn a_signed_query_verifies_and_gives_its_decoded_params() {
        let raw = signed_query(
            &[
                ("shop", "acme.myshopify.com"),
                ("state", "a b&c=d"),
                ("note", "Grüße 🌧"),
                ("timestamp", "1700000000"),
            ],
            SECRET,
        );
        let query = verify_query(&raw, &[SECRET]).unwrap();
        assert_eq!(query.get("shop"), Some("acme.myshopify.com"));
        assert_eq!(query.get("state"), Some("a b&c=d"));
        assert_eq!(query.get("note"), Some("Grüße 🌧"));
        assert_eq!(query.get("hmac"), None);
        assert_eq!(query.get("absent"), None);
    }

    #[test]
    fn plus_in_a_raw_query_is_a_space() {
        let hmac = query_hmac(&pairs(&[("state", "a b")]), SECRET);
        check(&format!("state=a+b&hmac={hmac}"), "state=a b");
        check(&format!("state=a%20b&hmac={hmac}"), "state=a b");
    }

    #[test]
    fn tampered_queries_are_refused() {
        let raw = signed_query(
            &[("shop", "acme.myshopify.com"), ("timestamp", "1700000000")],
            SECRET,
        );
        let bad =
            "error: query's hmac does not match its parameters signed with the app's client secret";
        check(&raw.replace("acme", "evil"), bad);
        check(&raw.replace("1700000000", "1700000001"), bad);
        check(&format!("{raw}&extra=1"), bad);
        check(&format!("{raw}&shop=evil.myshopify.com"), bad);
    }

    #[test]
    fn a_different_secret_is_refused_and_the_previous_one_accepted() {
        let list = [("shop", "acme.myshopify.com")];
        check(
            &signed_query(&list, b"someone-else"),
            "error: query's hmac does not match its parameters signed with the app's client secret",
        );
        check(&signed_query(&list, PREVIOUS), "shop=acme.myshopify.com");
        assert_eq!(
            verify_query(&signed_query(&list, PREVIOUS), &[SECRET]),
            Err(OAuthError::BadHmac)
        );
    }

    #[test]
    fn a_missing_empty_repeated_or_misshapen_hmac_is_refused() {
        let hmac = query_hmac(&pairs(&[("shop", "acme.myshopify.com")]), SECRET);
        check(
            "shop=acme.myshopify.com",
            "error: query has no hmac parameter",
        );
        check("", "error: query has no hmac parameter");
        check(
            "shop=acme.myshopify.com&hmac=",
            "error: query's hmac parameter is empty",
        );
        check(
            "shop=acme.myshopify.com&hmac",
            "error: query's hmac parameter is empty",
        );
        check(
            &format!("shop=acme.myshopify.com&hmac={hmac}&hmac={hmac}"),
            "error: query's hmac parameter appears 2 times; exactly one is allowed",
        );
        let bad =
            "error: query's hmac does not match its parameters signed with the app's client secret";
        check(
            &format!("shop=acme.myshopify.com&hmac={}", hmac.to_uppercase()),
            bad,
        );
        check(
            &format!("shop=acme.myshopify.com&hmac={}", &hmac[..62]),
            bad,
        );
        check("shop=acme.myshopify.com&hmac=zz", bad);
        check(
            &format!("shop=acme.myshopify.com&hmac={hmac}"),
            "shop=acme.myshopify.com",
        );
    }

    #[test]
    fn repeated_params_verify_with_the_last_value_and_expose_that_value() {
        let hmac = query_hmac(
            &pairs(&[("shop", "a.myshopify.com"), ("shop", "b.myshopify.com")]),
            SECRET,
        );
        check(
            &format!("shop=a.myshopify.com&shop=b.myshopify.com&hmac={hmac}"),
            "shop=b.myshopify.com",
        );
        check(
            &format!("shop=c.myshopify.com&shop=b.myshopify.com&hmac={hmac}"),
            "shop=b.myshopify.com",
        );
    }

    #[test]
    fn the_signature_parameter_is_neither_signed_nor_exposed() {
        let hmac = query_hmac(&pairs(&[("shop", "acme.myshopify.com")]), SECRET);
        let query = verify_query(
            &format!("shop=acme.myshopify.com&signature=anything&hmac={hmac}"),
            &[SECRET],
        )
        .unwrap();
        assert_eq!(query.get("signature"), None);
    }

    #[test]
    fn invalid_utf8_after_decoding_is_malformed() {
        check(
            "shop=%FF&hmac=00",
            "error: query is malformed: \"%FF\" is not UTF-8 once percent-decoded",
        );
    }

    #[track_caller]
    fn check_time(value: &str, expected: &str) {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let got = match check_timestamp(value, now) {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected, "{value}");
    }

    #[test]
    fn timestamps_within_ninety_seconds_either_way_are_accepted() {
        check_time("1700000000", "ok");
        check_time("1699999910", "ok");
        check_time("1700000090", "ok");
    }

    #[test]
    fn timestamps_ninety_one_seconds_away_are_refused() {
        check_time(
            "1699999909",
            "timestamp 1699999909 is 91 s from now (1700000000); at most 90 s is allowed",
        );
        check_time(
            "1700000091",
            "timestamp 1700000091 is 91 s from now (1700000000); at most 90 s is allowed",
        );
        check_time(
            "99999999999999999",
            "timestamp 99999999999999999 is 99999998299999999 s from now (1700000000); at most 90 s is allowed",
        );
    }

    #[test]
    fn timestamps_that_are_not_whole_seconds_are_refused() {
        for value in [
            "",
            "1700000000.5",
            "+1700000000",
            "-1",
            " 1700000000",
            "1.7e9",
            "abc",
            "99999999999999999999",
        ] {
            check_time(
                value,
                &format!("timestamp {value:?} is not a whole number of seconds since 1970"),
            );
        }
    }

    #[test]
    fn a_signed_query_checks_its_own_timestamp() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let fresh = verify_query(
            &signed_query(&[("timestamp", "1700000050")], SECRET),
            &[SECRET],
        );
        assert_eq!(fresh.unwrap().check_timestamp(now), Ok(()));
        let without = verify_query(
            &signed_query(&[("shop", "a.myshopify.com")], SECRET),
            &[SECRET],
        );
        assert_eq!(
            without.unwrap().check_timestamp(now),
            Err(OAuthError::MissingTimestamp)
        );
    }

    #[test]
    fn nonces_are_64_hex_digits_and_differ() {
        let first = new_nonce();
        assert_eq!(first.len(), 64);
        assert!(first.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(first, new_nonce());
    }

    #[test]
    fn signed_cookies_verify_and_tampered_ones_do_not() {
        let signed = sign_cookie_value("nonce.with.dots", SECRET);
        assert_eq!(
            verify_cookie_value(&signed, SECRET).as_deref(),
            Some("nonce.with.dots")
        );
        assert_eq!(verify_cookie_value(&signed, PREVIOUS), None);
        assert_eq!(
            verify_cookie_value(&signed.replacen("nonce", "nonca", 1), SECRET),
            None
        );
        assert_eq!(verify_cookie_value("no-signature", SECRET), None);
        assert_eq!(verify_cookie_value("value.", SECRET), None);
        assert_eq!(verify_cookie_value("value.!!!", SECRET), None);
        let (value, signature) = signed.rsplit_once('.').unwrap();
        assert_eq!(
            verify_cookie_value(&format!("{value}.{signature}="), SECRET),
            None
        );
    }

    proptest! {
        #[test]
        fn any_signed_params_verify_after_encoding(
            list in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..6)
        ) {
            let list: Vec<(&str, &str)> = list
                .iter()
                .filter(|(name, _)| !UNSIGNED.contains(&name.as_str()))
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let query = verify_query(&signed_query(&list, SECRET), &[SECRET]).unwrap();
            for (name, value) in signed_params(&pairs(&list)) {
                prop_assert_eq!(query.get(name), Some(value));
            }
        }
    }
}
