//! A stand-in for App Bridge (`https://cdn.shopify.com/shopifycloud/app-bridge.js`), for browser
//! tests that cannot reach Shopify's CDN: `GET /app-bridge.js` defines `window.shopify` with
//! `idToken()`, which fetches a fresh session token for the page's shop from
//! `GET /app-bridge/session-token?shop=` (signed like Admin's, user 1, 60 s). Nothing else of App
//! Bridge is simulated: `<ui-nav-menu>` stays an inert element.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::session_token;
use crate::state::Shared;

/// `GET /app-bridge.js`.
pub(crate) async fn script(State(shared): State<Arc<Shared>>) -> Response {
    let script = format!(
        r#"(function () {{
  var params = new URLSearchParams(window.location.search);
  var shop = params.get("shop") || window.sessionStorage.getItem("shopify-sim-shop");
  if (shop) {{ window.sessionStorage.setItem("shopify-sim-shop", shop); }}
  window.shopify = {{
    config: {{ shop: shop }},
    idToken: function () {{
      return fetch("{base}/app-bridge/session-token?shop=" + encodeURIComponent(shop || ""))
        .then(function (response) {{
          if (!response.ok) {{ throw new Error("no session token: " + response.status); }}
          return response.text();
        }});
    }}
  }};
}})();
"#,
        base = shared.base_url
    );
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        script,
    )
        .into_response()
}

/// Query of `GET /app-bridge/session-token`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    shop: String,
}

/// `GET /app-bridge/session-token?shop=`: a fresh session token for a known shop.
pub(crate) async fn session_token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let (api_key, secret, known) = {
        let state = shared.lock();
        (
            state.config.api_key.clone(),
            state.config.api_secret.clone(),
            state.shops.contains_key(&query.shop),
        )
    };
    if !known {
        return (
            StatusCode::NOT_FOUND,
            [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
            "unknown shop",
        )
            .into_response();
    }
    let claims = session_token::standard_claims(&api_key, &query.shop, 1, shared.clock.now());
    (
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        session_token::sign(&secret, &claims),
    )
        .into_response()
}
