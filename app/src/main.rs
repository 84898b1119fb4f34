//! The `ordernimbus` binary: parses the command line, wires adapters and runs the chosen command.
//! It is the only crate that reads the environment or names a concrete adapter.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ordernimbus::config::{Cli, Command, LogFormat};
use ordernimbus::{cli, wiring};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: ordernimbus::Allocator = ordernimbus::Allocator {};

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("ORDERNIMBUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Serve(args) => wiring::serve(&cli, args).await,
            Command::Tenants(command) => cli::tenants(&cli, command).await,
            Command::Import(args) => cli::import(&cli, args).await,
            Command::Forecast(args) => cli::forecast(&cli, args).await,
            Command::Inventory(args) => cli::inventory(&cli, args).await,
            Command::Compliance(command) => cli::compliance(&cli, command).await,
            Command::Webhooks(command) => cli::webhooks::run(&cli, command).await,
            Command::Worker(args) => wiring::worker(&cli, args).await,
            Command::Migrate => wiring::migrate(&cli).await,
            Command::Sync(args) => cli::sync(&cli, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
