//! Absolute URLs for API responses, correct behind a reverse proxy.
//!
//! `server.public_url`, when set, is the base. Otherwise the base is the
//! request's [`Origin`](super::forwarded::Origin): scheme, host and the
//! path prefix the proxy mounted us under (nginx sends `X-Forwarded-Prefix:
//! /dev` for `/dev/main/...`), believed only from a trusted proxy.

use actix_web::HttpRequest;

use super::forwarded;
use super::state::AppState;

/// `scheme://host[/prefix]`, without a trailing slash.
pub fn base_url(req: &HttpRequest) -> String {
    let Some(state) = state(req) else { return String::new() };
    if !state.public_url.is_empty() {
        return state.public_url.clone();
    }
    forwarded::origin(req, &state.trusted_proxies, &state.local_address).base_url()
}

/// The path part of the base: what absolute-path links (`<base href>`) need.
pub fn base_path(req: &HttpRequest) -> String {
    let Some(state) = state(req) else { return String::new() };
    let public = &state.public_url;
    if public.is_empty() {
        return forwarded::origin(req, &state.trusted_proxies, &state.local_address).prefix;
    }
    let after_scheme = public.split_once("://").map_or(public.as_str(), |(_, rest)| rest);
    after_scheme.find('/').map_or_else(String::new, |slash| after_scheme[slash..].to_owned())
}

fn state(req: &HttpRequest) -> Option<&AppState> {
    req.app_data::<actix_web::web::Data<AppState>>().map(|data| data.get_ref())
}
