//! End-to-end tests of the `ordernimbus` binary: CLI commands and the server process.

#![allow(clippy::unwrap_used)]

mod cloud;
mod forecast;
mod import;
mod inventory;
mod serve;
mod webhooks;

use std::path::Path;
use std::process::{Command, Output};

pub fn ordernimbus(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordernimbus"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("ORDERNIMBUS_LOG", "warn")
        .output()
        .unwrap()
}

/// Creates a tenant through the CLI; returns (tenant_id, api_key).
pub fn create_tenant(data_dir: &Path, timezone: &str) -> (String, String) {
    let output = ordernimbus(
        data_dir,
        &[
            "tenants",
            "create",
            "--name",
            "CLI shop",
            "--timezone",
            timezone,
            "--json",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        created["tenant_id"].as_str().unwrap().to_owned(),
        created["api_key"].as_str().unwrap().to_owned(),
    )
}
