//! The HTTP server, assembled as `actix_web::HttpServer` assembles it (same
//! timeouts, graceful shutdown and TCP_NODELAY), with two differences:
//!
//! - every connection reads through [`OneAtATime`], so pipelined requests are
//!   answered one after the other, each with its own request's framing;
//! - an upload that sends `Expect: 100-continue` is checked before
//!   `100 Continue` invites its body: a declared body over the limit, a body
//!   that is not `multipart/form-data`, or an instance at its upload cap is
//!   answered at once, and the client never sends the bytes.

use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpMessage, HttpService, KeepAlive, Request};
use actix_service::{IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServiceResponse};
use actix_web::http::Method;
use actix_web::{App, web};

use crate::config::ServerSettings;
use crate::web::one_at_a_time::OneAtATime;
use crate::web::routes::upload::check_upload_head;
use crate::web::state::AppState;

/// actix-web's defaults, as `HttpServer` sets them.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves the apps made by `app` on `listener` until stopped.
pub fn serve<F, T, B>(
    listener: TcpListener,
    settings: &ServerSettings,
    state: web::Data<AppState>,
    app: F,
) -> std::io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let address = listener.local_addr()?;
    let mut builder = actix_server::Server::build().shutdown_timeout(settings.shutdown_timeout_secs);
    if settings.workers > 0 {
        builder = builder.workers(settings.workers);
    }
    let draining = builder.graceful_shutdown_signal();
    let server = builder
        .listen("picshelf", listener, move || {
            let draining = draining.clone();
            let state = state.clone();
            let app = app().into_factory().map_err(|err: actix_web::Error| err.error_response());
            let http = HttpService::build()
                .keep_alive(KeepAlive::default())
                .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .local_addr(address)
                .graceful_shutdown_signal(move || {
                    let draining = draining.clone();
                    async move { draining.notified().await }
                })
                .expect(fn_service(move |request: Request| {
                    let state = state.clone();
                    async move { before_continue(request, &state) }
                }))
                .finish(map_config(app, |_| AppConfig::default()));
            fn_service(|io: tokio::net::TcpStream| async move {
                // Headers and a small body often leave in two writes; without
                // NODELAY the second waits for the client's delayed ACK (40 ms).
                io.set_nodelay(true)?;
                let peer = io.peer_addr().ok();
                Ok::<_, std::io::Error>((OneAtATime::new(io), actix_http::Protocol::Http1, peer))
            })
            .map_err(actix_http::error::DispatchError::Io)
            .and_then(http)
        })?
        .run();
    Ok(server)
}

/// `Expect: 100-continue`: an upload that would be refused is refused now.
fn before_continue(request: Request, state: &AppState) -> Result<Request, actix_web::Error> {
    if request.method() == Method::POST && request.uri().path() == "/main/upload" {
        check_upload_head(request.headers(), state)?;
    }
    Ok(request)
}
