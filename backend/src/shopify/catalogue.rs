//! Shopify's REST product and inventory-level payloads (webhooks `products/*`,
//! `inventory_levels/update`) as catalogue variants and stock levels.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::id_text;

use crate::domain::{CatalogueVariant, InvalidValue, Location, Sku};

/// An `inventory_levels/update` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryLevel {
    /// The inventory item (one per variant).
    pub inventory_item_id: String,
    /// Where the stock is, as our location name.
    pub location: Location,
    /// Units available.
    pub available: f64,
    /// When Shopify changed it: an older update never overwrites a newer one.
    pub updated_at: DateTime<Utc>,
}

/// The location name order lines and stock levels share for a Shopify location id.
///
/// # Errors
/// Never for a numeric id; kept fallible because `Location` validates.
pub fn location_of(location_id: &str) -> Result<Location, InvalidValue> {
    Location::parse(&format!("shopify-location-{location_id}"))
}

/// A product payload's id and variants (SKU, or `variant-{id}` when it has none).
///
/// # Errors
/// When the product or a variant has no id.
pub fn product_variants(payload: &Value) -> Result<(String, Vec<CatalogueVariant>), InvalidValue> {
    let product_id = id_text(payload.get("id"))
        .ok_or_else(|| InvalidValue::new("product payload without an id"))?;
    let mut variants = Vec::new();
    for variant in payload
        .get("variants")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let variant_id =
            id_text(variant.get("id")).ok_or_else(|| InvalidValue::new("variant without an id"))?;
        let sku = match variant
            .get("sku")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|sku| !sku.is_empty())
        {
            Some(sku) => Sku::parse(sku)?,
            None => Sku::parse(&format!("variant-{variant_id}"))?,
        };
        variants.push(CatalogueVariant {
            variant_id,
            inventory_item_id: id_text(variant.get("inventory_item_id")),
            sku,
        });
    }
    Ok((product_id, variants))
}

/// An `inventory_levels/update` payload.
///
/// # Errors
/// When a field is missing or malformed (named).
pub fn inventory_level(payload: &Value) -> Result<InventoryLevel, InvalidValue> {
    let inventory_item_id = id_text(payload.get("inventory_item_id"))
        .ok_or_else(|| InvalidValue::new("inventory level without inventory_item_id"))?;
    let location_id = id_text(payload.get("location_id"))
        .ok_or_else(|| InvalidValue::new("inventory level without location_id"))?;
    let available = payload
        .get("available")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .max(0.0);
    let updated_at = payload
        .get("updated_at")
        .and_then(Value::as_str)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .ok_or_else(|| InvalidValue::new("inventory level without a valid updated_at"))?;
    Ok(InventoryLevel {
        inventory_item_id,
        location: location_of(&location_id)?,
        available,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variants_fall_back_to_their_id_without_a_sku() {
        let (product, variants) = product_variants(&json!({"id": 632_910_392_u64, "variants": [
            {"id": 808_950_810_u64, "sku": "IPOD2008PINK", "inventory_item_id": 808_950_810_u64},
            {"id": 49_148_385_u64, "sku": "", "inventory_item_id": 49_148_385_u64}
        ]}))
        .unwrap();
        assert_eq!(product, "632910392");
        assert_eq!(variants[0].sku.as_str(), "IPOD2008PINK");
        assert_eq!(variants[1].sku.as_str(), "variant-49148385");
        assert_eq!(variants[1].inventory_item_id.as_deref(), Some("49148385"));
    }

    #[test]
    fn inventory_levels_name_what_is_missing() {
        let level = inventory_level(&json!({"inventory_item_id": 271_878_346_596_884_015_u64,
            "location_id": 24_826_418, "available": 6, "updated_at": "2026-03-01T10:00:00-05:00"}))
        .unwrap();
        assert_eq!(level.location.as_str(), "shopify-location-24826418");
        assert_eq!(level.inventory_item_id, "271878346596884015");
        assert_eq!(level.available, 6.0);
        assert_eq!(
            inventory_level(&json!({"location_id": 1}))
                .unwrap_err()
                .to_string(),
            "inventory level without inventory_item_id"
        );
    }
}
