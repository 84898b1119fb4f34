//! `shopify-sim`: runs the Shopify Admin simulator until Ctrl-C.

use clap::Parser;
use ordernimbus_e2e::{ShopSeed, SimConfig, Simulator};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let config = SimConfig::new(&args.api_key, &args.api_secret, &args.app_url);
    let simulator = Simulator::start_on(&args.addr, config).await?;
    for shop in &args.shops {
        simulator.add_shop(ShopSeed::new(shop));
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
