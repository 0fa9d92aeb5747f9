//! Prometheus metrics (`GET /metrics`, OpenMetrics text), one registry per app.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route pattern (`/main/download/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    pub operation: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeftoverLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily<RouteLabels>,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    pub storage_calls: Family<StorageLabels, Counter>,
    pub storage_duration: HistogramFamily<OperationLabels>,
    pub uploads_in_flight: Gauge,
    pub images_stored: Counter,
    pub leftovers_removed: Family<LeftoverLabels, Counter>,
    pub sweeps: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("picshelf");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        let request_duration: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request start to response head, by method and route",
            request_duration.clone(),
        );
        let bytes_received = Counter::default();
        registry.register("upload_bytes", "Image bytes received in uploads", bytes_received.clone());
        let bytes_sent = Counter::default();
        registry.register("download_bytes", "Image bytes sent in downloads", bytes_sent.clone());
        let storage_calls = Family::<StorageLabels, Counter>::default();
        registry.register("storage_operations", "Storage operations by operation and outcome", storage_calls.clone());
        let storage_duration: HistogramFamily<OperationLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "storage_operation_duration_seconds",
            "Storage operation latency (a put lasts as long as its upload)",
            storage_duration.clone(),
        );
        let uploads_in_flight = Gauge::default();
        registry.register("uploads_in_flight", "Upload requests being received", uploads_in_flight.clone());
        let images_stored = Counter::default();
        registry.register("images_stored", "Images stored", images_stored.clone());
        let leftovers_removed = Family::<LeftoverLabels, Counter>::default();
        registry.register(
            "leftovers_removed",
            "Leftovers of interrupted uploads removed by the sweeper, by kind",
            leftovers_removed.clone(),
        );
        let sweeps = Family::<OutcomeLabels, Counter>::default();
        registry.register("sweeps", "Sweeps for leftovers of interrupted uploads, by outcome", sweeps.clone());
        Self {
            registry,
            requests,
            request_duration,
            bytes_received,
            bytes_sent,
            storage_calls,
            storage_duration,
            uploads_in_flight,
            images_stored,
            leftovers_removed,
            sweeps,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    pub fn observe_storage(&self, operation: &'static str, outcome: &'static str, seconds: f64) {
        self.storage_calls.get_or_create(&StorageLabels { operation, outcome }).inc();
        self.storage_duration.get_or_create(&OperationLabels { operation }).observe(seconds);
    }
}

/// Counts one upload in flight for as long as it lives.
pub struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
