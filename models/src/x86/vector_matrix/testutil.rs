//! Test helpers shared by the vector-matrix tests: the independent restatement
//! of the kernel arithmetic (docs/sources.md#vectors-per-cpu), builders and checkers for
//! matrices and domains, and the seeded random source of the random tests.

use std::collections::BTreeSet;

use super::*;

// -- Independent restatement of the kernel arithmetic (docs/sources.md#vectors-per-cpu) --

/// `FIRST_SYSTEM_VECTOR` per era, restated from docs/sources.md#first-system-vector, not read
/// from the model.
pub(super) fn first_system_vector_of(era: KernelEra) -> u32 {
    match era {
        KernelEra::UpTo6_5 | KernelEra::V6_6To6_9 => 0xec,
        KernelEra::From6_10 => 0xeb,
    }
}

/// System vectors inside `[0x20, FIRST_SYSTEM_VECTOR)`, restated from docs/sources.md#vector-holes.
pub(super) fn holes_of(era: KernelEra, legacy_pic: bool, ia32_emulation: bool) -> BTreeSet<u32> {
    let mut holes = BTreeSet::new();
    if era == KernelEra::UpTo6_5 {
        holes.insert(0x20); // IRQ_MOVE_CLEANUP_VECTOR
    }
    if ia32_emulation {
        holes.insert(0x80);
    }
    if legacy_pic {
        holes.insert(0x30 + 2); // ISA_IRQ_VECTOR(2), the cascade
    }
    holes
}

pub(super) fn per_cpu_expected(era: KernelEra, legacy_pic: bool, ia32_emulation: bool) -> u32 {
    let holes = holes_of(era, legacy_pic, ia32_emulation);
    (0x20..first_system_vector_of(era)).filter(|v| !holes.contains(v)).count() as u32
}

/// The boot CPU's ISA vectors: 0x30..0x40 except the cascade.
pub(super) fn isa_vectors_expected(legacy_pic: bool) -> BTreeSet<u32> {
    if legacy_pic { (0x30..0x40).filter(|&v| v != 0x32).collect() } else { BTreeSet::new() }
}

pub(super) fn params(cpu_count: u32, era: KernelEra, legacy_pic: bool) -> MatrixParams {
    MatrixParams { cpu_count, era, legacy_pic, ia32_emulation: true }
}

pub(super) fn configs() -> Vec<(KernelEra, bool)> {
    KernelEra::ALL.iter().flat_map(|&era| [(era, true), (era, false)]).collect()
}

pub(super) fn cpus(list: &[u32]) -> CpuSet {
    list.iter().map(|&cpu| CpuId(cpu)).collect()
}

#[track_caller]
pub(super) fn check(matrix: &VectorMatrix) {
    if let Err(error) = matrix.check_invariants() {
        panic!("matrix invariant: {error}");
    }
}

#[track_caller]
pub(super) fn check_domain(domain: &VectorDomain) {
    if let Err(error) = domain.check_invariants() {
        panic!("domain invariant: {error}");
    }
}

pub(super) fn avail(matrix: &VectorMatrix, cpu: u32) -> u32 {
    matrix.cpumap(CpuId(cpu)).expect("cpu").available()
}

pub(super) fn allocated_on(domain: &VectorDomain, cpu: u32) -> u32 {
    domain.matrix().cpumap(CpuId(cpu)).expect("cpu").allocated()
}

/// Allocates and activates a non-managed interrupt; returns it and its activation.
#[track_caller]
pub(super) fn request(domain: &mut VectorDomain, affinity: &[u32], node: Option<u32>) -> (IrqId, Activation) {
    let irq = domain.alloc_irq(cpus(affinity), node.map(NodeId)).expect("alloc_irq");
    check_domain(domain);
    let activation = domain.activate(irq).expect("activate");
    check_domain(domain);
    (irq, activation)
}

#[track_caller]
pub(super) fn request_managed(domain: &mut VectorDomain, affinity: &[u32]) -> (IrqId, Activation) {
    let irq = domain.alloc_irq_managed(cpus(affinity)).expect("alloc_irq_managed");
    check_domain(domain);
    let activation = domain.activate(irq).expect("activate");
    check_domain(domain);
    (irq, activation)
}

#[track_caller]
pub(super) fn assigned_cpu(activation: Activation) -> u32 {
    match activation {
        Activation::Assigned { cpu, .. } => cpu.0,
        other => panic!("expected a vector, got {other:?}"),
    }
}

/// Fills `cpu` with non-managed interrupts pinned to it, down to `left` available.
pub(super) fn fill_cpu(domain: &mut VectorDomain, cpu: u32, left: u32) {
    while avail(domain.matrix(), cpu) > left {
        let (_, activation) = request(domain, &[cpu], None);
        assert_eq!(assigned_cpu(activation), cpu);
    }
}

/// The random tests' source: [`sim::SplitMix64`] from a seed, with the draws they need.
pub(super) struct TestRng(sim::SplitMix64);

impl TestRng {
    pub(super) fn new(seed: u64) -> TestRng {
        TestRng(sim::SplitMix64::new(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub(super) fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A random subset of `0..=limit` (may be empty; `limit` itself may be out of range).
    pub(super) fn mask(&mut self, limit: u32) -> CpuSet {
        (0..=limit).filter(|_| self.coin()).map(CpuId).collect()
    }
}

/// Runs `run` for seeds `0..seed_count`, or for `SEED` alone when set.
pub(super) fn run_seeds(name: &str, seed_count: u64, run: fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(seed) => vec![seed.parse().expect("SEED must be an unsigned integer")],
        Err(_) => (0..seed_count).collect(),
    };
    for seed in seeds {
        match std::panic::catch_unwind(|| run(seed)) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => panic!("{name}: seed {seed}: {message}\nreplay: SEED={seed} cargo test {name}"),
            Err(_) => panic!("{name}: seed {seed} panicked (see above)\nreplay: SEED={seed} cargo test {name}"),
        }
    }
}

pub(super) fn random_params(rng: &mut TestRng, cpu_count_max: u64) -> MatrixParams {
    MatrixParams {
        cpu_count: 1 + rng.below(cpu_count_max) as u32,
        era: KernelEra::ALL[rng.below(3) as usize],
        legacy_pic: rng.coin(),
        ia32_emulation: rng.below(4) != 0,
    }
}
