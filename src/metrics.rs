//! Prometheus text-format metrics, kept in memory and rendered on `/metrics`.
//!
//! A few counters and gauges do not justify a metrics framework; this is a map behind a lock
//! that is touched once per request, never per media packet.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    /// (method, route template, status) → count. Routes are templates such as
    /// `/api/v1/classes/{id}`, so ids and secrets never become label values.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Named gauges set by the parts that own them (rooms, participants, …).
    gauges: Mutex<BTreeMap<&'static str, (&'static str, i64)>>,
}

impl Metrics {
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut requests = self.requests.lock().expect("metrics lock");
        *requests
            .entry((method.to_owned(), route.to_owned(), status))
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
