//! Counts and times every request by method, route pattern and status.

use crate::metrics::{RequestLabels, RouteLabels};

/// Middleware: counts and times every request by method, route pattern and status.
pub async fn record_requests(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req.app_data::<actix_web::web::Data<super::state::AppState>>().map(|state| state.metrics.clone());
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        let labels = RouteLabels { method, route };
        metrics.request_duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        metrics
            .requests
            .get_or_create(&RequestLabels { method: labels.method, route: labels.route, status: status.as_u16() })
            .inc();
    }
    result
}
