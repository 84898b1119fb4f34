//! `serve --demo`: a demo tenant loaded with bundled real retail sales (UCI Online Retail II, the 40
//! best-selling SKUs, CC BY 4.0), and a fresh API key printed for the newcomer.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use ordernimbus_backend::domain::{ApiKey, ForecastPoint, NewTenant, StockLevel, TenantId};
use ordernimbus_backend::forecast::Refresher;
use ordernimbus_backend::import::{self, ImportRequest};
use ordernimbus_backend::store::Store;

/// Name of the demo tenant; a second `--demo` start reuses it.
const DEMO_NAME: &str = "Demo Retail (sample data)";
const SAMPLE: &[u8] = include_bytes!("../demo/online_retail_top40.csv.gz");

/// Creates the demo tenant (once), imports the sample (once) and prints how to use it.
pub async fn load(
    store: Arc<dyn Store>,
    refresher: &Refresher,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let existing = store
        .tenants()
        .await?
        .into_iter()
        .find(|tenant| tenant.name == DEMO_NAME);
    let key = ApiKey::generate();
    let tenant = match existing {
        Some(tenant) => {
            store.add_api_key(&tenant.id, key.hash()).await?;
            tenant
        }
        None => {
            let new = NewTenant::parse(DEMO_NAME, "Europe/London")?;
            store
                .create_tenant(&TenantId::generate(), &new, key.hash())
                .await?
        }
    };
    let already_loaded = store
        .uploads(&tenant.id, 50)
        .await?
        .iter()
        .any(|upload| upload.rows_imported > 0);
    if !already_loaded {
        let input = flate2::read::GzDecoder::new(SAMPLE);
        let request = ImportRequest {
            filename: Some("online_retail_top40.csv".into()),
            ..ImportRequest::default()
        };
        let report = import::import_sales(Arc::clone(&store), &tenant, input, request)
            .await
            .context("importing the demo sample")?;
        tracing::info!(rows = report.rows_imported, "demo sample imported");
        // Forecast now, so the first page a newcomer opens already has them.
        refresher.mark_stale(&tenant.id);
        refresher.run_once().await;
        load_stock(store.as_ref(), &tenant.id).await?;
    }
    let link =
        crate::cli::sign_in_link(store.as_ref(), &tenant.id, &format!("http://{addr}")).await?;
    println!("OrderNimbus demo is running: open {link}");
    println!("  (a one-time link, valid 15 minutes; sign in later with the API key below)");
    println!("  demo tenant: {}", tenant.id);
    println!("  API key:     {}", key.expose());
    println!(
        "  try:         curl -H 'Authorization: Bearer {}' http://{addr}/api/v1/skus",
        key.expose()
    );
    Ok(())
}

/// Days of forecast demand the demo's made-up stock covers, cycled over the SKUs: some run out
/// within the lead time (at risk), most do not. The sample data has no stock; a retailer would
/// upload theirs (`POST /api/v1/inventory`).
const DEMO_COVER_DAYS: [usize; 5] = [4, 60, 10, 90, 35];

/// Gives each forecast series of the demo tenant a stock level, so reorder hints show.
async fn load_stock(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<()> {
    let forecasts = store.forecasts(tenant, None, None, None).await?;
    let now = chrono::Utc::now();
    // Stock for the series that sell at least a unit a day; the rest are too small to stock.
    let levels = forecasts
        .iter()
        .filter(|forecast| {
            forecast
                .points
                .iter()
                .take(28)
                .map(ForecastPoint::expected)
                .sum::<f64>()
                >= 28.0
        })
        .zip(DEMO_COVER_DAYS.iter().cycle())
        .map(|(forecast, days)| {
            let demand: f64 = forecast
                .points
                .iter()
                .take(*days)
                .map(ForecastPoint::expected)
                .sum();
            StockLevel::new(
                forecast.sku.clone(),
                forecast.location.clone(),
                demand.round(),
                None,
                None,
                now,
            )
            .map_err(|(field, error)| anyhow::anyhow!("demo stock {field}: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    store.put_stock(tenant, levels).await?;
    Ok(())
}
