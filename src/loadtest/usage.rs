//! What a process uses, read from `/proc`: the server's (by pid) and the tool's own
//! (`/proc/self`). The two share the machine, so neither is ever inferred from the other.

use std::path::PathBuf;

/// A process to read figures of.
#[derive(Debug, Clone)]
pub(super) struct Process {
    dir: PathBuf,
}

impl Process {
    pub(super) fn of(pid: u32) -> Process {
        Process {
            dir: PathBuf::from(format!("/proc/{pid}")),
        }
    }

    pub(super) fn me() -> Process {
        Process {
            dir: PathBuf::from("/proc/self"),
        }
    }

    /// User plus system CPU time so far, in seconds.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.dir.join("stat")).ok()?;
        // The command name may hold spaces; fields count from after its closing parenthesis.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / ticks_per_second())
    }

    /// Resident memory, in MB.
    pub(super) fn rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(self.dir.join("status")).ok()?;
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

    /// Open file descriptors (sockets included).
    pub(super) fn fds(&self) -> Option<u64> {
        Some(std::fs::read_dir(self.dir.join("fd")).ok()?.count() as u64)
    }

    /// The ids of the process's threads.
    pub(super) fn threads(&self) -> std::io::Result<Vec<i32>> {
        let mut tids = Vec::new();
        for entry in std::fs::read_dir(self.dir.join("task"))? {
            if let Some(tid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
                tids.push(tid);
            }
        }
        Ok(tids)
    }

    /// The CPUs each thread may run on, as the kernel lists them ("0", "0-1"…).
    pub(super) fn allowed_cpus(&self) -> Vec<String> {
        let Ok(tids) = self.threads() else {
            return Vec::new();
        };
        let mut lists: Vec<String> = tids
            .iter()
            .filter_map(|tid| {
                let status =
                    std::fs::read_to_string(self.dir.join(format!("task/{tid}/status"))).ok()?;
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(|l| l.trim().to_owned())
            })
            .collect();
        lists.sort();
        lists.dedup();
        lists
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let me = Process::me();
        assert!(me.cpu_seconds().is_some());
        assert!(me.rss_mb().unwrap() > 1.0);
        assert!(me.fds().unwrap() >= 3);
        assert!(!me.threads().unwrap().is_empty());
        assert!(!me.allowed_cpus().is_empty());
        let by_pid = Process::of(std::process::id());
        assert!(by_pid.rss_mb().is_some());
    }
}
