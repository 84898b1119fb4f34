//! Tenants (a Shopify shop or a POS retailer) and their API keys.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{IdentityScheme, InvalidValue};

/// The public, opaque identifier of a tenant (`tn_` + 20 hex digits); every record belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Makes a fresh random tenant id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 10];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("tn_{}", hex::encode(bytes)))
    }

    /// Checks the shape of a tenant id given by a person or a script.
    ///
    /// # Errors
    /// When the value is not `tn_` followed by 20 lower-case hex digits.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        let valid = value.len() == 23
            && value.starts_with("tn_")
            && value[3..]
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(format!(
                "\"{value}\" is not a tenant id (expected tn_ followed by 20 hex digits)"
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An IANA time zone in which a tenant's local dates are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(chrono_tz::Tz);

impl Timezone {
    /// Parses an IANA name such as `Europe/Berlin`.
    ///
    /// # Errors
    /// When the name is not in the IANA database.
    pub fn parse(name: &str) -> Result<Self, InvalidValue> {
        chrono_tz::Tz::from_str(name.trim())
            .map(Self)
            .map_err(|_| InvalidValue::new(format!("\"{name}\" is not an IANA time zone")))
    }

    /// The zone for conversions.
    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for Timezone {
    fn default() -> Self {
        Self(chrono_tz::UTC)
    }
}

/// What a new tenant is created from.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Display name, 1–200 characters.
    pub name: String,
    /// Zone in which local sale times become dates.
    pub timezone: Timezone,
}

impl NewTenant {
    /// The tenant this becomes when stored as `id` now.
    pub fn created(&self, id: &TenantId) -> Tenant {
        Tenant {
            id: id.clone(),
            name: self.name.clone(),
            timezone: self.timezone,
            identity: IdentityScheme::default(),
            created_at: chrono::Utc::now(),
        }
    }

    /// Validates a name and time zone given by an operator.
    ///
    /// # Errors
    /// When the name is empty or longer than 200 characters, or the zone is unknown.
    pub fn parse(name: &str, timezone: &str) -> Result<Self, InvalidValue> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(InvalidValue::new("tenant name must be 1 to 200 characters"));
        }
        Ok(Self {
            name: name.to_owned(),
            timezone: Timezone::parse(timezone)?,
        })
    }
}

/// A stored tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Public id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Zone for local dates.
    pub timezone: Timezone,
    /// How its line identities are hashed, for life (see [`IdentityScheme`]).
    pub identity: IdentityScheme,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A secret API key, shown once at creation; only its SHA-256 is stored.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Makes a fresh key with 256 bits of randomness (`onk_` + 64 hex digits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("onk_{}", hex::encode(bytes)))
    }

    /// Wraps a key presented by a client.
    pub fn from_presented(value: &str) -> Self {
        Self(value.trim().to_owned())
    }

    /// The secret text, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the key is stored and looked up. A fast hash is right here: keys carry
    /// 256 random bits, so there is nothing to brute-force.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKey(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tenant_ids_parse_back() {
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn malformed_tenant_ids_are_refused() {
        for bad in [
            "",
            "tn_",
            "tn_XYZ",
            "xx_0123456789abcdef0123",
            "tn_0123456789abcdef012",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_timezone_is_named_in_the_error() {
        assert_eq!(
            Timezone::parse("Mars/Olympus").unwrap_err().to_string(),
            "\"Mars/Olympus\" is not an IANA time zone"
        );
        assert_eq!(
            Timezone::parse("Europe/Berlin").unwrap().name(),
            "Europe/Berlin"
        );
    }

    #[test]
    fn api_key_debug_never_shows_the_secret() {
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[4..]));
        assert_eq!(key.hash(), ApiKey::from_presented(key.expose()).hash());
    }
}
