//! What a run will cost, estimated from the scenario before the platform is built: its peak
//! memory (refused above `irqsim run --max-memory`) and its event count (announced when it
//! is enormous).
//!
//! # How the memory constants were measured
//! Peak resident memory (`VmHWM` in /proc/self/status, which `irqsim run` prints as "peak
//! memory") of the release build on x86-64 Linux, for scenarios of 1 µs (so that nearly
//! nothing but the built state is in memory), varying one size at a time and taking the
//! slope between the two largest sizes:
//!
//! | size varied | sizes | peak memory | slope |
//! | --- | --- | --- | --- |
//! | queues (2,048 per function, remapping on, 4 CPUs) | 204,800 / 819,200 | 76,820 / 276,284 KiB | 332 B per queue |
//! | CPUs (remapping on, 1 queue) | 4,096 / 16,384 | 50,688 / 171,864 KiB | 10,098 B per CPU |
//! | vCPUs of one guest (4 pCPUs) | 4,096 / 65,536 | 46,408 / 618,372 KiB | 9,533 B per vCPU |
//! | remapping units of 65,536 IRTEs | 64 / 256 | 77,396 / 288,816 KiB | 17.2 B per IRTE |
//!
//! and 8.1 MiB for the smallest scenario (the queue and CPU rows measured again when the
//! per-CPU counts of `/proc/interrupts` and the latency histograms came: 4 and 600 bytes
//! more). The queue, CPU, vCPU and IRTE rows were measured again when the per-interrupt state was
//! packed (issue #12: a queue's record in one 64-byte line, its run count in 8 bytes, the
//! pending set's interrupts in a short list instead of a 256-slot table; 16 remapping units,
//! duration 1 µs, peak `peak_rss_bytes` of perf.json): queues 204,800 / 819,200:
//! 87,646,208 / 236,900,352 B, 243 B per queue (341 before); CPUs 4,096 / 16,384: 47,124,480 / 74,481,664 B, 2,226 B per
//! CPU (10,422 before); vCPUs 4,096 / 65,536: 18,903,040 / 105,222,144 B, 1,405 B per vCPU
//! (9,599 before); remapping units 64 / 256 (4 CPUs, 1 queue): 116,948,992 / 433,844,224
//! B, 25.2 B per IRTE (the same before this change; 17.2 at the first measurement, the
//! table above). The IRTE row again when a table's entries were packed into 16 bytes each
//! (`iommu::remap::irte::PackedIrte`, 2026-12-01; 4 CPUs, 1 queue, 1 µs): 83,677,184 /
//! 300,134,400 B, 17.2 B per IRTE (16 for the entry, 1 for the block head, 1/8 for the
//! bitmap). The queue row again when a queue's host handler runs moved into its line
//! (`platform::stats::LineRuns`, 2026-12-01; 2,048 queues a function, 16 units, 4 CPUs,
//! 1 µs): queues 425,984 / 819,200: 129,478,656 / 221,724,672 B, 235 B per queue (243
//! before). The constants below round these up, adding per queue the 8 bytes a
//! platform with guests keeps for their handler runs. The estimate
//! leaves out what grows with the run rather than with the scenario (interrupts merged into
//! a pending bit while a CPU is overloaded, the event queue of a storm); it is a floor that
//! catches absurd sizes before they are allocated, not a bound.

use crate::load::Scenario;

/// Bytes of a process running the smallest scenario.
pub const BASE_BYTES: u64 = 9 << 20;
/// Bytes per queue (its arrival state and random streams, its store entry, its event, its
/// handler runs per CPU).
pub const QUEUE_BYTES: u64 = 256;
/// Bytes per host CPU (vector table, LAPIC, metrics, latency histogram).
pub const CPU_BYTES: u64 = 2_300;
/// Bytes per vCPU (posted descriptor, state, random stream, metrics).
pub const VCPU_BYTES: u64 = 1_500;
/// Bytes per IRTE of every remapping unit's table.
pub const IRTE_BYTES: u64 = 18;

/// A run's estimated peak memory in bytes.
pub fn memory_bytes(scenario: &Scenario) -> u64 {
    let p = &scenario.platform;
    let queues: u64 = p.devices.iter().map(|d| u64::from(d.queue_count)).sum();
    let vcpus: u64 = p.guests.iter().map(|g| u64::from(g.vcpu_count)).sum();
    let irtes = p.remapping.as_ref().map_or(0, |r| u64::from(r.remap.iommu_count) * u64::from(r.remap.table_entries));
    BASE_BYTES + queues * QUEUE_BYTES + u64::from(p.cpu_count) * CPU_BYTES + vcpus * VCPU_BYTES + irtes * IRTE_BYTES
}

/// Events per interrupt on Lindley's recursion (`models::platform::cpu::lindley`): the
/// raise; the MSI write, the arrival and the handler are computed at it.
pub const EVENTS_PER_INTERRUPT_RECURSION: f64 = 1.0;

/// Events per interrupt on the event path: the raise, the MSI write's arrival (the message
/// decoded straight to the LAPIC without a remapping unit) and the handler's end; a remapping
/// unit adds one (the delivery after the IRTE lookup). Guests and posted MSI add their own
/// steps, which this leaves out (a floor).
pub fn events_per_interrupt_on_events(remapping: bool) -> f64 {
    if remapping { 4.0 } else { 3.0 }
}

/// Events per interrupt of the scenario's interrupts, by the path their CPUs take: the
/// recursion when the platform allows it ([`models::platform::PlatformParams::recursion_possible`])
/// and every raising device has the same MSI write latency (devices' queues spread over the
/// same CPUs, and a CPU takes the recursion only when every queue reaching it shares one
/// latency); the event path otherwise. Superposed arrivals keep one pending raise per
/// device rather than per queue, but still one raise event per interrupt.
pub fn events_per_interrupt(scenario: &Scenario) -> f64 {
    let p = &scenario.platform;
    let mut latencies = p.devices.iter().filter(|d| d.queue_count > 0).map(|d| d.msi_write_latency);
    let first = latencies.next();
    if p.recursion_possible() && latencies.all(|l| Some(l) == first) {
        EVENTS_PER_INTERRUPT_RECURSION
    } else {
        events_per_interrupt_on_events(p.remapping.is_some())
    }
}

/// A run's estimated event count: [`events_per_interrupt`] × the sum over queues of their
/// long-run rate × the duration, plus two per host burst of every pCPU that runs vCPUs (start
/// and end) and one per action; capped by the scenario's `event_limit`.
pub fn event_count(scenario: &Scenario) -> f64 {
    let p = &scenario.platform;
    let seconds = scenario.duration.as_secs_f64();
    let interrupts: f64 =
        p.devices.iter().map(|d| f64::from(d.queue_count) * d.arrival.mean_rate_per_s() * seconds).sum();
    // One renewal process per pCPU that runs vCPUs, the first guest on it with bursts
    // setting its period (as the guests' model does).
    let mut pcpus: Vec<(u32, f64)> = Vec::new();
    for g in &p.guests {
        let Some((gap, length)) = g.host_bursts else { continue };
        for cpu in g.pcpus.iter().take(g.vcpu_count as usize) {
            if !pcpus.iter().any(|&(c, _)| c == cpu.0) {
                pcpus.push((cpu.0, (gap + length).as_secs_f64()));
            }
        }
    }
    let bursts: f64 = pcpus.iter().map(|&(_, period)| 2.0 * seconds / period).sum();
    let events = events_per_interrupt(scenario) * interrupts + bursts + p.actions.len() as f64;
    scenario.event_limit.map_or(events, |limit| events.min(limit as f64))
}

/// The event count above which `irqsim run` says up front that the run is enormous.
pub const EVENT_COUNT_WARN: f64 = 1e9;

/// The machine's memory in bytes (`MemTotal` in /proc/meminfo), if the OS tells it.
pub fn machine_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `--max-memory`'s default: half the machine's memory (8 GiB where it is unknown), so a
/// run leaves room for everything else.
pub fn default_max_memory_bytes() -> u64 {
    machine_memory_bytes().map_or(8 << 30, |b| b / 2)
}

/// Parses a memory size such as `4G`, `512M`, `1.5GiB` or `1000000` (bytes).
pub fn parse_memory_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`; expected bytes or K, M, G, T (powers of 1024)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a memory size such as 4G or 512M"))?;
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a memory size from 1 byte to 16 EiB"));
    }
    Ok(bytes as u64)
}

/// `bytes` for people: `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    let units = [(1u64 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (scale, name) in units {
        if bytes >= scale {
            return format!("{:.1} {name}", bytes as f64 / scale as f64);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_size("4G"), Ok(4 << 30));
        assert_eq!(parse_memory_size("512M"), Ok(512 << 20));
        assert_eq!(parse_memory_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_memory_size("1000"), Ok(1000));
        assert!(parse_memory_size("4 parsecs").is_err());
        assert!(parse_memory_size("0").is_err());
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    /// A FIFO platform of two devices (no remapping), their MSI write latencies given.
    fn fifo(first: &str, second: &str, remapping: bool) -> Scenario {
        let remap = if remapping { "\n  iommu: { interrupt_remapping: true, lookup_latency: 100ns }" } else { "" };
        let yaml = format!(
            "name: fifo\nseed: 1\nduration: 2ms\nplatform:\n  arch: x86\n  cpus: 4\n  queueing: fifo{remap}\n\
             devices:\n\
             \x20 - {{ name: a, queues: 8, msi_write_latency: {first}, arrival: {{ process: poisson, rate: 10000/s }},\
             \x20handler: {{ service: {{ dist: exponential, mean: 1us }}, eoi: 0ns }} }}\n\
             \x20 - {{ name: b, queues: 8, msi_write_latency: {second}, arrival: {{ process: poisson, rate: 10000/s }},\
             \x20handler: {{ service: {{ dist: exponential, mean: 1us }}, eoi: 0ns }} }}\n"
        );
        crate::load("fifo.yaml", &yaml).expect("valid")
    }

    /// Runs `s` and returns (events run, interrupts raised).
    fn events_and_raises(s: &Scenario) -> (u64, u64) {
        let (point, _, _) = crate::runner::run_point(s, s.seed, 0).expect("conserved");
        (point.run.event_count, point.conservation.raised)
    }

    #[test]
    fn the_estimate_follows_the_path_each_cpu_takes() {
        // 16 queues x 10,000/s x 2 ms = 320 interrupts expected.
        let same = fifo("500ns", "500ns", false);
        assert_eq!(events_per_interrupt(&same), 1.0);
        assert_eq!(event_count(&same), 320.0);
        // On the recursion a run's events are its raises: exactly one per interrupt.
        let (events, raised) = events_and_raises(&same);
        assert_eq!(events, raised);
        // Two latencies on the same CPUs: every CPU stays on events (raise, MSI write, the
        // handler's end), 3 x 320.
        let mixed = fifo("500ns", "700ns", false);
        assert_eq!(events_per_interrupt(&mixed), 3.0);
        assert_eq!(event_count(&mixed), 960.0);
        // The event path: each raise ran, each MSI write that arrived ran, each handler that
        // ended ran: 3 per delivered interrupt, 2 per one waiting at its CPU, 1 per one still
        // in transit at the end.
        let (point, platform, queue) = crate::runner::run_point(&mixed, mixed.seed, 0).expect("conserved");
        let c = platform.conservation(&queue);
        assert_eq!((c.lost, c.merged, c.pending), (0, 0, 0));
        assert_eq!(point.run.event_count, 3 * c.delivered + 2 * c.at_cpu + c.in_transit);
        // A remapping unit adds the delivery after the IRTE lookup.
        assert_eq!(events_per_interrupt(&fifo("500ns", "500ns", true)), 4.0);
    }

    #[test]
    fn the_flagship_is_small_and_short() {
        let s = crate::load("f", crate::catalog::get("nvme-bare-metal").expect("in the catalog")).expect("valid");
        assert!(memory_bytes(&s) < 64 << 20, "{}", memory_bytes(&s));
        let events = event_count(&s);
        assert!(events > 1e5 && events < EVENT_COUNT_WARN, "{events}");
    }
}
