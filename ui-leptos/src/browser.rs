//! The browser half (feature `hydrate`): the viewer read back from the page's `<meta>` tags, API
//! calls with `fetch` (a fresh App Bridge session token per call when embedded; the session
//! cookie and its CSRF token when standalone), uploads with progress, and file downloads.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::context::{Mode, PageContext};

fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|window| window.document())
}

fn meta(name: &str) -> Option<String> {
    document()?
        .query_selector(&format!("meta[name=\"{name}\"]"))
        .ok()??
        .get_attribute("content")
}

/// The viewer, as the server wrote it into the page.
pub(crate) fn page_context() -> PageContext {
    let mode = if meta("ordernimbus-mode").as_deref() == Some("embedded") {
        Mode::Embedded {
            api_key: meta("shopify-api-key").unwrap_or_default(),
            app_bridge_url: String::new(),
        }
    } else {
        Mode::Standalone {
            tenant_name: meta("ordernimbus-tenant").unwrap_or_default(),
            csrf_token: meta("csrf-token").unwrap_or_default(),
        }
    };
    PageContext {
        mode,
        assets_built: true,
        sync_available: meta("ordernimbus-sync").as_deref() == Some("available"),
    }
}

/// Marks `<body data-hydrated="true">` once the app is live.
pub(crate) fn mark_hydrated() {
    if let Some(body) = document().and_then(|document| document.body()) {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

fn describe(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            value
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
        })
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// A fresh session token from App Bridge (`shopify.idToken()`).
async fn id_token() -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let shopify =
        Reflect::get(&window, &JsValue::from_str("shopify")).map_err(|error| describe(&error))?;
    if shopify.is_undefined() {
        return Err("App Bridge is not loaded".to_owned());
    }
    let function: Function = Reflect::get(&shopify, &JsValue::from_str("idToken"))
        .map_err(|error| describe(&error))?
        .dyn_into()
        .map_err(|_| "shopify.idToken is not a function".to_owned())?;
    let promise: Promise = function
        .call0(&shopify)
        .map_err(|error| describe(&error))?
        .dyn_into()
        .map_err(|_| "shopify.idToken() did not return a promise".to_owned())?;
    JsFuture::from(promise)
        .await
        .map_err(|error| describe(&error))?
        .as_string()
        .ok_or_else(|| "shopify.idToken() gave no token".to_owned())
}

/// The credentials headers for one call.
async fn credentials(mode: &Mode) -> Result<Vec<(&'static str, String)>, String> {
    Ok(match mode {
        Mode::Embedded { .. } => vec![("Authorization", format!("Bearer {}", id_token().await?))],
        Mode::Standalone { csrf_token, .. } => vec![("X-CSRF-Token", csrf_token.clone())],
    })
}

/// One API call with `fetch`; returns status and body text.
pub(crate) async fn fetch(
    mode: &Mode,
    method: &str,
    path: &str,
    body: Option<(String, String)>,
) -> Result<(u16, String), String> {
    let window = web_sys::window().ok_or("no window")?;
    let headers = web_sys::Headers::new().map_err(|error| describe(&error))?;
    headers
        .set("Accept", "application/json")
        .map_err(|error| describe(&error))?;
    for (name, value) in credentials(mode).await? {
        headers
            .set(name, &value)
            .map_err(|error| describe(&error))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    if let Some((content_type, text)) = body {
        headers
            .set("Content-Type", &content_type)
            .map_err(|error| describe(&error))?;
        init.set_body(&JsValue::from_str(&text));
    }
    init.set_headers(&headers);
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|error| describe(&error))?
        .dyn_into()
        .map_err(|_| "fetch gave no response".to_owned())?;
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(|error| describe(&error))?)
        .await
        .map_err(|error| describe(&error))?
        .as_string()
        .unwrap_or_default();
    Ok((status, text))
}

/// Uploads a file with `XMLHttpRequest` (fetch reports no upload progress); `progress` gets the
/// share sent, 0 to 1. Returns status and body text.
pub(crate) async fn upload(
    mode: &Mode,
    path: &str,
    file: web_sys::File,
    progress: impl Fn(f64) + 'static,
) -> Result<(u16, String), String> {
    let headers = credentials(mode).await?;
    let request = web_sys::XmlHttpRequest::new().map_err(|error| describe(&error))?;
    request
        .open("POST", path)
        .map_err(|error| describe(&error))?;
    for (name, value) in headers {
        request
            .set_request_header(name, &value)
            .map_err(|error| describe(&error))?;
    }
    request
        .set_request_header("Content-Type", "text/csv")
        .map_err(|error| describe(&error))?;
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |event: web_sys::ProgressEvent| {
            if event.length_computable() && event.total() > 0.0 {
                progress(event.loaded() / event.total());
            }
        });
    request
        .upload()
        .map_err(|error| describe(&error))?
        .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    let finished = Promise::new(&mut |resolve, reject| {
        let done = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let failed = Closure::once_into_js(move || {
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("the upload failed"));
        });
        request.set_onload(Some(done.unchecked_ref()));
        request.set_onerror(Some(failed.unchecked_ref()));
    });
    request
        .send_with_opt_blob(Some(&file))
        .map_err(|error| describe(&error))?;
    JsFuture::from(finished)
        .await
        .map_err(|error| describe(&error))?;
    drop(on_progress);
    let status = request.status().map_err(|error| describe(&error))?;
    let text = request
        .response_text()
        .map_err(|error| describe(&error))?
        .unwrap_or_default();
    Ok((status, text))
}

/// Offers `text` to the user as a file download.
pub(crate) fn download(filename: &str, content_type: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(content_type);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|error| describe(&error))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|error| describe(&error))?;
    let document = document().ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|error| describe(&error))?
        .dyn_into()
        .map_err(|_| "not an anchor".to_owned())?;
    anchor.set_href(&url);
    anchor.set_download(filename);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
