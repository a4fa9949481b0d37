//! Prometheus text-format metrics, kept in memory and rendered on `/metrics`.
//!
//! A few counters and gauges do not justify a metrics framework; this is a map behind a lock
//! that is touched once per request, never per media packet.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The method as a label: one of the standard methods, or `other`.
fn known_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

#[derive(Default)]
pub struct Metrics {
    /// (method, route template, status) → count. Routes are templates such as
    /// `/api/v1/classes/{id}`, so ids and secrets never become label values.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Named gauges set by the parts that own them (rooms, participants, …).
    gauges: Mutex<BTreeMap<&'static str, (&'static str, i64)>>,
}

impl Metrics {
    /// Counts one request. Every label comes from a closed set: the method from the handful
    /// HTTP defines (anything made up counts as `other`), the route from the router's templates
    /// (or `unmatched`), the status from the few hundred codes. A stranger inventing methods or
    /// paths therefore cannot grow this map or the `/metrics` page.
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut requests = self.requests.lock().expect("metrics lock");
        *requests
            .entry((known_method(method).to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    pub fn set_gauge(&self, name: &'static str, help: &'static str, value: i64) {
        self.gauges
            .lock()
            .expect("metrics lock")
            .insert(name, (help, value));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP homeroom_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE homeroom_http_requests_total counter\n");
        for ((method, route, status), count) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "homeroom_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                route.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        for (name, (help, value)) in self.gauges.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_series() {
        let metrics = Metrics::default();
        for i in 0..1000 {
            metrics.count_request(&format!("FOO{i}"), "unmatched", 405);
        }
        metrics.count_request("GET", "/healthz", 200);
        let text = metrics.render();
        assert!(text.contains("method=\"other\",route=\"unmatched\",status=\"405\"} 1000"));
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("homeroom_http"))
                .count(),
            2
        );
    }
}
