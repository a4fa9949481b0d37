//! Pins a process to CPUs (`--server-cpu`, `--tool-cpu`), so that server and load generator
//! do not take turns on the same cores and each one's CPU share means what it says.
//!
//! `sched_setaffinity` applies to one thread, so every thread listed in `/proc/<pid>/task` is
//! pinned; threads started later inherit the mask of the thread that starts them, which is
//! then a pinned one.

use super::usage::Process;

/// Pins every thread of `process` to `cpus`; returns how many threads were pinned.
pub(super) fn pin(process: &Process, cpus: &[usize]) -> Result<usize, String> {
    if cpus.is_empty() {
        return Err("no CPU given".into());
    }
    // SAFETY: an all-zero cpu_set_t is the empty set (what CPU_ZERO makes).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let capacity = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &cpu in cpus {
        if cpu >= capacity {
            return Err(format!("CPU {cpu} is out of range"));
        }
        // SAFETY: `cpu` is below the set's capacity, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let threads = process
        .threads()
        .map_err(|e| format!("cannot list the threads: {e}"))?;
    let mut pinned = 0;
    for tid in threads {
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        let done =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if done == 0 {
            pinned += 1;
            continue;
        }
        let error = std::io::Error::last_os_error();
        // A thread that ended since the listing is no failure.
        if error.raw_os_error() != Some(libc::ESRCH) {
            return Err(format!("cannot pin thread {tid} to CPUs {cpus:?}: {error}"));
        }
    }
    Ok(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_beyond_the_set_is_refused() {
        assert!(pin(&Process::me(), &[1 << 20]).is_err());
        assert!(pin(&Process::me(), &[]).is_err());
    }
}
