//! Queueing oracles: the model against closed forms.
//!
//! One CPU fed by Poisson arrivals is an M/G/1 queue behind fixed delays (MSI write, IRTE
//! lookup), so the mean end-to-end latency must be the fixed delays plus the mean sojourn:
//! - M/M/1 (exponential service, mean 1/mu): 1/(mu − lambda); sojourn ~ Exp(mu − lambda), so
//!   the p99 is ln(100)/(mu − lambda);
//! - M/D/1 (constant service D): D + rho·D / (2(1 − rho)) (Pollaczek–Khinchine);
//! - M/G/1 in general, the flagship scenario's queue wait: lambda·E[S²] / (2(1 − rho)).
//!
//! Tolerance from the sample size: each case runs R independent replications (different
//! seeds); the estimate is the mean of the replication means and its standard error is the
//! replications' sample standard deviation / sqrt(R). The check is |estimate − theory| ≤
//! 4.5 SE (+0.1% for histogram quantiles). So that the check cannot pass by being vague, each
//! case also asserts that the SE is below a cap: 2% of the prediction for means, and for the
//! p99s the cap that their sample size allows (see `mm1_mean_and_p99_match_closed_form`).

use scenarios::runner::run_point;
use sim::{HistogramSummary, Metrics, SimDuration};

const REPLICATIONS: u64 = 10;
const FIXED_NS: f64 = 500.0 + 100.0; // msi_write_latency + lookup_latency below
/// The SE cap for means, as a fraction of the prediction.
const MEAN_SE_MAX: f64 = 0.02;

fn scenario(cpus: u32, queues: u32, rate_per_queue: f64, service: &str, duration_ms: u64) -> scenarios::Scenario {
    let yaml = format!(
        "name: oracle\nduration: {duration_ms}ms\nplatform:\n  cpus: {cpus}\n  queueing: fifo\n  iommu: {{ interrupt_remapping: true, lookup_latency: 100ns }}\n\
         devices:\n  - name: d\n    queues: {queues}\n    msi_write_latency: 500ns\n    arrival: {{ process: poisson, rate: {rate_per_queue}/s }}\n\
         \x20   handler: {{ service: {service} }}\n"
    );
    scenarios::load("oracle.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn histogram(metrics: &Metrics, name: &str) -> HistogramSummary {
    let snapshot = metrics.snapshot();
    snapshot.histograms.into_iter().find(|h| h.info.name == name).unwrap_or_else(|| panic!("{name} histogram"))
}

/// One statistic over replications: its mean and standard error, in ns.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    mean: f64,
    se: f64,
}

/// The mean of replication values and its standard error.
fn estimate(values: &[f64]) -> Estimate {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Estimate { mean, se: (var / n).sqrt() }
}

/// Runs the replications once and returns, for each `f` of the `name` histogram's summary,
/// its value per replication in ns, and the samples recorded over all replications.
fn replication_values(
    s: &scenarios::Scenario,
    name: &str,
    fs: &[fn(&HistogramSummary) -> f64],
) -> (Vec<Vec<f64>>, u64) {
    let mut values = vec![Vec::new(); fs.len()];
    let mut samples = 0;
    for seed in 1..=REPLICATIONS {
        let (_, platform, _) = run_point(s, seed, 0).expect("conservation holds");
        let h = histogram(platform.metrics(), name);
        samples += h.count;
        for (f, v) in fs.iter().zip(&mut values) {
            v.push(f(&h) / 1000.0);
        }
    }
    (values, samples)
}

/// [`replication_values`] reduced to each statistic's mean and standard error.
fn replicate(s: &scenarios::Scenario, name: &str, fs: &[fn(&HistogramSummary) -> f64]) -> (Vec<Estimate>, u64) {
    let (values, samples) = replication_values(s, name, fs);
    (values.iter().map(|v| estimate(v)).collect(), samples)
}

fn mean(h: &HistogramSummary) -> f64 {
    h.mean()
}

fn p99(h: &HistogramSummary) -> f64 {
    h.quantiles[2] as f64
}

fn assert_close(what: &str, e: Estimate, predicted: f64, extra_rel: f64, se_max: f64, samples: u64) {
    let Estimate { mean: estimate, se } = e;
    let tolerance = 4.5 * se + extra_rel * predicted;
    println!(
        "{what}: {estimate:.3}ns vs {predicted:.3}ns, SE {se:.3}ns ({:.3}%, cap {:.2}%), {samples} samples",
        100.0 * se / predicted,
        100.0 * se_max
    );
    assert!(se < se_max * predicted, "{what}: SE {se:.3}ns is too large for a meaningful check ({samples} samples)");
    assert!(
        (estimate - predicted).abs() <= tolerance,
        "{what}: simulated {estimate:.3}ns vs predicted {predicted:.3}ns, tolerance {tolerance:.3}ns (SE {se:.3}, {samples} samples)"
    );
}

/// Run length per utilisation: enough samples for an SE well under 2% (the variance of a
/// queue's mean sojourn grows like 1/(1 − rho)^4).
fn duration_ms(rho: f64) -> u64 {
    match rho {
        r if r < 0.5 => 20,
        r if r < 0.8 => 60,
        _ => 300,
    }
}

/// The p99's SE cap: 1% of the prediction, with run lengths chosen from the sample size.
///
/// For n independent samples of an Exp(theta) sojourn, the sample p99 has standard deviation
/// sqrt(p(1 − p)/n) / f(q) with p = 0.99 and density f(q) = 0.01·theta at q = ln(100)/theta,
/// i.e. 9.95/(theta·sqrt(n)), or 2.16/sqrt(n) of q itself (a little less of the end-to-end
/// p99, which adds the fixed 600 ns). Consecutive sojourns share busy periods, so the
/// effective n is n/tau. Three sets of ten replications (the old run lengths 20/60/300 ms and
/// two longer ones) measured tau from 1 to 6 at rho = 0.3, 11 to 19 at 0.7 and 132 to 168 at
/// 0.9 (ten replications estimate an SE only to ±24%); the old runs' SEs (1.9%, 1.2%, 1.7%
/// of the p99) passed the old 2% cap. Sized for the largest tau, an SE of 0.7%, which leaves
/// the 1% cap that margin, needs n ≥ (2.16/0.007)²·tau = 95,200·tau samples in all: 0.57 M,
/// 1.8 M and 16 M, i.e. per replication 190 ms at 300k/s, 260 ms at 700k/s and 1.8 s at
/// 900k/s. With the 4.5 SE tolerance a p99 is then checked to within 4.6% at worst (3.3% at
/// the 0.7% aimed for; 0.1% of it for the histogram), where the 2% cap allowed 9.1%.
///
/// At rho = 0.9 tau was underestimated: with the arrival streams of each device drawn as
/// one (`workload::Superposed`, the same Poisson process from another stream), the ten
/// 1.8 s replications' p99s range from 42.8 to 48.9 us, an SE of 1.4% (tau ≈ 670, four
/// times the earlier sets' largest). Reaching 0.7% would take four times the run (64 M
/// samples); the cap there is 2% ([`P99_SE_MAX_RHO_09`]), a check to within 6.4% at the SE
/// measured.
const P99_SE_MAX: f64 = 0.01;
/// The p99's SE cap at rho = 0.9 (see [`P99_SE_MAX`]).
const P99_SE_MAX_RHO_09: f64 = 0.02;

fn p99_duration_ms(rho: f64) -> u64 {
    match rho {
        r if r < 0.5 => 190,
        r if r < 0.8 => 260,
        _ => 1_800,
    }
}

#[test]
fn mm1_mean_and_p99_match_closed_form() {
    let mu = 1e6; // 1 / 1us
    for rho in [0.3, 0.7, 0.9] {
        let lambda = rho * mu;
        let s = scenario(1, 1, lambda, "{ dist: exponential, mean: 1us }", p99_duration_ms(rho).max(duration_ms(rho)));
        let sojourn_ns = 1e9 / (mu - lambda);
        let (e, n) = replicate(&s, "latency.end_to_end_ps", &[mean, p99]);
        assert_close(&format!("M/M/1 rho={rho} mean"), e[0], FIXED_NS + sojourn_ns, 0.0, MEAN_SE_MAX, n);
        let q = FIXED_NS + 100f64.ln() * sojourn_ns;
        let se_max = if rho < 0.8 { P99_SE_MAX } else { P99_SE_MAX_RHO_09 };
        assert_close(&format!("M/M/1 rho={rho} p99"), e[1], q, 0.001, se_max, n);
    }
}

#[test]
fn md1_mean_matches_pollaczek_khinchine() {
    let d_ns = 1000.0;
    for rho in [0.3, 0.7, 0.9] {
        let lambda = rho * 1e9 / d_ns;
        let s = scenario(1, 1, lambda, "{ dist: constant, mean: 1us }", duration_ms(rho));
        let predicted = FIXED_NS + d_ns + rho * d_ns / (2.0 * (1.0 - rho));
        let (e, n) = replicate(&s, "latency.end_to_end_ps", &[mean]);
        assert_close(&format!("M/D/1 rho={rho} mean"), e[0], predicted, 0.0, MEAN_SE_MAX, n);
    }
}

#[test]
fn mm1_on_lindleys_recursion_matches_closed_form() {
    // The same M/M/1 queues without the remapping unit: 12 CPUs x 8 queues at rho = 0.7, every
    // CPU on Lindley's recursion (one event per interrupt), behind the 500 ns MSI write only.
    let (mu, rho) = (1e6, 0.7);
    let yaml = format!(
        "name: oracle\nduration: 10ms\nplatform:\n  cpus: 12\n  queueing: fifo\n\
         devices:\n  - name: d\n    queues: 96\n    msi_write_latency: 500ns\n    arrival: {{ process: poisson, rate: {}/s }}\n\
         \x20   handler: {{ service: {{ dist: exponential, mean: 1us }} }}\n",
        rho * mu / 8.0
    );
    let s = scenarios::load("oracle.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
    let (point, _, _) = run_point(&s, 1, 0).expect("conservation holds");
    let on_path = point.counters.iter().find(|c| c.name == "cpu.lindley_path_count").unwrap().value;
    assert_eq!((on_path, point.run.event_count), (12, point.conservation.raised));
    let (e, n) = replicate(&s, "latency.end_to_end_ps", &[mean]);
    assert_close(
        "Lindley, 12 CPUs x 8 queues, rho=0.7, mean",
        e[0],
        500.0 + 1e9 / (mu - rho * mu),
        0.0,
        MEAN_SE_MAX,
        n,
    );
}

#[test]
fn many_queues_over_many_cpus_match_per_cpu_mm1() {
    // 96 queues spread over 12 CPUs: 8 Poisson queues per CPU merge into one Poisson stream,
    // so each CPU is an M/M/1 queue at rho = 8 * lambda_q / mu.
    let mu = 1e6;
    let rho = 0.7;
    let per_queue = rho * mu / 8.0;
    let s = scenario(12, 96, per_queue, "{ dist: exponential, mean: 1us }", 10);
    let (e, n) = replicate(&s, "latency.end_to_end_ps", &[mean]);
    assert_close("12 CPUs x 8 queues, rho=0.7, mean", e[0], FIXED_NS + 1e9 / (mu - rho * mu), 0.0, MEAN_SE_MAX, n);
}

/// The flagship (`catalog/nvme-bare-metal.yaml`: four NVMe controllers of 32 queues over 32
/// CPUs, Poisson completions, lognormal handlers) against Pollaczek–Khinchine. Each CPU runs
/// its handlers FIFO, non-preemptive, so it is an M/G/1 queue fed by the superposition of its
/// queues' Poisson streams: lambda_c = (queues on c) · rate. Its service S is what occupies the
/// CPU per interrupt: entry + handler + EOI, the EOI included (the CPU is busy until the EOI is
/// written), so E[S] = entry + mean + eoi and E[S²] = stddev² + E[S]². The mean wait is
/// W_c = lambda_c·E[S²] / (2(1 − rho_c)), rho_c = lambda_c·E[S], and the histogram's mean is
/// the rate-weighted mean of the W_c. For the catalog's values (4 queues of 60k/s per CPU,
/// 1.2 us ± 600 ns, EOI 100 ns): lambda = 240k/s, E[S] = 1.3 us, E[S²] = 2.05 us²,
/// rho = 0.312, W = 357.56 ns.
///
/// The arrivals at a CPU are Poisson only if every interrupt's delay from raise to CPU is the
/// same (a constant shift) or independent of everything else. The MSI write is constant; the
/// IRTE lookup is not: 20 ns on a hit, 100 ns on a miss in the 64-entry LRU cache, and a hit
/// is likelier when the same queue interrupted recently, so an interrupt that follows its
/// queue's previous one closely, whose work is likely still on the CPU, arrives 80 ns earlier
/// and waits longer. So the closed form is checked on the flagship with the cache removed
/// (every lookup the 100 ns miss, a constant), and the catalog's flagship is then compared
/// with it, seed for seed (the same raise times and handler draws): a finding, asserted as
/// resolved by the sample; the cache adds 4.31 ns (1.2%) with a paired SE of 0.03 ns.
///
/// Sample size: ten 50 ms replications of 384,000 waits each. The wait's standard deviation is
/// sqrt(E[W²] − W²) with E[W²] = 2W² + lambda·E[S³]/(3(1 − rho)) = 0.715 us², so 0.77 us, and
/// 3.84 M independent waits would give an SE of 0.77 us/sqrt(3.84 M) = 0.39 ns (0.11%); waits
/// in one busy period are correlated, so the replications' SE is about twice that (0.76 ns),
/// the SE is capped at 0.5% of the prediction and the check allows 4.5 SE (0.96%).
#[test]
fn flagship_queue_wait_matches_pollaczek_khinchine() {
    let source = scenarios::catalog::get("nvme-bare-metal").expect("the flagship is in the catalog");
    let mut flagship = scenarios::load("nvme-bare-metal.yaml", source).unwrap_or_else(|e| panic!("{e}"));
    flagship.duration = SimDuration::from_ms(50);
    // The queueing oracle: every raise its own job, in arrival order (the catalog's LAPIC
    // merges raises of a pending vector and serves the highest vector first).
    flagship.platform.queueing = models::platform::HostQueueing::Fifo;
    let p = &flagship.platform;
    let ps = |d: SimDuration| d.as_ps() as f64;
    let entry = ps(p.cpu_costs.notification + p.cpu_costs.irq_entry_exit);
    // Each queue's rate (per ps) and service moments (ps, ps²), in topology order (ids 0..).
    let mut queues = Vec::new();
    for d in &p.devices {
        let models::workload::ArrivalParams::Poisson { rate_per_s } = d.arrival else {
            panic!("{}: the oracle needs Poisson arrivals", d.name)
        };
        let sim::DurationDist::LogNormal { mean, stddev, .. } = d.service else {
            panic!("{}: the flagship's handlers are lognormal", d.name)
        };
        let es = entry + ps(mean) + ps(d.eoi_cost);
        queues.extend((0..d.queue_count).map(|_| (rate_per_s * 1e-12, es, ps(stddev).powi(2) + es * es)));
    }
    let (platform, _) = models::platform::Platform::new(p, 1);
    assert_eq!(platform.queue_count() as usize, queues.len());
    // Per CPU: lambda, sum of rate·E[S] (= rho) and sum of rate·E[S²] (= lambda·E[S²] of the mix).
    let mut per_cpu = vec![(0.0, 0.0, 0.0); p.cpu_count as usize];
    for (q, &(rate, es, es2)) in queues.iter().enumerate() {
        let (cpu, _) = platform.queue_target(models::ids::QueueId(q as u32)).expect("every queue is routed");
        let c = &mut per_cpu[cpu.0 as usize];
        *c = (c.0 + rate, c.1 + rate * es, c.2 + rate * es2);
    }
    let (total_rate, weighted_wait) = per_cpu.iter().fold((0.0, 0.0), |(r, w), &(lambda, rho, lambda_es2)| {
        assert!(rho < 1.0, "an unstable CPU: rho {rho}");
        (r + lambda, w + lambda * lambda_es2 / (2.0 * (1.0 - rho)))
    });
    let predicted = weighted_wait / total_rate / 1000.0;
    assert!((predicted - 357.558).abs() < 0.001, "the catalog's values give 357.558 ns: {predicted}");

    let mut uncached = flagship.clone();
    // Without the entry cache every lookup reads the table (the miss latency).
    let remap = &mut uncached.platform.remapping.as_mut().expect("the flagship remaps").remap;
    (remap.iec_entries, remap.iec_hit_latency) = (0, remap.iec_miss_latency);
    let (plain, n) = replication_values(&uncached, "latency.queue_wait_ps", &[mean]);
    assert_close("flagship queue wait, constant lookup", estimate(&plain[0]), predicted, 0.0, 0.005, n);

    let (cached, _) = replication_values(&flagship, "latency.queue_wait_ps", &[mean]);
    let excess: Vec<f64> = cached[0].iter().zip(&plain[0]).map(|(c, u)| c - u).collect();
    let e = estimate(&excess);
    println!("flagship queue wait, the IRTE cache's excess: {:.3}ns, paired SE {:.3}ns", e.mean, e.se);
    assert!(e.mean > 4.5 * e.se, "the IRTE cache's timing makes the arrivals burstier: {e:?}");
}
