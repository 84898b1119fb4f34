//! A started simulator with one shop, a plain HTTP client and helpers per endpoint.

use std::time::Duration;

use ordernimbus_e2e::{ShopSeed, SimConfig, Simulator, ThrottleLimits};
use serde_json::{Value, json};

pub const SHOP: &str = "acme.myshopify.com";
pub const API_KEY: &str = "sim-client-id";
pub const SECRET: &str = "sim-client-secret";

pub struct Harness {
    pub sim: Simulator,
    pub http: reqwest::Client,
}

/// Options a test may change before the simulator starts.
pub struct Setup {
    pub config: SimConfig,
    pub seed: ShopSeed,
}

impl Setup {
    pub fn new() -> Self {
        let mut config = SimConfig::new(API_KEY, SECRET, "http://127.0.0.1:9");
        config.retry_delays = vec![
            Duration::from_millis(10),
            Duration::from_millis(10),
            Duration::from_millis(10),
        ];
        Self {
            config,
            seed: ShopSeed::new(SHOP),
        }
    }

    pub fn tiny_bucket(mut self, maximum_available: f64, restore_rate: f64) -> Self {
        self.seed.throttle = Some(ThrottleLimits {
            maximum_available,
            restore_rate,
        });
        self
    }

    pub async fn start(self) -> Harness {
        let sim = Simulator::start(self.config)
            .await
            .expect("the simulator starts");
        sim.add_shop(self.seed);
        sim.clock().freeze();
        Harness {
            sim,
            http: reqwest::Client::new(),
        }
    }
}

impl Harness {
    pub async fn start() -> Self {
        Setup::new().start().await
    }

    pub fn token_url(&self) -> String {
        format!("{}/admin/oauth/access_token", self.sim.admin_url(SHOP))
    }

    pub async fn post_token(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.token_url())
            .json(&body)
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Installs through token exchange of a fresh session token; returns the token response.
    pub async fn install(&self) -> Value {
        let (status, body) = self
            .post_token(json!({
                "client_id": API_KEY,
                "client_secret": SECRET,
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": self.sim.session_token(SHOP, 42),
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
                "expiring": "1",
            }))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// An access token of an installed shop.
    pub async fn access_token(&self) -> String {
        self.install().await["access_token"]
            .as_str()
            .expect("a token response has access_token")
            .to_owned()
    }

    pub async fn graphql_at(
        &self,
        version: &str,
        token: &str,
        query: &str,
        variables: Value,
    ) -> (u16, Value, Option<String>) {
        let response = self
            .http
            .post(format!(
                "{}/admin/api/{version}/graphql.json",
                self.sim.admin_url(SHOP)
            ))
            .header("X-Shopify-Access-Token", token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("the GraphQL endpoint answers");
        let status = response.status().as_u16();
        let version = response
            .headers()
            .get("x-shopify-api-version")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            version,
        )
    }

    pub async fn graphql(&self, token: &str, query: &str) -> (u16, Value) {
        let (status, body, _) = self.graphql_at("2026-10", token, query, json!({})).await;
        (status, body)
    }
}

/// Query parameters of a URL, in order, percent-decoded.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

pub fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(candidate, _)| candidate == name)
        .map(|(_, value)| value.clone())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3])
                .expect("percent escapes are ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("percent escapes are hex"));
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).expect("decoded query values are UTF-8")
}

/// An independent implementation of Shopify's query HMAC: drop `hmac`, sort, `name=value` joined by
/// `&` with values encoded like `URLSearchParams` but `%20` for space, HMAC-SHA256, lower-case hex.
pub fn expected_query_hmac(secret: &str, pairs: &[(String, String)]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut signed: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(name, _)| name != "hmac" && name != "signature")
        .collect();
    signed.sort_by(|left, right| left.0.cmp(&right.0));
    let encode = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    (byte as char).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect::<String>()
    };
    let message = signed
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
