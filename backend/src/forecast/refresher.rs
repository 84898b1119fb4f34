//! The background job that keeps stored forecasts fresh. New sales mark a tenant stale; after a
//! quiet period (debounce) its forecasts are recomputed, so reads stay store reads and a burst of
//! uploads costs one refit.
//!
//! Two kinds of new sales:
//! - an upload, an import, a finished order sync ([`Refresher::mark_stale`]): refit as soon as the
//!   debounce has passed, since someone is waiting to see the result;
//! - orders arriving one by one from webhooks ([`Refresher::mark_new_orders`]): refit at most once
//!   per `min_interval` per tenant. Forecasts are of daily demand, so a refit per order would
//!   rewrite every series of a busy shop every few seconds (on DynamoDB, almost all of the table's
//!   writes) for no visible change. The last refit's time is read from the stored overview, so
//!   several `serve` or `worker` processes share the interval instead of each refitting.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::refresh_tenant;
use crate::domain::TenantId;
use crate::store::Store;

/// How soon a stale tenant is refitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// At the next round.
    Now,
    /// At the next round, unless the stored forecasts are younger than the minimum interval.
    Routine,
    /// Not before this time; then as `Routine`.
    After(DateTime<Utc>),
}

/// Marks tenants stale and refreshes them; shared by handlers and the background loop.
pub struct Refresher {
    store: Arc<dyn Store>,
    min_interval: Duration,
    stale: Mutex<BTreeMap<TenantId, Due>>,
    wake: Notify,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Refresher")
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

/// The default least time between two refits of one tenant for orders arriving one by one.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(60 * 60);

impl Refresher {
    /// A refresher over `store` with [`DEFAULT_MIN_INTERVAL`]; nothing runs until
    /// [`Refresher::run`] or [`Refresher::run_once`].
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Self::with_min_interval(store, DEFAULT_MIN_INTERVAL)
    }

    /// A refresher that refits a tenant for new orders at most once per `min_interval`.
    pub fn with_min_interval(store: Arc<dyn Store>, min_interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            min_interval,
            stale: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        })
    }

    /// Records that `tenant` has new sales someone waits to see (an upload, an import, a sync):
    /// refit at the next round. The set holds each tenant once, so it stays bounded.
    pub fn mark_stale(&self, tenant: &TenantId) {
        self.mark(tenant, Due::Now);
    }

    /// Records that `tenant` has new orders from webhooks: refit at the next round, or once its
    /// forecasts are `min_interval` old.
    pub fn mark_new_orders(&self, tenant: &TenantId) {
        self.mark(tenant, Due::Routine);
    }

    fn mark(&self, tenant: &TenantId, due: Due) {
        self.keep(tenant, due);
        self.wake.notify_one();
    }

    /// Keeps `tenant` pending without waking the loop (a deferred or failed refit: waking would
    /// spin the loop on it).
    fn keep(&self, tenant: &TenantId, due: Due) {
        if let Ok(mut stale) = self.stale.lock() {
            let entry = stale.entry(tenant.clone()).or_insert(due);
            if due == Due::Now {
                *entry = Due::Now;
            }
        }
    }

    /// When the stored forecasts of `tenant` were made, if any.
    async fn last_refit(&self, tenant: &TenantId) -> Option<DateTime<Utc>> {
        match self.store.overview(tenant).await {
            Ok(overview) => overview.map(|overview| overview.generated_at),
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, %error, "reading the last refit failed");
                None
            }
        }
    }

    /// Refreshes every tenant that is due; returns them. A tenant whose forecasts are younger than
    /// the minimum interval stays pending until they are not; a failed tenant is marked again.
    pub async fn run_once(&self) -> Vec<TenantId> {
        let now = Utc::now();
        let pending: Vec<(TenantId, Due)> = self
            .stale
            .lock()
            .map(|mut stale| std::mem::take(&mut *stale).into_iter().collect())
            .unwrap_or_default();
        let min_interval = chrono::Duration::from_std(self.min_interval).unwrap_or_default();
        let mut refreshed = Vec::new();
        for (tenant, due) in pending {
            let wait_until = match due {
                Due::Now => None,
                Due::After(time) if time > now => Some(time),
                Due::Routine | Due::After(_) => self
                    .last_refit(&tenant)
                    .await
                    .map(|last| last + min_interval)
                    .filter(|next| *next > now),
            };
            if let Some(time) = wait_until {
                self.keep(&tenant, Due::After(time));
                continue;
            }
            match refresh_tenant(Arc::clone(&self.store), &tenant, Arc::new(|_, _| {})).await {
                Ok(_) => refreshed.push(tenant),
                Err(error) => {
                    tracing::warn!(tenant_id = %tenant, %error, "forecast refresh failed; will retry");
                    self.keep(&tenant, due);
                }
            }
        }
        refreshed
    }

    /// The earliest deferred refit, if any tenant waits only for its interval.
    fn next_deferred(&self) -> Option<DateTime<Utc>> {
        let stale = self.stale.lock().ok()?;
        stale
            .values()
            .filter_map(|due| match due {
                Due::After(time) => Some(*time),
                Due::Now | Due::Routine => None,
            })
            .min()
    }

    /// Runs forever: waits for a stale mark (or a deferred refit's time), lets `debounce` pass so
    /// bursts coalesce, refreshes what is due.
    pub async fn run(self: Arc<Self>, debounce: Duration) {
        loop {
            match self.next_deferred() {
                Some(time) => {
                    let wait = (time - Utc::now()).to_std().unwrap_or_default();
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                None => self.wake.notified().await,
            }
            tokio::time::sleep(debounce).await;
            self.run_once().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{ApiKey, NewTenant, Tenant};
    use crate::import::{ImportRequest, import_sales};
    use crate::store::sqlite::SqliteStore;

    /// A store with one tenant that has 60 days of sales of one SKU.
    async fn tenant_with_sales() -> (tempfile::TempDir, Arc<dyn Store>, Tenant) {
        let directory = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(directory.path().join("store.sqlite3")).unwrap());
        let tenant = store
            .create_tenant(
                &TenantId::generate(),
                &NewTenant::parse("Shop", "UTC").unwrap(),
                ApiKey::generate().hash(),
            )
            .await
            .unwrap();
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let mut csv = String::from("date,sku,quantity\n");
        for day in 0..60 {
            let date = start + chrono::Days::new(day);
            csv.push_str(&format!("{date},SKU-1,{}\n", 3 + day % 5));
        }
        import_sales(
            Arc::clone(&store),
            &tenant,
            std::io::Cursor::new(csv.into_bytes()),
            ImportRequest::default(),
        )
        .await
        .unwrap();
        (directory, store, tenant)
    }

    #[tokio::test]
    async fn new_orders_refit_a_tenant_at_most_once_per_interval_and_uploads_refit_at_once() {
        let (_directory, store, tenant) = tenant_with_sales().await;
        let refresher = Refresher::with_min_interval(Arc::clone(&store), Duration::from_secs(3600));

        // No forecasts yet: the first orders refit at once.
        refresher.mark_new_orders(&tenant.id);
        assert_eq!(refresher.run_once().await, vec![tenant.id.clone()]);
        let made = store
            .overview(&tenant.id)
            .await
            .unwrap()
            .unwrap()
            .generated_at;

        // More orders within the hour: deferred to an hour after the stored forecasts.
        refresher.mark_new_orders(&tenant.id);
        assert!(refresher.run_once().await.is_empty());
        let deferred = refresher.next_deferred().unwrap();
        assert_eq!(deferred, made + chrono::Duration::hours(1));
        assert_eq!(
            store
                .overview(&tenant.id)
                .await
                .unwrap()
                .unwrap()
                .generated_at,
            made,
            "deferred refits write nothing"
        );
        // Further orders keep the same deadline.
        refresher.mark_new_orders(&tenant.id);
        assert!(refresher.run_once().await.is_empty());
        assert_eq!(refresher.next_deferred(), Some(deferred));

        // An upload does not wait for the interval, and clears the deferred refit.
        refresher.mark_stale(&tenant.id);
        assert_eq!(refresher.run_once().await, vec![tenant.id.clone()]);
        assert_eq!(refresher.next_deferred(), None);
        assert!(
            store
                .overview(&tenant.id)
                .await
                .unwrap()
                .unwrap()
                .generated_at
                > made
        );
    }

    #[tokio::test]
    async fn the_interval_is_read_from_the_store_so_processes_share_it() {
        let (_directory, store, tenant) = tenant_with_sales().await;
        // Another process refitted the tenant a moment ago.
        let other = Refresher::new(Arc::clone(&store));
        other.mark_stale(&tenant.id);
        assert_eq!(other.run_once().await.len(), 1);

        let this = Refresher::with_min_interval(Arc::clone(&store), Duration::from_secs(3600));
        this.mark_new_orders(&tenant.id);
        assert!(
            this.run_once().await.is_empty(),
            "refitted again within the interval"
        );
        assert!(this.next_deferred().is_some());

        // With no interval, orders refit every round.
        let eager = Refresher::with_min_interval(Arc::clone(&store), Duration::ZERO);
        eager.mark_new_orders(&tenant.id);
        assert_eq!(eager.run_once().await, vec![tenant.id.clone()]);
    }
}
