//! Browser sessions of standalone (CSV) tenants and their one-time sign-in links, and the tenant's
//! UI settings.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{DEFAULT_LEAD_TIME_DAYS, DEFAULT_SERVICE_LEVEL, InvalidValue, MAX_HORIZON_DAYS};

/// A secret handed to a browser (session cookie, CSRF token, one-time sign-in link); only its
/// SHA-256 is stored, except the CSRF token, which the page must be able to echo.
#[derive(Clone, PartialEq, Eq)]
pub struct BrowserSecret(String);

impl BrowserSecret {
    /// A fresh secret with 256 bits of randomness (64 hex digits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// Wraps a secret presented by a browser.
    pub fn from_presented(value: &str) -> Self {
        Self(value.trim().to_owned())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the secret is stored and looked up (256 random bits: a fast hash is
    /// enough).
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// Compares in constant time (CSRF tokens are compared against request input).
    pub fn matches(&self, presented: &str) -> bool {
        let (left, right) = (self.0.as_bytes(), presented.as_bytes());
        left.len() == right.len()
            && left
                .iter()
                .zip(right)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for BrowserSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BrowserSecret(redacted)")
    }
}

/// A signed-in browser: whose it is and the CSRF token its unsafe requests must echo.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The tenant signed in.
    pub tenant: super::Tenant,
    /// Sent back in `X-CSRF-Token` (API calls) or a `csrf_token` field (forms).
    pub csrf_token: BrowserSecret,
    /// When the session stops working.
    pub expires_at: DateTime<Utc>,
}

/// Settings a tenant changes on the UI's settings page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// IANA time zone of the tenant's local days.
    pub timezone: String,
    /// Lead time for stock rows that name none.
    pub default_lead_time_days: u32,
    /// Service level for stock rows that name none (0.5–0.999).
    pub service_level: f64,
    /// Days of forecast the UI shows.
    pub horizon_days: u32,
}

impl TenantSettings {
    /// The settings of a tenant that never changed them.
    pub fn defaults(timezone: &str) -> Self {
        Self {
            timezone: timezone.to_owned(),
            default_lead_time_days: DEFAULT_LEAD_TIME_DAYS,
            service_level: DEFAULT_SERVICE_LEVEL,
            horizon_days: 28,
        }
    }

    /// Checks every field; returns the first one out of range with its message.
    ///
    /// # Errors
    /// `(field, problem)` for the first bad field.
    pub fn validate(&self) -> Result<(), (&'static str, InvalidValue)> {
        super::Timezone::parse(&self.timezone).map_err(|error| ("timezone", error))?;
        if !(1..=180).contains(&self.default_lead_time_days) {
            return Err((
                "default_lead_time_days",
                InvalidValue::new("the lead time must be 1 to 180 days"),
            ));
        }
        if !(0.5..=0.999).contains(&self.service_level) {
            return Err((
                "service_level",
                InvalidValue::new("the service level must be from 0.5 to 0.999"),
            ));
        }
        if !(1..=MAX_HORIZON_DAYS as u32).contains(&self.horizon_days) {
            return Err((
                "horizon_days",
                InvalidValue::new(format!("the horizon must be 1 to {MAX_HORIZON_DAYS} days")),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(change: impl FnOnce(&mut TenantSettings), expected: &str) {
        let mut settings = TenantSettings::defaults("Europe/Berlin");
        change(&mut settings);
        let got = match settings.validate() {
            Ok(()) => "ok".to_owned(),
            Err((field, error)) => format!("{field}: {error}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn settings_out_of_range_name_their_field() {
        check(|_| {}, "ok");
        check(
            |s| s.timezone = "Mars/Olympus".into(),
            "timezone: \"Mars/Olympus\" is not an IANA time zone",
        );
        check(
            |s| s.default_lead_time_days = 0,
            "default_lead_time_days: the lead time must be 1 to 180 days",
        );
        check(
            |s| s.service_level = 1.0,
            "service_level: the service level must be from 0.5 to 0.999",
        );
        check(
            |s| s.horizon_days = 366,
            "horizon_days: the horizon must be 1 to 365 days",
        );
    }

    #[test]
    fn secrets_match_only_themselves_and_never_print() {
        let secret = BrowserSecret::generate();
        assert!(secret.matches(secret.expose()));
        assert!(!secret.matches(&BrowserSecret::generate().0));
        assert!(!secret.matches(""));
        assert_eq!(format!("{secret:?}"), "BrowserSecret(redacted)");
    }
}
