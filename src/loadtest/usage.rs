//! The server's own CPU and memory, read from `/proc/<pid>`: the load generator shares the
//! machine, so its figures are never inferred.

use std::time::Instant;

/// The server's CPU share and resident memory, read from `/proc/<pid>`.
pub(super) struct CpuMeter {
    pid: u32,
    ticks_per_second: f64,
    start: (Instant, u64),
    last: (Instant, u64),
}

impl CpuMeter {
    pub(super) fn new(pid: u32) -> CpuMeter {
        let ticks = cpu_ticks(pid).unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        CpuMeter {
            pid,
            ticks_per_second: per_second,
            start: (Instant::now(), ticks),
            last: (Instant::now(), ticks),
        }
    }

    fn share(&self, from: (Instant, u64), ticks: u64) -> f64 {
        let seconds = from.0.elapsed().as_secs_f64().max(0.001);
        100.0 * (ticks.saturating_sub(from.1)) as f64 / self.ticks_per_second / seconds
    }

    /// CPU % over the last second, and RSS in MB.
    pub(super) fn sample(&mut self) -> (Option<f64>, Option<f64>) {
        let Some(ticks) = cpu_ticks(self.pid) else {
            return (None, None);
        };
        let share = self.share(self.last, ticks);
        self.last = (Instant::now(), ticks);
        (Some(share), rss_mb(self.pid))
    }

    /// CPU % over the whole run, and RSS in MB now.
    pub(super) fn since_start(&self) -> (Option<f64>, Option<f64>) {
        match cpu_ticks(self.pid) {
            Some(ticks) => (Some(self.share(self.start, ticks)), rss_mb(self.pid)),
            None => (None, None),
        }
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields count from after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(rss_mb(me).unwrap() > 1.0);
    }
}
