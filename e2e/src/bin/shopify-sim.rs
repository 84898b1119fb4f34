//! `shopify-sim`: runs the Shopify Admin simulator until Ctrl-C.

use clap::Parser;
use ordernimbus_e2e::{ShopSeed, SimConfig, Simulator, SyntheticOrders};

/// Serves simulated Shopify shops for local development and end-to-end tests.
#[derive(Debug, Parser)]
#[command(name = "shopify-sim", version, about)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
    /// The app's client id.
    #[arg(long, env = "SHOPIFY_API_KEY")]
    api_key: String,
    /// The app's client secret.
    #[arg(long, env = "SHOPIFY_API_SECRET")]
    api_secret: String,
    /// The app's URL (webhooks go to `{app_url}/webhooks`).
    #[arg(long, env = "SHOPIFY_APP_URL", default_value = "http://127.0.0.1:8080")]
    app_url: String,
    /// A shop to simulate, e.g. `acme.myshopify.com` (repeatable).
    #[arg(long = "shop", default_value = "acme.myshopify.com")]
    shops: Vec<String>,
    /// Give every shop this many synthetic orders (generated lazily; a million is fine) instead of the
    /// 14 hand-made ones.
    #[arg(long)]
    orders: Option<u64>,
    /// Seed of the synthetic orders.
    #[arg(long, default_value_t = 1)]
    order_seed: u64,
    /// Days of history the synthetic orders spread over.
    #[arg(long, default_value_t = 365)]
    order_days: u32,
    /// A topic the app declares in `shopify.app.toml`, delivered to `{app_url}/webhooks` by the
    /// simulator itself, e.g. `bulk_operations/finish` (repeatable).
    #[arg(long = "webhook-topic")]
    webhook_topics: Vec<String>,
    /// Seconds a bulk query stays RUNNING before it completes.
    #[arg(long, default_value_t = 1)]
    bulk_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut config = SimConfig::new(&args.api_key, &args.api_secret, &args.app_url);
    config.app_webhook_topics = args.webhook_topics.clone();
    config.bulk_operation_duration = std::time::Duration::from_secs(args.bulk_seconds);
    let simulator = Simulator::start_on(&args.addr, config).await?;
    for shop in &args.shops {
        let mut seed = ShopSeed::new(shop);
        seed.synthetic_orders = args.orders.map(|n_orders| SyntheticOrders {
            days: args.order_days,
            ..SyntheticOrders::new(args.order_seed, n_orders)
        });
        simulator.add_shop(seed);
    }
    println!("admin URL template: {}", simulator.admin_url_template());
    for shop in &args.shops {
        println!(
            "install {shop}: {}",
            simulator.install_link(&shop.to_ascii_lowercase())
        );
    }
    tokio::select! {
        () = simulator.wait() => {}
        result = tokio::signal::ctrl_c() => result?,
    }
    Ok(())
}
