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

/// What a series is to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One series' help text, kind and value.
type Series = (&'static str, Kind, i64);

#[derive(Default)]
pub struct Metrics {
    /// (method, route template, status) → count. Routes are templates such as
    /// `/api/v1/classes/{id}`, so ids and secrets never become label values.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Series set by the parts that own them (rooms, participants, relay, …), by name and
    /// labels (written out, e.g. `path="udp"`; empty for none). Label values come from closed
    /// sets chosen in code, never from requests.
    series: Mutex<BTreeMap<(&'static str, String), Series>>,
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
        self.set_series(name, help, Kind::Gauge, "", value);
    }

    /// Sets one series of `name`; `labels` are written out (`reason="expired"`).
    pub fn set_series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &str,
        value: i64,
    ) {
        self.series
            .lock()
            .expect("metrics lock")
            .insert((name, labels.to_owned()), (help, kind, value));
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
        let mut previous = "";
        for ((name, labels), (help, kind, value)) in
            self.series.lock().expect("metrics lock").iter()
        {
            if *name != previous {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.name());
                previous = name;
            }
            match labels.is_empty() {
                true => {
                    let _ = writeln!(out, "{name} {value}");
                }
                false => {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
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

    #[test]
    fn labelled_series_share_one_header() {
        let metrics = Metrics::default();
        metrics.set_series("homeroom_x", "X.", Kind::Counter, "path=\"udp\"", 1);
        metrics.set_series("homeroom_x", "X.", Kind::Counter, "path=\"tcp\"", 2);
        metrics.set_gauge("homeroom_y", "Y.", 3);
        let text = metrics.render();
        assert_eq!(text.matches("# TYPE homeroom_x counter").count(), 1);
        assert!(text.contains("homeroom_x{path=\"tcp\"} 2\n"));
        assert!(text.contains("homeroom_x{path=\"udp\"} 1\n"));
        assert!(text.contains("# TYPE homeroom_y gauge\nhomeroom_y 3\n"));
    }
}
