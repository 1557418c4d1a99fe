//! Fuzz target `load`: arbitrary bytes (non-UTF-8 sequences replaced, as a file's would be
//! reported) through `scenarios::load`; a refusal must render its message, and a scenario
//! that validates runs for at most 200 us and 20,000 events and must conserve interrupts and
//! keep the chip's accounting consistent (`Platform::check_invariants`). Any panic is a
//! finding. The stable test `scenarios/tests/it/generated.rs` replays `fuzz/corpus/load/`.
//!
//! Run (nightly): `cargo +nightly fuzz run load` from the repository root; see
//! docs/bad-input.md.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scenarios::{estimate, runner::run_point};
use sim::SimDuration;

/// The bounds the stable test uses too.
const RUN_US: u64 = 200;
const RUN_EVENTS: u64 = 20_000;
const RUN_MEMORY_MAX: u64 = 32 << 20;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match scenarios::load("fuzz.yaml", &text) {
        Err(e) => assert!(!e.to_string().is_empty(), "an empty error message"),
        Ok(mut s) => {
            if estimate::memory_bytes(&s) > RUN_MEMORY_MAX {
                return;
            }
            s.duration = s.duration.min(SimDuration::from_us(RUN_US));
            s.event_limit = Some(s.event_limit.unwrap_or(RUN_EVENTS).min(RUN_EVENTS));
            let (_, platform, _) = run_point(&s, s.seed, 0).unwrap_or_else(|e| panic!("{e}"));
            platform.check_invariants().unwrap_or_else(|e| panic!("invariant violated: {e}"));
        }
    }
});
