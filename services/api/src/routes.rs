//! Every route the API serves, grouped by client.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use http::StatusCode;
use tower_http::trace::TraceLayer;

use crate::auth;
use crate::error::{method_not_allowed, route_not_found};
use crate::handlers::{
    admin, crate_info, crates, download, health, index, metrics, publish, search, tokens, users,
};
use crate::state::AppState;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let dl_prefix = state.config.registry.dl_segments().join("/");
    let timeout = Duration::from_secs(state.config.http.request_timeout_secs);
    let required = || axum::middleware::from_fn_with_state(state.clone(), auth::required);
    let required_if_private =
        || axum::middleware::from_fn_with_state(state.clone(), auth::required_if_private);
    // cargo and people: actions that change something, always with a token.
    let publish = Router::new().route(
        "/api/v1/crates/new",
        put(publish::publish).route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::required_for_publish,
        )),
    );
    let changes = Router::new()
        .route(
            "/api/v1/crates/{name}/{version}/yank",
            axum::routing::delete(crates::change_yanked),
        )
        .route(
            "/api/v1/crates/{name}/{version}/unyank",
            put(crates::change_yanked),
        )
        .route(
            "/ktra/api/v1/tokens",
            get(tokens::list).post(tokens::create),
        )
        .route(
            "/ktra/api/v1/tokens/{id}",
            axum::routing::delete(tokens::revoke),
        )
        // administrators (the Admin extractor checks the role).
        .route(
            "/ktra/api/v1/admin/users/{name}/disable",
            post(admin::disable_user),
        )
        .route(
            "/ktra/api/v1/admin/users/{name}/enable",
            post(admin::enable_user),
        )
        .route(
            "/ktra/api/v1/admin/users/{name}/tokens",
            get(admin::user_tokens),
        )
        .route(
            "/ktra/api/v1/admin/users/{name}/tokens/{id}",
            axum::routing::delete(admin::revoke_user_token),
        )
        .route(
            "/ktra/api/v1/admin/invitations",
            post(admin::create_invitation),
        )
        .route("/ktra/api/v1/admin/audit", get(admin::audit_log))
        .route_layer(required());
    // cargo: what it reads; with a token in a private registry.
    let reads = Router::new()
        .route("/api/v1/crates", get(search::search))
        .route("/api/v1/summary", get(crate_info::summary))
        .route("/api/v1/crates/{name}", get(crate_info::krate))
        .route("/api/v1/crates/{name}/versions", get(crate_info::versions))
        .route(
            "/api/v1/crates/{name}/downloads",
            get(crate_info::downloads),
        )
        .route(
            "/api/v1/crates/{name}/{version}/downloads",
            get(crate_info::version_downloads),
        )
        .route(
            "/api/v1/crates/{name}/reverse_dependencies",
            get(crate_info::reverse_dependencies),
        )
        .route("/api/v1/crates/{name}/{version}", get(crate_info::version))
        .route(
            "/api/v1/crates/{name}/{version}/dependencies",
            get(crate_info::dependencies),
        )
        .route(
            "/api/v1/crates/{name}/{version}/readme",
            get(crate_info::readme),
        )
        .route(
            "/api/v1/crates/{name}/{version}/download",
            get(download::download),
        )
        .route(
            &format!("/{dl_prefix}/{{name}}/{{version}}/download"),
            get(download::download),
        )
        .route("/index/config.json", get(index::config_json))
        .route("/index/{*path}", get(index::crate_file))
        .route_layer(required_if_private());
    // One path, two groups: listing owners is a read, changing them an action.
    let owners = Router::new().route(
        "/api/v1/crates/{name}/owners",
        get(crates::list_owners)
            .route_layer(required_if_private())
            .merge(
                put(crates::change_owners)
                    .delete(crates::change_owners)
                    .route_layer(required()),
            ),
    );
    // Open: probes, metrics, the page cargo's login points at, and Ktra's user API, which
    // checks passwords itself.
    let open = Router::new()
        .route("/me", get(health::me))
        .route("/ktra/api/v1/new_user/{name}", post(users::new_user))
        .route("/ktra/api/v1/login/{name}", post(users::login))
        .route(
            "/ktra/api/v1/change_password/{name}",
            post(users::change_password),
        )
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape));
    // people: the pages; in a private registry they need a caller too.
    let pages = if state.config.ui.enabled {
        crate::pages::routes(&state)
    } else {
        Router::new()
    };
    let router = publish
        .merge(changes)
        .merge(reads)
        .merge(owners)
        .merge(pages)
        .merge(open);
    mirror_routes(router, &state)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::challenge,
        ))
        // Applied to each route (after routing), so the route pattern is known.
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::clone(&state.metrics),
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(timeout, time_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    |response: &http::Response<axum::body::Body>,
                     _latency: Duration,
                     span: &tracing::Span| {
                        span.record("status", response.status().as_u16());
                    },
                ),
        )
        .with_state(state)
}

/// cargo: the pull-through mirror's sparse index and downloads, and Ktra's mirror route.
#[cfg(feature = "crates-io-mirroring")]
fn mirror_routes(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    use crate::handlers::mirror;
    let Some(cache) = state.mirror.clone() else {
        return router;
    };
    let routes = Router::new()
        .route("/mirror/index/config.json", get(mirror::config_json))
        .route("/mirror/index/{*path}", get(mirror::index_file))
        .route(
            "/mirror/dl/{name}/{version}/download",
            get(mirror::download),
        )
        .route(
            "/ktra/api/v1/mirror/{name}/{version}/download",
            get(mirror::download),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::required_if_private,
        ))
        .with_state(mirror::MirrorState::new(state.clone(), cache));
    router.merge(routes)
}

#[cfg(not(feature = "crates-io-mirroring"))]
fn mirror_routes(router: Router<AppState>, _state: &AppState) -> Router<AppState> {
    router
}

/// Answers 408 in cargo's error format when a request, its body included, takes longer than
/// `KTRA_HTTP_REQUEST_TIMEOUT_SECS`; what the handler had started is dropped, and a publish
/// writes nothing before its body is whole.
async fn time_limit(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::error::error_response(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the request took longer than {} seconds; send it again",
                timeout.as_secs()
            ),
        ),
    }
}

/// The span of one request, a child of the caller's trace when it sent `traceparent` (a proxy
/// or a load balancer that traces).
fn request_span(request: &http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || request.uri().path().to_owned(),
            |path| path.as_str().to_owned(),
        );
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        user = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    ktra_core::telemetry::set_parent_from_headers(&span, request.headers());
    span
}
