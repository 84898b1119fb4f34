//! The five pages and the pieces they share: page headers, loading skeletons, error banners and
//! empty states.

pub mod data;
pub mod overview;
pub mod product;
pub mod products;
pub mod settings;

use leptos::prelude::*;

use crate::api::ApiFailure;

/// A page's title and one-line description.
#[component]
pub fn PageHeader(title: &'static str, #[prop(into)] subtitle: String) -> impl IntoView {
    view! {
        <div class="PageHeader">
            <h1 class="PageHeader-title">{title}</h1>
            <p class="PageHeader-subtitle">{subtitle}</p>
        </div>
    }
}

/// Shown while data loads (in the browser; the server renders pages with their data).
#[component]
pub fn Loading() -> impl IntoView {
    view! {
        <div class="Card Skeleton" role="status" aria-live="polite">
            <span class="VisuallyHidden">"Loading…"</span>
            <div class="Skeleton-line"></div>
            <div class="Skeleton-line Skeleton-line--short"></div>
        </div>
    }
}

/// A failed call, in words.
#[component]
pub fn ErrorBanner(failure: ApiFailure) -> impl IntoView {
    let hint = match failure.status {
        401 => "Your session ended. Reload the page to sign in again.",
        404 => "Check the link, or find it again from the overview or the products list.",
        0 => "Check your connection and reload the page.",
        _ => "Try again in a moment.",
    };
    // The server's messages are phrases ("SKU X at Y not found"): make them sentences.
    let mut chars = failure.message.chars();
    let mut message: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !message.ends_with(['.', '!', '?']) {
        message.push('.');
    }
    // A 404's message says what is missing; anything else is our failure.
    let title = if failure.status == 404 {
        ""
    } else {
        "Something went wrong. "
    };
    view! {
        <div class="Banner Banner--critical" role="alert">
            <strong>{title}</strong>
            {message}
            " "
            {hint}
        </div>
    }
}

/// Nothing to show yet, and what to do about it.
#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="Card EmptyState">
            <h2 class="Heading">{title}</h2>
            {children()}
        </div>
    }
}
