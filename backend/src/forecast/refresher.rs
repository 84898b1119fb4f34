//! The background job that keeps stored forecasts fresh: new sales mark a tenant stale; after a quiet
//! period (debounce) its forecasts are recomputed, so reads stay store reads and a burst of uploads
//! costs one refit.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::refresh_tenant;
use crate::domain::TenantId;
use crate::store::Store;

/// Marks tenants stale and refreshes them; shared by handlers and the background loop.
pub struct Refresher {
    store: Arc<dyn Store>,
    stale: Mutex<BTreeSet<TenantId>>,
    wake: Notify,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Refresher").finish_non_exhaustive()
    }
}

impl Refresher {
    /// A refresher over `store`; nothing runs until [`Refresher::run`] or [`Refresher::run_once`].
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            stale: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
        })
    }

    /// Records that `tenant` has new sales. The set holds each tenant once, so it stays bounded.
    pub fn mark_stale(&self, tenant: &TenantId) {
        if let Ok(mut stale) = self.stale.lock() {
            stale.insert(tenant.clone());
        }
        self.wake.notify_one();
    }

    /// Refreshes every tenant marked stale so far; returns them. A failed tenant is marked again.
    pub async fn run_once(&self) -> Vec<TenantId> {
        let tenants: Vec<TenantId> = self
            .stale
            .lock()
            .map(|mut stale| std::mem::take(&mut *stale).into_iter().collect())
            .unwrap_or_default();
        let mut refreshed = Vec::new();
        for tenant in tenants {
            match refresh_tenant(Arc::clone(&self.store), &tenant, Arc::new(|_, _| {})).await {
                Ok(_) => refreshed.push(tenant),
                Err(error) => {
                    tracing::warn!(tenant_id = %tenant, %error, "forecast refresh failed; will retry");
                    if let Ok(mut stale) = self.stale.lock() {
                        stale.insert(tenant);
                    }
                }
            }
        }
        refreshed
    }

    /// Runs forever: waits for a stale mark, lets `debounce` pass so bursts coalesce, refreshes.
    pub async fn run(self: Arc<Self>, debounce: Duration) {
        loop {
            self.wake.notified().await;
            tokio::time::sleep(debounce).await;
            self.run_once().await;
        }
    }
}
