//! What the load generator reads from Linux's `/proc`: the server's resident
//! memory, CPU time and context switches, the clock tick, and our own
//! open-file limit.

use std::path::Path;

/// The server's `VmRSS` in KiB (`/proc/PID/status`).
pub fn rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| bad_data("no VmRSS line in /proc/PID/status"))
}

/// The server's user + system CPU time in microseconds (`/proc/PID/stat`
/// fields 14 and 15, in clock ticks).
pub fn cpu_us(pid: u32) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat).ok_or_else(|| bad_data("unreadable /proc/PID/stat"))?;
    Ok(ticks as f64 * 1e6 / clock_ticks_per_second() as f64)
}

/// The server's CPU time and context switches at one moment.
#[derive(Clone, Copy, Debug)]
pub struct ProcTimes {
    /// utime + stime in microseconds ([`cpu_us`]).
    pub cpu_us: f64,
    /// Voluntary + involuntary context switches of all its threads
    /// (`/proc/PID/task/*/status`; a server with several event loops has
    /// its connections on any of them): on an event loop, about one per
    /// sleep in `epoll_wait`.
    pub switches: u64,
}

/// The server's [`ProcTimes`] now.
pub fn times(pid: u32) -> std::io::Result<ProcTimes> {
    let cpu_us = cpu_us(pid)?;
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread that ended meanwhile is simply not counted.
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        switches += parse_switches(&status)
            .ok_or_else(|| bad_data("no ctxt_switches lines in /proc/PID/task/TID/status"))?;
    }
    Ok(ProcTimes { cpu_us, switches })
}

/// Whether a process with this id exists.
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Our soft limit on open files (`/proc/self/limits`), if readable and finite.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files(&limits)
}

/// `USER_HZ`: the unit of `/proc/PID/stat` times. Read from the auxiliary
/// vector (`AT_CLKTCK`) so no `unsafe` `sysconf` is needed; 100 (the value on
/// every mainstream Linux) if that fails.
pub fn clock_ticks_per_second() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| parse_auxv_clktck(&auxv))
        .filter(|&hz| hz > 0)
        .unwrap_or(100)
}

fn bad_data(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn parse_switches(status: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim().parse().ok()
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `AT_CLKTCK` (17) in an auxiliary vector of native-endian (type, value)
/// pairs of the pointer width.
fn parse_auxv_clktck(auxv: &[u8]) -> Option<u64> {
    const AT_CLKTCK: u64 = 17;
    let word = std::mem::size_of::<usize>();
    let read = |bytes: &[u8]| -> u64 {
        match bytes.len() {
            8 => u64::from_ne_bytes(bytes.try_into().unwrap_or([0; 8])),
            4 => u64::from(u32::from_ne_bytes(bytes.try_into().unwrap_or([0; 4]))),
            _ => 0,
        }
    };
    auxv.chunks_exact(2 * word).find_map(|pair| {
        let (key, value) = pair.split_at(word);
        (read(key) == AT_CLKTCK).then(|| read(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss() {
        let status = "Name:\techo\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(4242));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn context_switches() {
        let status =
            "Name:\techo\nvoluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n";
        assert_eq!(parse_switches(status), Some(1234));
        assert_eq!(parse_switches("voluntary_ctxt_switches:\t3\n"), None);
    }

    #[test]
    fn stat_ticks_skip_odd_command_names() {
        let stat = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 1 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(42));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn open_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(parse_open_files(limits), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files(unlimited), None);
    }

    #[test]
    fn this_process_is_readable() {
        let pid = std::process::id();
        assert!(process_exists(pid));
        assert!(rss_kib(pid).expect("own status") > 0);
        assert!(cpu_us(pid).expect("own stat") >= 0.0);
        assert!(times(pid).expect("own times").switches > 0);
        let hz = clock_ticks_per_second();
        assert!((1..=10_000).contains(&hz), "{hz}");
    }

    #[test]
    fn auxv_lookup() {
        let mut auxv = Vec::new();
        for (k, v) in [(6u64, 4096u64), (17, 100), (0, 0)] {
            auxv.extend_from_slice(&(k as usize).to_ne_bytes());
            auxv.extend_from_slice(&(v as usize).to_ne_bytes());
        }
        assert_eq!(parse_auxv_clktck(&auxv), Some(100));
        assert_eq!(parse_auxv_clktck(&auxv[..16]), None);
    }
}
