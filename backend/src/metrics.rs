//! Process metrics in Prometheus' text format: HTTP requests by route and status with a latency
//! histogram, and import row counts. Small enough that a registry crate would be more code to wire.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    import_rows: BTreeMap<&'static str, u64>,
}

/// Writes metrics read at render time (gauges of other components) in Prometheus' text format.
type Source = Box<dyn Fn(&mut String) + Send + Sync>;

/// The process's metrics; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
    sources: Mutex<Vec<Source>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Metrics")
    }
}

impl Metrics {
    /// Adds metrics that `source` writes at each render, after the process's own.
    pub fn add_source(&self, source: impl Fn(&mut String) + Send + Sync + 'static) {
        if let Ok(mut sources) = self.sources.lock() {
            sources.push(Box::new(source));
        }
    }

    /// Records one answered HTTP request.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let Ok(mut registry) = self.registry.lock() else {
            return;
        };
        *registry
            .requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let histogram = registry.latency.entry(route.to_owned()).or_default();
        let seconds = elapsed.as_secs_f64();
        for (index, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[index] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Adds imported, duplicate, updated and rejected row counts of one upload.
    pub fn record_import(&self, imported: u64, duplicate: u64, updated: u64, rejected: u64) {
        let Ok(mut registry) = self.registry.lock() else {
            return;
        };
        for (outcome, rows) in [
            ("imported", imported),
            ("duplicate", duplicate),
            ("updated", updated),
            ("rejected", rejected),
        ] {
            *registry.import_rows.entry(outcome).or_default() += rows;
        }
    }

    /// Renders everything in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(registry) = self.registry.lock() else {
            return out;
        };
        out.push_str("# HELP ordernimbus_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE ordernimbus_http_requests_total counter\n");
        for ((route, method, status), count) in &registry.requests {
            let _ = writeln!(
                out,
                "ordernimbus_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP ordernimbus_http_request_duration_seconds Time to answer HTTP requests.\n",
        );
        out.push_str("# TYPE ordernimbus_http_request_duration_seconds histogram\n");
        for (route, histogram) in &registry.latency {
            let route = escape(route);
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(
                    out,
                    "ordernimbus_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "ordernimbus_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "ordernimbus_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "ordernimbus_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP ordernimbus_import_rows_total CSV rows by import outcome.\n");
        out.push_str("# TYPE ordernimbus_import_rows_total counter\n");
        for (outcome, rows) in &registry.import_rows {
            let _ = writeln!(
                out,
                "ordernimbus_import_rows_total{{outcome=\"{outcome}\"}} {rows}"
            );
        }
        drop(registry);
        if let Ok(sources) = self.sources.lock() {
            for source in sources.iter() {
                source(&mut out);
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status_with_latency_buckets() {
        let metrics = Metrics::default();
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(3));
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(30));
        let text = metrics.render();
        assert!(text.contains(
            "ordernimbus_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "ordernimbus_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "ordernimbus_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"
        ));
    }
}
