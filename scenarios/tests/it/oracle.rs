//! Queueing oracles: the model against closed forms.
//!
//! One CPU fed by Poisson arrivals is an M/G/1 queue behind fixed delays (MSI write, IRTE
//! lookup), so the mean end-to-end latency must be the fixed delays plus the mean sojourn:
//! - M/M/1 (exponential service, mean 1/mu): 1/(mu − lambda); sojourn ~ Exp(mu − lambda), so
//!   the p99 is ln(100)/(mu − lambda);
//! - M/D/1 (constant service D): D + rho·D / (2(1 − rho)) (Pollaczek–Khinchine).
//!
//! Tolerance from the sample size: each case runs R independent replications (different
//! seeds); the estimate is the mean of the replication means and its standard error is the
//! replications' sample standard deviation / sqrt(R). The check is |estimate − theory| ≤
//! 4.5 SE (+0.1% for histogram quantiles). So that the check cannot pass by being vague,
//! each case also asserts that the SE is below 2% of the prediction.

use scenarios::runner::run_point;
use sim::{HistogramSummary, Metrics};

const REPLICATIONS: u64 = 10;
const FIXED_NS: f64 = 500.0 + 100.0; // msi_write_latency + lookup_latency below

fn scenario(cpus: u32, queues: u32, rate_per_queue: f64, service: &str, duration_ms: u64) -> scenarios::Scenario {
    let yaml = format!(
        "name: oracle\nduration: {duration_ms}ms\nplatform:\n  cpus: {cpus}\n  iommu: {{ interrupt_remapping: true, lookup_latency: 100ns }}\n\
         devices:\n  - name: d\n    queues: {queues}\n    msi_write_latency: 500ns\n    arrival: {{ process: poisson, rate: {rate_per_queue}/s }}\n\
         \x20   handler: {{ service: {service} }}\n"
    );
    scenarios::load("oracle.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn end_to_end(metrics: &Metrics) -> HistogramSummary {
    let snapshot = metrics.snapshot();
    snapshot.histograms.into_iter().find(|h| h.info.name == "latency.end_to_end_ps").expect("end_to_end histogram")
}

/// Mean and standard error over replications of `f(end_to_end summary)`, in ns.
fn replicate(s: &scenarios::Scenario, f: impl Fn(&HistogramSummary) -> f64) -> (f64, f64, u64) {
    let mut values = Vec::new();
    let mut samples = 0;
    for seed in 1..=REPLICATIONS {
        let (_, platform, _) = run_point(s, seed, 0).expect("conservation holds");
        let h = end_to_end(platform.metrics());
        samples += h.count;
        values.push(f(&h) / 1000.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt(), samples)
}

fn assert_close(what: &str, estimate: f64, se: f64, predicted: f64, extra_rel: f64, samples: u64) {
    let tolerance = 4.5 * se + extra_rel * predicted;
    assert!(se < 0.02 * predicted, "{what}: SE {se:.3}ns is too large for a meaningful check ({samples} samples)");
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

#[test]
fn mm1_mean_and_p99_match_closed_form() {
    let mu = 1e6; // 1 / 1us
    for rho in [0.3, 0.7, 0.9] {
        let lambda = rho * mu;
        let s = scenario(1, 1, lambda, "{ dist: exponential, mean: 1us }", duration_ms(rho));
        let sojourn_ns = 1e9 / (mu - lambda);
        let (mean, se, n) = replicate(&s, HistogramSummary::mean);
        assert_close(&format!("M/M/1 rho={rho} mean"), mean, se, FIXED_NS + sojourn_ns, 0.0, n);
        let (p99, se, n) = replicate(&s, |h| h.quantiles[2] as f64);
        assert_close(&format!("M/M/1 rho={rho} p99"), p99, se, FIXED_NS + 100f64.ln() * sojourn_ns, 0.001, n);
    }
}

#[test]
fn md1_mean_matches_pollaczek_khinchine() {
    let d_ns = 1000.0;
    for rho in [0.3, 0.7, 0.9] {
        let lambda = rho * 1e9 / d_ns;
        let s = scenario(1, 1, lambda, "{ dist: constant, mean: 1us }", duration_ms(rho));
        let predicted = FIXED_NS + d_ns + rho * d_ns / (2.0 * (1.0 - rho));
        let (mean, se, n) = replicate(&s, HistogramSummary::mean);
        assert_close(&format!("M/D/1 rho={rho} mean"), mean, se, predicted, 0.0, n);
    }
}

#[test]
fn many_queues_over_many_cpus_match_per_cpu_mm1() {
    // 96 queues spread over 12 CPUs: 8 Poisson queues per CPU merge into one Poisson stream,
    // so each CPU is an M/M/1 queue at rho = 8 * lambda_q / mu.
    let mu = 1e6;
    let rho = 0.7;
    let per_queue = rho * mu / 8.0;
    let s = scenario(12, 96, per_queue, "{ dist: exponential, mean: 1us }", 10);
    let (mean, se, n) = replicate(&s, HistogramSummary::mean);
    assert_close("12 CPUs x 8 queues, rho=0.7, mean", mean, se, FIXED_NS + 1e9 / (mu - rho * mu), 0.0, n);
}
