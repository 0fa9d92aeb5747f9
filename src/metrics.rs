//! Prometheus metrics (`GET /metrics`, OpenMetrics text), one registry per app.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

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
pub struct KindLabels {
    pub kind: &'static str,
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
    pub metadata_removed: Family<KindLabels, Counter>,
    pub variants_generated: Counter,
    pub variants_from_store: Counter,
    pub variant_generation: Histogram,
    pub variant_queue: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` under `name` and hands it back.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// A latency histogram per label set, registered.
fn latencies<L>(registry: &mut Registry, name: &str, help: &str) -> HistogramFamily<L>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    registered(registry, name, help, Family::new_with_constructor(latency_histogram))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("picshelf");
        let r = &mut registry;
        Self {
            requests: registered(r, "http_requests", "HTTP requests by method, route and status", Family::default()),
            request_duration: latencies(r, "http_request_duration_seconds", "Time to the response head, by route"),
            bytes_received: registered(r, "upload_bytes", "Image bytes received in uploads", Counter::default()),
            bytes_sent: registered(r, "download_bytes", "Image bytes sent in downloads", Counter::default()),
            storage_calls: registered(r, "storage_operations", "Storage operations by outcome", Family::default()),
            storage_duration: latencies(r, "storage_operation_duration_seconds", "Storage operation latency"),
            uploads_in_flight: registered(r, "uploads_in_flight", "Upload requests being received", Gauge::default()),
            images_stored: registered(r, "images_stored", "Images stored", Counter::default()),
            leftovers_removed: registered(
                r,
                "leftovers_removed",
                "Leftovers of interrupted uploads removed",
                Family::default(),
            ),
            sweeps: registered(r, "sweeps", "Sweeps for leftovers, by outcome", Family::default()),
            metadata_removed: registered(
                r,
                "metadata_removed",
                "Files stripped of metadata, by kind",
                Family::default(),
            ),
            variants_generated: registered(r, "variants_generated", "Variants rendered and stored", Counter::default()),
            variants_from_store: registered(
                r,
                "variants_served_from_store",
                "Variant requests answered from a stored variant",
                Counter::default(),
            ),
            variant_generation: registered(
                r,
                "variant_generation_duration_seconds",
                "Time to render a variant (decode, resize, encode)",
                latency_histogram(),
            ),
            variant_queue: registered(
                r,
                "variant_queue_depth",
                "Variant renderings waiting or running",
                Gauge::default(),
            ),
            registry,
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
