//! Fault injection: make the simulated Shopify slow, failing or forgetful on purpose.

use std::sync::Arc;
use std::time::Duration;

use crate::state::Shared;

/// A clone-able handle that arms faults on a running simulator.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Faults")
    }
}

impl Faults {
    /// The next `n` requests to the token endpoint answer `status` (e.g. 503) without being processed.
    pub fn fail_token_requests(&self, n: usize, status: u16) {
        self.shared
            .lock()
            .faults
            .token_failures
            .extend(std::iter::repeat_n(status, n));
    }

    /// Every token request waits `delay` before being answered (`Duration::ZERO` to stop).
    pub fn delay_token_requests(&self, delay: Duration) {
        self.shared.lock().faults.token_delay = (!delay.is_zero()).then_some(delay);
    }

    /// The next `n` GraphQL requests answer `status` (e.g. 502) before any checks.
    pub fn fail_graphql(&self, n: usize, status: u16) {
        self.shared
            .lock()
            .faults
            .graphql_failures
            .extend(std::iter::repeat_n(status, n));
    }

    /// Every GraphQL request waits `delay` before being answered (`Duration::ZERO` to stop).
    pub fn delay_graphql(&self, delay: Duration) {
        self.shared.lock().faults.graphql_delay = (!delay.is_zero()).then_some(delay);
    }

    /// Revokes every access and refresh token of `shop` without uninstalling (as a secret revocation does).
    pub fn revoke_tokens(&self, shop: &str) {
        let mut state = self.shared.lock();
        for token in state.tokens.iter_mut().filter(|token| token.shop == shop) {
            token.revoked = true;
        }
    }

    /// Makes every access token of `shop` expire now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, shop: &str) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        for token in state
            .tokens
            .iter_mut()
            .filter(|token| token.shop == shop && token.kind != crate::TokenKind::Refresh)
        {
            token.expires_at = Some(now);
        }
    }

    /// Sets the points left in `shop`'s GraphQL bucket (0 drains it).
    pub fn set_available_points(&self, shop: &str, points: f64) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        if let Some(record) = state.shops.get_mut(shop) {
            record.bucket.available = points.clamp(0.0, record.bucket.limits.maximum_available);
            record.bucket.updated_at = now;
        }
    }

    /// `THROTTLED` answers armed by [`Self::throttle_graphql`] and not served yet.
    pub fn pending_graphql_throttles(&self) -> usize {
        self.shared.lock().faults.graphql_throttles.len()
    }

    /// The next `n` GraphQL requests answer `THROTTLED` whatever the bucket holds, with HTTP `status`
    /// (Shopify sends 200 or 429; 429 carries `Retry-After`).
    pub fn throttle_graphql(&self, n: usize, status: u16) {
        self.shared
            .lock()
            .faults
            .graphql_throttles
            .extend(std::iter::repeat_n(status, n));
    }

    /// The next bulk query started (on any shop) goes wrong as `fault` says; several armed faults apply
    /// to successive operations.
    pub fn fail_next_bulk_query(&self, fault: crate::BulkFault) {
        self.shared.lock().bulk.arm(fault);
    }

    /// The next `n` downloads of a bulk result close the connection after `after_bytes` bytes of body
    /// (a following `Range` request works).
    pub fn cut_bulk_downloads(&self, n: usize, after_bytes: u64) {
        self.shared.lock().bulk.cut_downloads(n, after_bytes);
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.faults = crate::state::FaultState::default();
        state.bulk.clear_faults();
    }
}
