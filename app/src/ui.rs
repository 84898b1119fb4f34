//! Mounts the Leptos UI (`ordernimbus_ui`) at `/app`: its pages behind the gate that decides who
//! may see them (`http::document_access`: a verified session token when embedded, a session
//! cookie when standalone, else the bounce or sign-in page), each page request carrying the
//! viewer and an in-process handle on the JSON API that authenticates as that viewer; plus the
//! stylesheet and browser bundle.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use ordernimbus_backend::http::{self, AppState, DocumentAccess};
use ordernimbus_ui::server::{ApiHandler, RequestContext, ServerApi};
use ordernimbus_ui::{Mode, PageContext};
use tower::ServiceExt;

/// What the gate needs.
#[derive(Clone)]
struct Gate {
    state: AppState,
    api: ApiHandler,
    assets_built: bool,
    /// Whether the API has `GET /api/v1/sync`, asked once.
    sync_available: Arc<tokio::sync::OnceCell<bool>>,
}

impl Gate {
    /// Asks the API router, without credentials, whether `/api/v1/sync` exists: an unknown route
    /// is a 404, a known one refuses the anonymous caller first.
    async fn sync_available(&self) -> bool {
        *self
            .sync_available
            .get_or_init(|| async {
                let request = axum::http::Request::get("/api/v1/sync")
                    .body(axum::body::Body::empty())
                    .map(|request| (self.api)(request));
                match request {
                    Ok(response) => response.await.status() != axum::http::StatusCode::NOT_FOUND,
                    Err(_) => false,
                }
            })
            .await
    }
}

/// The UI's routes: pages under `/app` (gated), `/app/assets/app.css` and `/pkg/*`.
pub fn router(state: AppState, site_root: &Path) -> Router {
    let options = ordernimbus_ui::server::options(site_root);
    let assets_built = ordernimbus_ui::server::assets_built(site_root);
    if !assets_built {
        tracing::warn!(
            site_dir = %site_root.display(),
            "UI assets not built (run scripts/build-ui.sh): pages are served server-rendered only"
        );
    }
    let api_router = http::router(state.clone());
    let api: ApiHandler = Arc::new(move |request| {
        let router = api_router.clone();
        Box::pin(async move {
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    });
    let gate = Gate {
        state,
        api,
        assets_built,
        sync_available: Arc::default(),
    };
    ordernimbus_ui::server::pages(&options)
        .layer(middleware::from_fn_with_state(gate, admit))
        .merge(ordernimbus_ui::server::assets(&options))
}

/// Lets a page request through with its viewer attached, or answers with the bounce or sign-in
/// redirect; every document gets its frame policy.
async fn admit(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let access =
        match http::document_access(&gate.state, request.uri().query(), request.headers()).await {
            Ok(access) => access,
            Err(response) => return response,
        };
    let mode = match &access {
        DocumentAccess::Embedded {
            api_key,
            app_bridge_url,
            ..
        } => Mode::Embedded {
            api_key: api_key.clone(),
            app_bridge_url: app_bridge_url.clone(),
        },
        DocumentAccess::Standalone {
            tenant_name,
            csrf_token,
            ..
        } => Mode::Standalone {
            tenant_name: tenant_name.clone(),
            csrf_token: csrf_token.clone(),
        },
    };
    request.extensions_mut().insert(RequestContext {
        page: PageContext {
            mode,
            assets_built: gate.assets_built,
            sync_available: gate.sync_available().await,
        },
        api: ServerApi::new(gate.api.clone(), access.api_headers()),
    });
    let response = next.run(request).await;
    http::with_frames(response, access.frame_policy())
}
