//! Verification of Shopify webhook deliveries: the HMAC over the raw body first, then the headers
//! that say what the delivery is.
//!
//! Two header families exist. Classic webhooks send `X-Shopify-*`; the newer Events deliveries send
//! the same names without `X-` (`shopify-hmac-sha256`, `shopify-topic`, …). As in
//! `@shopify/shopify-api`, any `shopify-hmac-sha256` header selects the Events family, and then only
//! `shopify-*` headers are read. Header names are case-insensitive (`HeaderMap` folds them).
//!
//! The body is never parsed here: a delivery is identified only after its signature verified.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use ordernimbus_backend::shopify::shop::ShopDomain;
use sha2::Sha256;

/// A delivery whose HMAC verified, with the headers that identify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// The topic, e.g. `orders/create`.
    pub topic: String,
    /// The shop named by the shop-domain header (not covered by the HMAC: cross-check it against
    /// the body where the body names the shop).
    pub shop: ShopDomain,
    /// The Admin API version the payload is shaped by, e.g. `2026-01`.
    pub api_version: String,
    /// Unique per delivery: the key to deduplicate on.
    pub webhook_id: String,
    /// Shared by every delivery of one merchant action, when sent.
    pub event_id: Option<String>,
    /// When the event happened, when sent.
    pub triggered_at: Option<DateTime<Utc>>,
    /// The subscription's name (`X-Shopify-Name`; in the Events family, `shopify-handle`).
    pub name: Option<String>,
}

/// Why a delivery was refused; [`DeliveryRejection::status`] is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryRejection {
    /// No HMAC header, or an empty one.
    #[error("header {header} is missing or empty")]
    MissingHmac {
        /// The header's name.
        header: &'static str,
    },
    /// The HMAC header appears more than once.
    #[error("header {header} appears {count} times; exactly one is allowed")]
    RepeatedHmac {
        /// The header's name.
        header: &'static str,
        /// How many times it appears.
        count: usize,
    },
    /// The HMAC is not the body's signature under any of the app's secrets.
    #[error("header {header} does not match the body signed with the app's client secret")]
    BadHmac {
        /// The header's name.
        header: &'static str,
    },
    /// A required header is absent or empty.
    #[error("required header {header} is missing or empty")]
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A header appears more than once.
    #[error("header {header} appears {count} times; exactly one is allowed")]
    RepeatedHeader {
        /// The header's name.
        header: &'static str,
        /// How many times it appears.
        count: usize,
    },
    /// A header's value cannot be used.
    #[error("header {header} is invalid: {problem}")]
    InvalidHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with the value.
        problem: String,
    },
}

impl DeliveryRejection {
    /// The HTTP status to answer: 401 for a missing, repeated or wrong HMAC (App Store review sends
    /// invalid HMACs and expects 401), 400 for a missing or invalid header after a valid HMAC.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingHmac { .. } | Self::RepeatedHmac { .. } | Self::BadHmac { .. } => 401,
            Self::MissingHeader { .. }
            | Self::RepeatedHeader { .. }
            | Self::InvalidHeader { .. } => 400,
        }
    }

    /// A stable machine-readable code for the API error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHmac { .. } => "missing_hmac",
            Self::RepeatedHmac { .. } => "repeated_hmac",
            Self::BadHmac { .. } => "invalid_hmac",
            Self::MissingHeader { .. } => "missing_header",
            Self::RepeatedHeader { .. } => "repeated_header",
            Self::InvalidHeader { .. } => "invalid_header",
        }
    }

    /// The header the rejection is about.
    pub fn header(&self) -> &'static str {
        match self {
            Self::MissingHmac { header }
            | Self::RepeatedHmac { header, .. }
            | Self::BadHmac { header }
            | Self::MissingHeader { header }
            | Self::RepeatedHeader { header, .. }
            | Self::InvalidHeader { header, .. } => header,
        }
    }
}

/// The header names of one family, as Shopify spells them (lookups ignore case).
struct Family {
    hmac: &'static str,
    topic: &'static str,
    shop: &'static str,
    api_version: &'static str,
    webhook_id: &'static str,
    event_id: &'static str,
    triggered_at: &'static str,
    name: &'static str,
}

/// Classic webhook deliveries.
const WEBHOOKS: Family = Family {
    hmac: "X-Shopify-Hmac-Sha256",
    topic: "X-Shopify-Topic",
    shop: "X-Shopify-Shop-Domain",
    api_version: "X-Shopify-API-Version",
    webhook_id: "X-Shopify-Webhook-Id",
    event_id: "X-Shopify-Event-Id",
    triggered_at: "X-Shopify-Triggered-At",
    name: "X-Shopify-Name",
};

/// Events deliveries, selected by the presence of `shopify-hmac-sha256`.
const EVENTS: Family = Family {
    hmac: "shopify-hmac-sha256",
    topic: "shopify-topic",
    shop: "shopify-shop-domain",
    api_version: "shopify-api-version",
    webhook_id: "shopify-webhook-id",
    event_id: "shopify-event-id",
    triggered_at: "shopify-triggered-at",
    name: "shopify-handle",
};

/// Verifies a delivery: the HMAC header (exactly one, non-empty) must be the standard base64
/// HMAC-SHA256 of the raw `body` under one of `secrets` (current first, then the previous one for
/// the hour after a rotation), compared in constant time, before any other header is read. Then
/// the topic, shop-domain, API-version and webhook-id headers are required, and the event-id,
/// triggered-at (RFC 3339) and name headers read when present.
///
/// # Errors
/// A [`DeliveryRejection`] naming the header: 401-class for the HMAC, 400-class for the rest.
pub fn verify_delivery(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<VerifiedDelivery, DeliveryRejection> {
    let family = if headers.contains_key(EVENTS.hmac) {
        &EVENTS
    } else {
        &WEBHOOKS
    };
    verify_hmac(headers, family.hmac, body, secrets)?;

    let topic = required(headers, family.topic)?;
    let shop = required(headers, family.shop)?;
    let shop = ShopDomain::parse(shop).map_err(|error| DeliveryRejection::InvalidHeader {
        header: family.shop,
        problem: error.to_string(),
    })?;
    let api_version = required(headers, family.api_version)?;
    let webhook_id = required(headers, family.webhook_id)?;
    let event_id = optional(headers, family.event_id)?;
    let triggered_at = optional(headers, family.triggered_at)?
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| DeliveryRejection::InvalidHeader {
                    header: family.triggered_at,
                    problem: format!(
                        "{text:?} is not an RFC 3339 time such as 2026-03-29T18:00:27Z"
                    ),
                })
        })
        .transpose()?;
    let name = optional(headers, family.name)?;
    Ok(VerifiedDelivery {
        topic: topic.to_owned(),
        shop,
        api_version: api_version.to_owned(),
        webhook_id: webhook_id.to_owned(),
        event_id: event_id.map(str::to_owned),
        triggered_at,
        name: name.map(str::to_owned),
    })
}

/// The value Shopify puts in the HMAC header for `body`: standard, padded base64 of its
/// HMAC-SHA256 under `secret` (for tests and the Admin simulator).
pub fn sign_body(body: &[u8], secret: &[u8]) -> String {
    let mut mac = hmac_sha256(secret);
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks the HMAC header against the body under each secret.
fn verify_hmac(
    headers: &HeaderMap,
    header: &'static str,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<(), DeliveryRejection> {
    // `HeaderMap::get` would silently take the first of two values; count them instead.
    let mut values = headers.get_all(header).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(DeliveryRejection::MissingHmac { header }),
        (Some(_), Some(_)) => {
            return Err(DeliveryRejection::RepeatedHmac {
                header,
                count: headers.get_all(header).iter().count(),
            });
        }
        (Some(value), None) => value,
    };
    if value.is_empty() {
        return Err(DeliveryRejection::MissingHmac { header });
    }
    let bad = DeliveryRejection::BadHmac { header };
    // STANDARD requires the padded, canonical encoding Shopify sends: no other spelling matches.
    let tag = STANDARD.decode(value.as_bytes()).map_err(|_| bad.clone())?;
    let signed = secrets.iter().any(|secret| {
        let mut mac = hmac_sha256(secret);
        mac.update(body);
        mac.verify_slice(&tag).is_ok()
    });
    if signed { Ok(()) } else { Err(bad) }
}

/// A required header: exactly one, non-empty, visible ASCII.
fn required<'headers>(
    headers: &'headers HeaderMap,
    header: &'static str,
) -> Result<&'headers str, DeliveryRejection> {
    optional(headers, header)?.ok_or(DeliveryRejection::MissingHeader { header })
}

/// An optional header: absent or empty is `None`; repeated or not visible ASCII is refused.
fn optional<'headers>(
    headers: &'headers HeaderMap,
    header: &'static str,
) -> Result<Option<&'headers str>, DeliveryRejection> {
    let mut values = headers.get_all(header).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(DeliveryRejection::RepeatedHeader {
                header,
                count: headers.get_all(header).iter().count(),
            });
        }
        (Some(value), None) => value,
    };
    let text = value
        .to_str()
        .map_err(|_| DeliveryRejection::InvalidHeader {
            header,
            problem: "value is not visible ASCII".to_owned(),
        })?
        .trim();
    Ok((!text.is_empty()).then_some(text))
}

/// An HMAC-SHA256 keyed with `secret`.
fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderName, HeaderValue};
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    const SECRET: &[u8] = b"current-secret";
    const PREVIOUS: &[u8] = b"previous-secret";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

    /// Headers as `(name, value)`; `{hmac}` in a value is replaced by the body's signature.
    fn headers(list: &[(&str, &str)], hmac: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&value.replace("{hmac}", hmac)).unwrap(),
            );
        }
        map
    }

    fn classic() -> Vec<(&'static str, &'static str)> {
        vec![
            ("X-Shopify-Hmac-Sha256", "{hmac}"),
            ("X-Shopify-Topic", "orders/create"),
            ("X-Shopify-Shop-Domain", "acme.myshopify.com"),
            ("X-Shopify-API-Version", "2026-01"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
            ("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
            ("X-Shopify-Triggered-At", "2026-03-29T18:00:27.877041743Z"),
            ("X-Shopify-Name", "orders"),
        ]
    }

    fn events() -> Vec<(&'static str, &'static str)> {
        vec![
            ("shopify-hmac-sha256", "{hmac}"),
            ("shopify-topic", "orders/create"),
            ("shopify-shop-domain", "acme.myshopify.com"),
            ("shopify-api-version", "2026-01"),
            ("shopify-webhook-id", "e-webhook-1"),
            ("shopify-event-id", "e-event-1"),
            ("shopify-triggered-at", "2026-03-29T20:00:27+02:00"),
            ("shopify-handle", "orders-handle"),
        ]
    }

    /// `list` without the headers named in `names` (compared ignoring case).
    fn without(
        list: Vec<(&'static str, &'static str)>,
        names: &[&str],
    ) -> Vec<(&'static str, &'static str)> {
        list.into_iter()
            .filter(|(name, _)| !names.iter().any(|drop| drop.eq_ignore_ascii_case(name)))
            .collect()
    }

    /// `list` with the named header's value replaced (or added).
    fn with(
        list: Vec<(&'static str, &'static str)>,
        name: &'static str,
        value: &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        let mut list = without(list, &[name]);
        list.push((name, value));
        list
    }

    #[track_caller]
    fn check(list: &[(&str, &str)], expected: &str) {
        let headers = headers(list, &sign_body(BODY, SECRET));
        let got = match verify_delivery(&headers, BODY, &[SECRET, PREVIOUS]) {
            Ok(delivery) => format!(
                "ok {} {} {} {} event={:?} at={:?} name={:?}",
                delivery.topic,
                delivery.shop,
                delivery.api_version,
                delivery.webhook_id,
                delivery.event_id,
                delivery.triggered_at.map(|time| time.to_rfc3339()),
                delivery.name
            ),
            Err(rejection) => format!("{} {}: {rejection}", rejection.status(), rejection.code()),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn a_signed_classic_delivery_is_verified() {
        check(
            &classic(),
            "ok orders/create acme.myshopify.com 2026-01 b54557e4-bdd9-4b37-8a5f-bf7d70bcd043 \
             event=Some(\"98880550-7158-44d4-b7cd-2c97c8a091b5\") \
             at=Some(\"2026-03-29T18:00:27.877041743+00:00\") name=Some(\"orders\")",
        );
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let lower: Vec<(String, &str)> = classic()
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let lower: Vec<(&str, &str)> = lower
            .iter()
            .map(|(name, value)| (name.as_str(), *value))
            .collect();
        let headers = headers(&lower, &sign_body(BODY, SECRET));
        assert!(verify_delivery(&headers, BODY, &[SECRET]).is_ok());
    }

    #[test]
    fn optional_headers_may_be_absent_or_empty() {
        check(
            &without(
                classic(),
                &[
                    "X-Shopify-Event-Id",
                    "X-Shopify-Triggered-At",
                    "X-Shopify-Name",
                ],
            ),
            "ok orders/create acme.myshopify.com 2026-01 b54557e4-bdd9-4b37-8a5f-bf7d70bcd043 \
             event=None at=None name=None",
        );
        check(
            &with(classic(), "X-Shopify-Triggered-At", ""),
            "ok orders/create acme.myshopify.com 2026-01 b54557e4-bdd9-4b37-8a5f-bf7d70bcd043 \
             event=Some(\"98880550-7158-44d4-b7cd-2c97c8a091b5\") at=None name=Some(\"orders\")",
        );
    }

    #[test]
    fn a_signed_events_delivery_is_verified_from_shopify_headers() {
        check(
            &events(),
            "ok orders/create acme.myshopify.com 2026-01 e-webhook-1 event=Some(\"e-event-1\") \
             at=Some(\"2026-03-29T18:00:27+00:00\") name=Some(\"orders-handle\")",
        );
    }

    #[test]
    fn a_shopify_hmac_header_switches_to_the_events_family() {
        // Classic headers alongside do not stand in for missing Events ones.
        let mut list = classic();
        list.extend(without(events(), &["shopify-topic"]));
        check(
            &list,
            "400 missing_header: required header shopify-topic is missing or empty",
        );
        // And the Events HMAC is the one checked.
        let mut list = with(events(), "shopify-hmac-sha256", "AAAA");
        list.extend(classic());
        check(
            &list,
            "401 invalid_hmac: header shopify-hmac-sha256 does not match the body signed with the \
             app's client secret",
        );
    }

    #[test]
    fn hmac_problems_are_401_and_name_the_header() {
        for (list, expected) in [
            (
                without(classic(), &["X-Shopify-Hmac-Sha256"]),
                "401 missing_hmac: header X-Shopify-Hmac-Sha256 is missing or empty",
            ),
            (
                with(classic(), "X-Shopify-Hmac-Sha256", ""),
                "401 missing_hmac: header X-Shopify-Hmac-Sha256 is missing or empty",
            ),
            (
                with(classic(), "shopify-hmac-sha256", ""),
                "401 missing_hmac: header shopify-hmac-sha256 is missing or empty",
            ),
            (
                with(
                    classic(),
                    "X-Shopify-Hmac-Sha256",
                    "bm90IHRoZSBzaWduYXR1cmU=",
                ),
                "401 invalid_hmac: header X-Shopify-Hmac-Sha256 does not match the body signed \
                 with the app's client secret",
            ),
            (
                with(classic(), "X-Shopify-Hmac-Sha256", "not base64!"),
                "401 invalid_hmac: header X-Shopify-Hmac-Sha256 does not match the body signed \
                 with the app's client secret",
            ),
            (
                with(classic(), "X-Shopify-Hmac-Sha256", "{hmac}, {hmac}"),
                "401 invalid_hmac: header X-Shopify-Hmac-Sha256 does not match the body signed \
                 with the app's client secret",
            ),
        ] {
            check(&list, expected);
        }
    }

    #[test]
    fn a_repeated_hmac_header_is_refused_even_when_both_match() {
        let mut list = classic();
        list.push(("x-shopify-hmac-sha256", "{hmac}"));
        check(
            &list,
            "401 repeated_hmac: header X-Shopify-Hmac-Sha256 appears 2 times; exactly one is allowed",
        );
    }

    #[test]
    fn the_hmac_is_checked_before_any_other_header() {
        check(
            &[("X-Shopify-Hmac-Sha256", "AAAA")],
            "401 invalid_hmac: header X-Shopify-Hmac-Sha256 does not match the body signed with \
             the app's client secret",
        );
        check(
            &[("X-Shopify-Topic", "orders/create")],
            "401 missing_hmac: header X-Shopify-Hmac-Sha256 is missing or empty",
        );
    }

    #[test]
    fn the_hmac_must_be_padded_standard_base64() {
        let hmac = sign_body(BODY, SECRET);
        let variants = [
            hmac.trim_end_matches('=').to_owned(),
            hmac.replace('+', "-").replace('/', "_"),
            hex_of(&STANDARD.decode(&hmac).unwrap()),
        ];
        for variant in variants {
            if variant == hmac {
                continue;
            }
            let headers = headers(
                &with(classic(), "X-Shopify-Hmac-Sha256", "{hmac}"),
                &variant,
            );
            assert_eq!(
                verify_delivery(&headers, BODY, &[SECRET])
                    .unwrap_err()
                    .code(),
                "invalid_hmac",
                "{variant}"
            );
        }
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn the_previous_secret_is_accepted_during_rotation() {
        let headers = headers(&classic(), &sign_body(BODY, PREVIOUS));
        assert!(verify_delivery(&headers, BODY, &[SECRET, PREVIOUS]).is_ok());
        assert_eq!(
            verify_delivery(&headers, BODY, &[SECRET])
                .unwrap_err()
                .code(),
            "invalid_hmac"
        );
        assert_eq!(
            verify_delivery(&headers, BODY, &[]).unwrap_err().code(),
            "invalid_hmac"
        );
    }

    #[test]
    fn a_reserialised_body_does_not_verify() {
        let headers = headers(&classic(), &sign_body(BODY, SECRET));
        let reserialised = br#"{"id": 820982911946154508, "email": "jon@example.com"}"#;
        assert_eq!(
            verify_delivery(&headers, reserialised, &[SECRET])
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn missing_required_headers_are_400_and_named() {
        for header in [
            "X-Shopify-Topic",
            "X-Shopify-Shop-Domain",
            "X-Shopify-API-Version",
            "X-Shopify-Webhook-Id",
        ] {
            check(
                &without(classic(), &[header]),
                &format!("400 missing_header: required header {header} is missing or empty"),
            );
            check(
                &with(classic(), header, "  "),
                &format!("400 missing_header: required header {header} is missing or empty"),
            );
        }
        for header in [
            "shopify-topic",
            "shopify-shop-domain",
            "shopify-api-version",
            "shopify-webhook-id",
        ] {
            check(
                &without(events(), &[header]),
                &format!("400 missing_header: required header {header} is missing or empty"),
            );
        }
    }

    #[test]
    fn invalid_or_repeated_headers_are_400_and_named() {
        check(
            &with(classic(), "X-Shopify-Shop-Domain", "evil.com"),
            "400 invalid_header: header X-Shopify-Shop-Domain is invalid: \"evil.com\" is not a \
             Shopify shop domain (expected {handle}.myshopify.com, the handle made of letters, \
             digits and hyphens and not starting with a hyphen, or admin.shopify.com/store/{handle})",
        );
        check(
            &with(classic(), "X-Shopify-Triggered-At", "yesterday"),
            "400 invalid_header: header X-Shopify-Triggered-At is invalid: \"yesterday\" is not an \
             RFC 3339 time such as 2026-03-29T18:00:27Z",
        );
        let mut list = classic();
        list.push(("X-Shopify-Shop-Domain", "other.myshopify.com"));
        check(
            &list,
            "400 repeated_header: header X-Shopify-Shop-Domain appears 2 times; exactly one is allowed",
        );
        let mut list = classic();
        list.push(("X-Shopify-Webhook-Id", "another"));
        check(
            &list,
            "400 repeated_header: header X-Shopify-Webhook-Id appears 2 times; exactly one is allowed",
        );
        let mut headers = headers(&classic(), &sign_body(BODY, SECRET));
        headers.insert(
            "x-shopify-topic",
            HeaderValue::from_bytes("orders/créate".as_bytes()).unwrap(),
        );
        let rejection = verify_delivery(&headers, BODY, &[SECRET]).unwrap_err();
        assert_eq!(
            (
                rejection.status(),
                rejection.header(),
                rejection.to_string()
            ),
            (
                400,
                "X-Shopify-Topic",
                "header X-Shopify-Topic is invalid: value is not visible ASCII".to_owned()
            )
        );
    }

    #[test]
    fn the_shop_header_is_normalised_like_any_shop_domain() {
        check(
            &with(classic(), "X-Shopify-Shop-Domain", "ACME.myshopify.com"),
            "ok orders/create acme.myshopify.com 2026-01 b54557e4-bdd9-4b37-8a5f-bf7d70bcd043 \
             event=Some(\"98880550-7158-44d4-b7cd-2c97c8a091b5\") \
             at=Some(\"2026-03-29T18:00:27.877041743+00:00\") name=Some(\"orders\")",
        );
    }

    #[test]
    fn triggered_at_is_read_as_utc() {
        let headers = headers(&events(), &sign_body(BODY, SECRET));
        let delivery = verify_delivery(&headers, BODY, &[SECRET]).unwrap();
        assert_eq!(
            delivery.triggered_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 18, 0, 27).unwrap())
        );
    }

    #[test]
    fn sign_body_matches_a_known_answer() {
        // Computed independently with Python:
        // base64.b64encode(hmac.new(b"hush", b'{"id":1}', hashlib.sha256).digest())
        assert_eq!(
            sign_body(br#"{"id":1}"#, b"hush"),
            "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
        );
    }

    proptest! {
        #[test]
        fn any_signed_body_verifies_and_any_flipped_byte_does_not(
            body in proptest::collection::vec(any::<u8>(), 1..2048),
            index in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let headers = headers(&classic(), &sign_body(&body, SECRET));
            prop_assert!(verify_delivery(&headers, &body, &[SECRET, PREVIOUS]).is_ok());
            let mut flipped = body.clone();
            flipped[index.index(body.len())] ^= 1 << bit;
            let rejection = verify_delivery(&headers, &flipped, &[SECRET, PREVIOUS]).unwrap_err();
            prop_assert_eq!(rejection.status(), 401);
        }

        #[test]
        fn an_empty_body_verifies_when_signed(secret in proptest::collection::vec(any::<u8>(), 0..80)) {
            let headers = headers(&classic(), &sign_body(b"", &secret));
            prop_assert!(verify_delivery(&headers, b"", &[&secret]).is_ok());
        }
    }
}
