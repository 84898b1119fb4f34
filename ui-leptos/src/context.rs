//! Who is looking: embedded in Shopify Admin or a standalone tenant, and whether the browser
//! bundle was built. The server reads it from the request (the app's gate puts it there); the
//! browser reads it back from the `<meta>` tags the server wrote.

/// How the viewer is signed in, and what the page needs to call the API for them.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Inside Shopify Admin: App Bridge supplies a fresh session token for every call.
    Embedded {
        /// The app's client id (`<meta name="shopify-api-key">`).
        api_key: String,
        /// The App Bridge script.
        app_bridge_url: String,
    },
    /// A standalone tenant with a session cookie; unsafe calls carry the CSRF token.
    Standalone {
        /// The tenant's name, shown in the top bar.
        tenant_name: String,
        /// Echoed in `X-CSRF-Token` and in forms.
        csrf_token: String,
    },
}

/// What a page render needs to know about its viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct PageContext {
    /// Embedded or standalone.
    pub mode: Mode,
    /// The wasm bundle exists, so the page can hydrate.
    pub assets_built: bool,
    /// The server offers `GET /api/v1/sync` (Shopify bulk sync status).
    pub sync_available: bool,
}

impl PageContext {
    /// The viewer is a Shopify shop (webhooks and sync concern it); standalone tenants sell
    /// through CSV uploads.
    pub fn is_shop(&self) -> bool {
        matches!(self.mode, Mode::Embedded { .. })
    }
}

impl Default for PageContext {
    fn default() -> Self {
        Self {
            mode: Mode::Standalone {
                tenant_name: String::new(),
                csrf_token: String::new(),
            },
            assets_built: false,
            sync_available: false,
        }
    }
}

/// The viewer of the page being rendered (server) or shown (browser).
pub fn page_context() -> PageContext {
    #[cfg(feature = "ssr")]
    {
        crate::server::request_context()
            .map(|context| context.page)
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        crate::browser::page_context()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        PageContext::default()
    }
}
