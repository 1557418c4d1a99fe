//! The metrics registry: counters and HDR histograms, each registered once with a name, a
//! unit and a description, and updated on the hot path through typed ids (a `Vec` index,
//! never a string lookup).
//!
//! Histograms record integer values (durations in picoseconds) in the buckets of an
//! `hdrhistogram` with three significant digits, so every quantile has a relative error below
//! 0.1% and is the same on every run with the same seed; the counts are kept by bucket index
//! here and handed to the crate when a histogram is read, which makes it the histogram that
//! recording each value in the crate gives (a test compares). Each histogram also keeps the exact sum of its
//! values, so means are exact rather than bucket-rounded.

use hdrhistogram::Histogram;

use crate::time::SimTime;

/// The unit of a metric. Reports label every number with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count of things.
    Count,
    /// Simulated time in picoseconds.
    Picoseconds,
}

impl Unit {
    /// The unit's short name as used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Picoseconds => "ps",
        }
    }
}

/// Handle to a registered counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterId(u32);

/// Handle to a registered histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramId(u32);

/// What a metric is: its name (dotted, lower case, unit last), unit and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricInfo {
    /// Dotted lower-case name, e.g. `interrupt.raised_count`.
    pub name: String,
    /// The unit of its values.
    pub unit: Unit,
    /// One sentence for humans.
    pub description: String,
    /// A counter of modelled failures (reports list these with their counts and reasons).
    pub failure: bool,
}

/// The bucket layout of an `hdrhistogram` at three significant digits with a lowest
/// discernible value of 1 (`Histogram::new(3)`): 2,048 sub-buckets of width 1 for 0..2,048,
/// then per power of two 1,024 sub-buckets of twice the previous width. [`hdr_index`] is the
/// crate's `index_for` for that layout and [`hdr_value`] its `value_for` (the lowest value of
/// an index), so counts kept by index convert into the crate's histogram exactly.
const HDR_SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;
/// Values below 2,048 are bucket 0.
const HDR_SUB_BUCKET_MASK: u64 = (1 << (HDR_SUB_BUCKET_HALF_MAGNITUDE + 1)) - 1;
/// 64 − unit magnitude (0) − sub-bucket half-count magnitude − 1.
const HDR_LEADING_ZERO_BASE: u32 = 64 - HDR_SUB_BUCKET_HALF_MAGNITUDE - 1;

/// The index of `value`'s bucket (at most 56,319, for `u64::MAX`).
#[inline]
fn hdr_index(value: u64) -> usize {
    // The crate's `(bucket + 1) × 2^10 + (value >> bucket) − 2^10`, with `bucket` its
    // 53 − leading zeros, is `bucket × 2^10 + (value >> bucket)`; and 53 − leading zeros
    // is the top bit's place less 10 (`ilog2`, one `bsr`: the value ORed with the mask is
    // never 0).
    let bucket = (value | HDR_SUB_BUCKET_MASK).ilog2() - (63 - HDR_LEADING_ZERO_BASE);
    ((u64::from(bucket) << HDR_SUB_BUCKET_HALF_MAGNITUDE) + (value >> bucket)) as usize
}

/// The lowest value of index `index`'s bucket.
fn hdr_value(index: usize) -> u64 {
    let half = 1u64 << HDR_SUB_BUCKET_HALF_MAGNITUDE;
    let bucket = (index >> HDR_SUB_BUCKET_HALF_MAGNITUDE) as u32;
    let sub = (index as u64 & (half - 1)) + half;
    if bucket == 0 { sub - half } else { sub << (bucket - 1) }
}

/// A histogram's values counted by bucket index, with their exact sum, least and most:
/// what a registered histogram holds, and what a hot path that owns one counts apart from
/// the registry and adds into it at once ([`Metrics::add_tally`]): a record then reads no
/// registry entry (no id to look up, no bounds check, no run to compare with), which on
/// Lindley's path is most of a record's cost. The registry's histogram comes out the same
/// as recording each value in it (counts, sum, least and most do not depend on the order).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Values recorded per HDR bucket index ([`hdr_index`]), grown as larger values come:
    /// the crate's counts without its resizing, overflow checks and `Result` on the hot path
    /// (a value's index is an `ilog2`, two shifts and an add); converted into an
    /// `hdrhistogram` when read ([`HistogramSlot::whole`]).
    counts: Vec<u64>,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Tally {
    /// No values.
    pub const fn new() -> Tally {
        Tally { counts: Vec::new(), sum: 0, min: u64::MAX, max: 0 }
    }

    /// Counts one value.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.add_n(value, 1);
    }

    /// Counts `n` values `value` (none when `n` is 0).
    #[inline]
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n > 0 {
            self.add_n(value, n);
        }
    }

    /// The sum of the values counted.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Counts `n` (> 0) values `value`.
    #[inline]
    fn add_n(&mut self, value: u64, n: u64) {
        let index = hdr_index(value);
        match self.counts.get_mut(index) {
            Some(count) => *count += n,
            None => self.grow(index, n),
        }
        self.sum += u128::from(value) * u128::from(n);
        // A compare and a branch each, not a load, conditional move and store: after a
        // tally's first values the least and most rarely change.
        if value < self.min {
            self.new_min(value);
        }
        if value > self.max {
            self.new_max(value);
        }
    }

    /// `value` is the least yet.
    #[cold]
    fn new_min(&mut self, value: u64) {
        self.min = value;
    }

    /// `value` is the most yet.
    #[cold]
    fn new_max(&mut self, value: u64) {
        self.max = value;
    }

    /// Room for bucket index `index` (as the crate resizes: rarely, to larger values), and
    /// `n` counted there.
    #[cold]
    fn grow(&mut self, index: usize, n: u64) {
        self.counts.resize(index + 1, 0);
        self.counts[index] = n;
    }

    /// Adds every value of `other`.
    fn merge(&mut self, other: &Tally) {
        let used = other.used();
        self.add_counts(used.clone(), other.counts[used].iter().copied(), other);
    }

    /// Adds `counts`, the counts of `other`'s bucket indices `used` (those that can be
    /// non-zero), and `other`'s sum, least and most.
    #[inline]
    fn add_counts(&mut self, used: std::ops::Range<usize>, counts: impl Iterator<Item = u64>, other: &Tally) {
        if self.counts.len() < used.end {
            self.counts.resize(used.end, 0);
        }
        for (mine, theirs) in self.counts[used].iter_mut().zip(counts) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The bucket indices that can hold values: those from the least value's to the most's.
    fn used(&self) -> std::ops::Range<usize> {
        if self.min > self.max { 0..0 } else { hdr_index(self.min)..hdr_index(self.max) + 1 }
    }

    /// Moves every value into `into`, leaving this tally empty (with its counts' room): each
    /// count is added there and cleared here in one pass (a merge and then a fill passed
    /// over the used buckets twice: at 100 settles of Lindley's tallies a run, about 15,000
    /// buckets each, callgrind counted the fill at 23 instructions an interrupt over a
    /// 200 ms run of benches/peers/mm1-1024.yaml).
    fn drain_into(&mut self, into: &mut Tally) {
        let used = self.used();
        let mut counts = std::mem::take(&mut self.counts);
        into.add_counts(used.clone(), counts[used].iter_mut().map(std::mem::take), self);
        self.counts = counts;
        (self.sum, self.min, self.max) = (0, u64::MAX, 0);
    }

    /// Values counted.
    fn len(&self) -> u64 {
        self.counts.iter().sum::<u64>()
    }
}

#[derive(Debug, Clone)]
struct HistogramSlot {
    info: MetricInfo,
    /// The values counted.
    tally: Tally,
    /// A run of equal values not yet in `tally`: (value, how many). Many stages take
    /// the same time for every interrupt (a constant MSI write or EOI), so a run is counted
    /// and recorded once when the value changes or the histogram is read; the
    /// histogram, sum, min and max come out the same as recording each value. (0, 0) when
    /// empty, so that recording extends it without testing its count.
    run: (u64, u64),
}

impl HistogramSlot {
    /// Moves the pending run into the tally.
    #[inline]
    fn flush(&mut self) {
        let (value, n) = self.run;
        if n > 0 {
            self.tally.add_n(value, n);
            self.run = (0, 0);
        }
    }

    /// The slot with the pending run counted.
    fn flushed(&self) -> HistogramSlot {
        let mut slot = self.clone();
        slot.flush();
        slot
    }

    /// Values recorded, the pending run included.
    fn len(&self) -> u64 {
        self.tally.len() + self.run.1
    }

    /// The `hdrhistogram` of every value recorded, the pending run included: the same
    /// histogram as recording each value in it. Each index's count is recorded at the index's
    /// lowest value, but the exact least non-zero and greatest values are recorded as
    /// themselves, so the crate's own min and max (which its iterators read) are exact too.
    fn whole(&self) -> Histogram<u64> {
        let slot = self.flushed();
        let t = &slot.tally;
        let mut h = Histogram::new(3).expect("3 significant digits is a valid precision");
        let mut exact = Vec::new();
        if t.min > 0 && t.min != u64::MAX {
            exact.push(t.min);
        }
        if t.max > 0 && t.max != t.min {
            exact.push(t.max);
        }
        for (index, &count) in t.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let here: Vec<u64> = exact.iter().copied().filter(|&v| hdr_index(v) == index).collect();
            let rest = count - here.len() as u64;
            if rest > 0 {
                h.record_n(hdr_value(index), rest).expect("histogram value out of range");
            }
            for v in here {
                h.record(v).expect("histogram value out of range");
            }
        }
        h
    }

    /// Sum, min and max with the pending run in them.
    fn totals(&self) -> (u128, u64, u64) {
        let (value, n) = self.run;
        let t = &self.tally;
        if n == 0 {
            return (t.sum, t.min, t.max);
        }
        (t.sum + u128::from(value) * u128::from(n), t.min.min(value), t.max.max(value))
    }
}

/// All metrics of one run.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    counters: Vec<(MetricInfo, u64)>,
    histograms: Vec<HistogramSlot>,
    /// The first and the last occurrence of each failure counted with [`Metrics::fail`],
    /// by counter index.
    examples: Vec<Option<FailureExamples>>,
}

/// One occurrence of a modelled failure: when, and the line as the kernel (or the
/// hardware's fault log) would have printed it, with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureExample {
    /// When it happened.
    pub at: SimTime,
    /// The line, with its values.
    pub line: String,
}

/// The first and the last occurrence of a failure (the same one when it happened once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureExamples {
    /// The first occurrence.
    pub first: FailureExample,
    /// The last occurrence.
    pub last: FailureExample,
}

/// A histogram's summary at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSummary {
    /// What was measured.
    pub info: MetricInfo,
    /// Number of values recorded.
    pub count: u64,
    /// Exact sum of the values.
    pub sum: u128,
    /// Smallest value, exact (0 when empty).
    pub min: u64,
    /// Largest value, exact (0 when empty).
    pub max: u64,
    /// Population standard deviation of the values, from the HDR buckets (each value at its
    /// bucket's representative, within 0.1%; 0 when empty).
    pub stddev: f64,
    /// Values at the quantiles of [`SUMMARY_QUANTILES`], in that order (0 when empty),
    /// within 0.1% and clamped to the exact [min, max] (a bucket's upper edge can
    /// otherwise exceed the largest value recorded).
    pub quantiles: Vec<u64>,
    /// The distribution in quarter-octave buckets (1 ns × 2^(k/4)): (upper
    /// bound in ps, inclusive; values recorded above the previous bound and at most this
    /// one), buckets with no value left out, in increasing order. Each recorded value is
    /// counted at its HDR bucket's highest equivalent value (within 0.1%).
    pub buckets: Vec<(u64, u64)>,
}

/// Quarter-octave multipliers 2^(j/4), j = 0..4, times 10^6 (rounded).
const QUARTER_OCTAVE: [u64; 4] = [1_000_000, 1_189_207, 1_414_214, 1_681_793];

/// Upper bounds of the histogram buckets of a summary, in picoseconds: 1 ns × 2^(k/4) for
/// k = 0, 1, … up to 2^50 ns, in integers so that every platform draws the same edges
/// (the first bucket also holds everything below 1 ns).
pub(crate) fn quarter_octave_bounds_ps() -> impl Iterator<Item = u64> {
    // In u128: 1.68 × 10^6 × 2^49 overflows u64 before the division by 1,000.
    (0..50u32).flat_map(|octave| QUARTER_OCTAVE.iter().map(move |&c| ((u128::from(c) << octave) / 1_000) as u64))
}

/// The quantiles every histogram summary carries: p50, p90, p99, p99.9.
pub const SUMMARY_QUANTILES: [f64; 4] = [0.50, 0.90, 0.99, 0.999];

impl HistogramSummary {
    /// The exact mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }
}

/// `h` in quarter-octave buckets (see [`HistogramSummary::buckets`]).
fn buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    let bounds: Vec<u64> = quarter_octave_bounds_ps().collect();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to());
        let at = bounds.partition_point(|&b| b < value).min(bounds.len() - 1);
        match out.last_mut() {
            Some((bound, count)) if *bound == bounds[at] => *count += v.count_at_value(),
            _ => out.push((bounds[at], v.count_at_value())),
        }
    }
    out
}

/// A snapshot of every metric, in registration order.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// Counters and their values.
    pub counters: Vec<(MetricInfo, u64)>,
    /// The first and last occurrence of each failure counter, parallel to `counters`.
    pub examples: Vec<Option<FailureExamples>>,
    /// Histogram summaries.
    pub histograms: Vec<HistogramSummary>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn assert_new_name(&self, name: &str) {
        let taken = self.counters.iter().map(|(i, _)| i).chain(self.histograms.iter().map(|h| &h.info));
        assert!(taken.into_iter().all(|i| i.name != name), "metric {name} registered twice");
    }

    /// Registers a counter.
    pub fn counter(&mut self, name: &str, unit: Unit, description: &str) -> CounterId {
        self.register_counter(name, unit, description, false)
    }

    /// Registers a counter of modelled failures; `reason` says why each one happened, in the
    /// kernel's or the specification's words where there are some.
    pub fn failure_counter(&mut self, name: &str, reason: &str) -> CounterId {
        self.register_counter(name, Unit::Count, reason, true)
    }

    fn register_counter(&mut self, name: &str, unit: Unit, description: &str, failure: bool) -> CounterId {
        self.assert_new_name(name);
        let info = MetricInfo { name: name.to_owned(), unit, description: description.to_owned(), failure };
        self.counters.push((info, 0));
        CounterId(u32::try_from(self.counters.len() - 1).expect("fewer than 2^32 counters"))
    }

    /// Registers a histogram of integer values.
    pub fn histogram(&mut self, name: &str, unit: Unit, description: &str) -> HistogramId {
        self.assert_new_name(name);
        let info = MetricInfo { name: name.to_owned(), unit, description: description.to_owned(), failure: false };
        self.histograms.push(HistogramSlot { info, tally: Tally::new(), run: (0, 0) });
        HistogramId(u32::try_from(self.histograms.len() - 1).expect("fewer than 2^32 histograms"))
    }

    /// Adds `n` to a counter.
    #[inline]
    pub fn add(&mut self, id: CounterId, n: u64) {
        self.counters[id.0 as usize].1 += n;
    }

    /// Counts one modelled failure at `at` and keeps its line: see [`Metrics::note`].
    pub fn fail(&mut self, id: CounterId, at: SimTime, line: impl FnOnce() -> String) {
        self.counters[id.0 as usize].1 += 1;
        self.note(id, at, line);
    }

    /// Keeps the line of a failure counted elsewhere: the first occurrence, and the last
    /// one so far.
    pub fn note(&mut self, id: CounterId, at: SimTime, line: impl FnOnce() -> String) {
        let index = id.0 as usize;
        debug_assert!(self.counters[index].0.failure, "{} is not a failure counter", self.counters[index].0.name);
        if self.examples.len() <= index {
            self.examples.resize(index + 1, None);
        }
        let example = FailureExample { at, line: line() };
        match &mut self.examples[index] {
            Some(e) => e.last = example,
            slot @ None => *slot = Some(FailureExamples { first: example.clone(), last: example }),
        }
    }

    /// A counter's current value.
    pub fn get(&self, id: CounterId) -> u64 {
        self.counters[id.0 as usize].1
    }

    /// Records one value in a histogram.
    #[inline]
    pub fn record(&mut self, id: HistogramId, value: u64) {
        let slot = &mut self.histograms[id.0 as usize];
        // An empty run is (0, 0) (as flushed or new), so a first value 0 extends it to (0, 1)
        // and no count test is needed.
        if slot.run.0 == value {
            slot.run.1 += 1;
        } else {
            slot.flush();
            slot.run = (value, 1);
        }
    }

    /// Records `n` values `value` in a histogram (none when `n` is 0).
    pub fn record_n(&mut self, id: HistogramId, value: u64, n: u64) {
        let slot = &mut self.histograms[id.0 as usize];
        if slot.run.0 == value {
            slot.run.1 += n;
        } else {
            slot.tally.record_n(value, n);
        }
    }

    /// Adds every value `tally` counted into a histogram, and empties `tally`.
    pub fn add_tally(&mut self, id: HistogramId, tally: &mut Tally) {
        tally.drain_into(&mut self.histograms[id.0 as usize].tally);
    }

    /// Number of values recorded in a histogram.
    pub fn histogram_count(&self, id: HistogramId) -> u64 {
        self.histograms[id.0 as usize].len()
    }

    /// Adds every value of `other` into this registry. Both must have registered the same
    /// metrics in the same order (they come from the same build of the same scenario).
    pub fn merge(&mut self, other: &Metrics) {
        assert_eq!(self.counters.len(), other.counters.len(), "merging different metric sets");
        assert_eq!(self.histograms.len(), other.histograms.len(), "merging different metric sets");
        for ((info, value), (other_info, other_value)) in self.counters.iter_mut().zip(&other.counters) {
            assert_eq!(info.name, other_info.name, "merging different metric sets");
            *value += other_value;
        }
        // Other's occurrences come after this registry's: its last one is the merged last.
        self.examples.resize(self.counters.len(), None);
        for (mine, theirs) in self.examples.iter_mut().zip(&other.examples) {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.last = t.last.clone(),
                (None, Some(t)) => *mine = Some(t.clone()),
                (_, None) => {}
            }
        }
        for (slot, other_slot) in self.histograms.iter_mut().zip(&other.histograms) {
            assert_eq!(slot.info.name, other_slot.info.name, "merging different metric sets");
            slot.flush();
            slot.tally.merge(&other_slot.flushed().tally);
        }
    }

    /// Summaries of every metric.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let histograms = self
            .histograms
            .iter()
            .map(|slot| {
                let h = &slot.whole();
                let (sum, min, max) = slot.totals();
                let empty = h.is_empty();
                HistogramSummary {
                    info: slot.info.clone(),
                    count: h.len(),
                    sum,
                    min: if empty { 0 } else { min },
                    max,
                    stddev: if empty { 0.0 } else { h.stdev() },
                    quantiles: SUMMARY_QUANTILES
                        .iter()
                        .map(|&q| if empty { 0 } else { h.value_at_quantile(q).clamp(min, max) })
                        .collect(),
                    buckets: buckets(h),
                }
            })
            .collect();
        let mut examples = self.examples.clone();
        examples.resize(self.counters.len(), None);
        MetricsSnapshot { counters: self.counters.clone(), examples, histograms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_equal_values_summarise_as_each_value_recorded() {
        // Runs, changes, a repeat after a change, a merge with a pending run on both sides.
        let values = [500u64, 500, 500, 7, 7, 500, 1_000_000, 1_000_000, 3, 500];
        let mut m = Metrics::new();
        let h = m.histogram("x_ps", Unit::Picoseconds, "x");
        let mut reference = Histogram::<u64>::new(3).unwrap();
        for &v in &values {
            m.record(h, v);
            reference.record(v).unwrap();
        }
        assert_eq!(m.histogram_count(h), values.len() as u64);
        let mut other = Metrics::new();
        let oh = other.histogram("x_ps", Unit::Picoseconds, "x");
        for v in [9u64, 9, 9] {
            other.record(oh, v);
            reference.record(v).unwrap();
        }
        m.merge(&other);
        m.record(h, 9);
        reference.record(9).unwrap();
        let s = &m.snapshot().histograms[0];
        assert_eq!((s.count, s.min, s.max), (reference.len(), 3, 1_000_000));
        assert_eq!(s.sum, values.iter().map(|&v| u128::from(v)).sum::<u128>() + 36);
        let q: Vec<u64> =
            SUMMARY_QUANTILES.iter().map(|&p| reference.value_at_quantile(p).clamp(3, 1_000_000)).collect();
        assert_eq!(s.quantiles, q);
        assert_eq!(s.buckets, buckets(&reference));
    }

    #[test]
    fn tallies_and_counted_runs_summarise_as_each_value_recorded() {
        // The same 20,005 values recorded one by one, and split: every other one through a
        // tally added in twice (emptied in between), the rest recorded; then five 7s as one
        // record and two counted runs (one extending the pending run), and a run of none.
        let mut g = crate::SplitMix64::new(5);
        let values: Vec<u64> = (0..20_000).map(|_| g.next_u64() >> (30 + g.next_u64() % 34)).collect();
        let mut each = Metrics::new();
        let he = each.histogram("x_ps", Unit::Picoseconds, "x");
        let mut split = Metrics::new();
        let hs = split.histogram("x_ps", Unit::Picoseconds, "x");
        let mut tally = Tally::new();
        for (i, &v) in values.iter().enumerate() {
            each.record(he, v);
            if i % 2 == 0 {
                tally.record(v)
            } else {
                split.record(hs, v)
            }
            if i == 10_000 {
                split.add_tally(hs, &mut tally);
                assert_eq!((tally.sum(), tally.len()), (0, 0));
            }
        }
        split.add_tally(hs, &mut tally);
        (0..5).for_each(|_| each.record(he, 7));
        split.record(hs, 7);
        split.record_n(hs, 7, 2);
        split.record_n(hs, 9, 0);
        split.record_n(hs, 7, 2);
        assert_eq!(split.histogram_count(hs), 20_005);
        assert_eq!(each.snapshot(), split.snapshot());
    }

    #[test]
    fn zeros_first_and_after_a_flush_are_counted() {
        // The empty run is (0, 0): a 0 recorded first, or first after a merge flushed the
        // run, extends it. Counted values: 0, 0, 4, then 0 after the merge: count 4, sum 4.
        let mut m = Metrics::new();
        let h = m.histogram("z_ps", Unit::Picoseconds, "z");
        m.record(h, 0);
        m.record(h, 0);
        m.record(h, 4);
        let mut other = Metrics::new();
        other.histogram("z_ps", Unit::Picoseconds, "z");
        m.merge(&other);
        m.record(h, 0);
        let s = &m.snapshot().histograms[0];
        assert_eq!((s.count, s.sum, s.min, s.max), (4, 4, 0, 4));
        assert_eq!(s.buckets, vec![(1_000, 4)]);
    }

    #[test]
    fn bucket_indices_are_the_crates() {
        // Index and lowest value at each power of two, one either side, and random values.
        let mut values: Vec<u64> = (0..64).flat_map(|k| [(1u64 << k) - 1, 1 << k, (1 << k) + 1]).collect();
        let mut g = crate::SplitMix64::new(7);
        values.extend((0..10_000).map(|_| g.next_u64() >> (g.next_u64() % 64)));
        values.push(u64::MAX >> 1);
        for v in values {
            let mut h = Histogram::<u64>::new(3).unwrap();
            h.record(v).unwrap();
            let crate_value = h.iter_recorded().next().unwrap().value_iterated_to();
            assert_eq!(hdr_value(hdr_index(v)), h.lowest_equivalent(v), "{v}");
            assert_eq!(h.highest_equivalent(hdr_value(hdr_index(v))), crate_value, "{v}");
            assert_eq!(hdr_index(hdr_value(hdr_index(v))), hdr_index(v), "{v}");
        }
        // The last bucket: 53 × 1,024 + (2^64 − 1) >> 53 = 54,272 + 2,047.
        assert_eq!(hdr_index(u64::MAX), 56_319);
    }

    #[test]
    fn a_summary_is_the_crates_for_the_same_values() {
        // Values over 30 octaves with runs and zeros; a merge; the crate records each value.
        let mut g = crate::SplitMix64::new(11);
        let mut m = Metrics::new();
        let h = m.histogram("x_ps", Unit::Picoseconds, "x");
        let mut other = Metrics::new();
        let oh = other.histogram("x_ps", Unit::Picoseconds, "x");
        let mut reference = Histogram::<u64>::new(3).unwrap();
        let (mut min, mut max) = (u64::MAX, 0);
        for i in 0..50_000u64 {
            let v = match g.next_u64() % 4 {
                0 => 0,
                1 => 1_000,
                _ => g.next_u64() >> (34 + g.next_u64() % 30),
            };
            if i % 3 == 0 {
                other.record(oh, v)
            } else {
                m.record(h, v)
            }
            reference.record(v).unwrap();
            (min, max) = (min.min(v), max.max(v));
        }
        m.merge(&other);
        let s = &m.snapshot().histograms[0];
        assert_eq!((s.count, s.min, s.max), (reference.len(), min, max));
        assert_eq!(s.stddev.to_bits(), reference.stdev().to_bits());
        let q: Vec<u64> = SUMMARY_QUANTILES.iter().map(|&p| reference.value_at_quantile(p).clamp(min, max)).collect();
        assert_eq!(s.quantiles, q);
        assert_eq!(s.buckets, buckets(&reference));
        let whole = m.histograms[0].whole();
        assert_eq!((whole.min_nz(), whole.max(), whole.len()), (reference.min_nz(), reference.max(), reference.len()));
    }

    #[test]
    fn quarter_octave_buckets_count_each_value_once() {
        let bounds: Vec<u64> = quarter_octave_bounds_ps().take(6).collect();
        assert_eq!(bounds, vec![1000, 1189, 1414, 1681, 2000, 2378]);
        // Sorted to the last bound, 1.68 × 2^49 ns.
        let all: Vec<u64> = quarter_octave_bounds_ps().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.last().copied(), Some((1_681_793u128 * (1 << 49) / 1000) as u64));
        let mut m = Metrics::new();
        let h = m.histogram("latency.x_ps", Unit::Picoseconds, "x");
        // 0 and 1000 ps fall in the first bucket; 1001 in the second; 2000 on a bound.
        for v in [0, 1000, 1000, 1001, 2000] {
            m.record(h, v);
        }
        let s = m.snapshot();
        assert_eq!(s.histograms[0].buckets, vec![(1000, 3), (1189, 1), (2000, 1)]);
    }

    #[test]
    fn counters_and_histograms_summarise_exactly() {
        let mut m = Metrics::new();
        let c = m.counter("x.count", Unit::Count, "things");
        let h = m.histogram("x.latency_ps", Unit::Picoseconds, "latency");
        m.add(c, 2);
        m.add(c, 3);
        for v in 1..=1000u64 {
            m.record(h, v * 1000);
        }
        let s = m.snapshot();
        assert_eq!(s.counters[0].1, 5);
        let hs = &s.histograms[0];
        assert_eq!((hs.count, hs.min, hs.max), (1000, 1000, 1_000_000));
        assert_eq!(hs.mean(), 500_500.0);
        // p50 of 1..=1000 (×1000) is 500_000 to within the 0.1% precision.
        let p50 = hs.quantiles[0] as f64;
        assert!((p50 - 500_000.0).abs() <= 500.0, "p50 {p50}");
    }

    #[test]
    fn merge_adds_counts() {
        let build = || {
            let mut m = Metrics::new();
            let c = m.counter("c", Unit::Count, "c");
            let h = m.histogram("h", Unit::Picoseconds, "h");
            (m, c, h)
        };
        let (mut a, c, h) = build();
        let (mut b, _, _) = build();
        a.add(c, 1);
        a.record(h, 10);
        b.add(c, 2);
        b.record(h, 30);
        a.merge(&b);
        let s = a.snapshot();
        assert_eq!(s.counters[0].1, 3);
        assert_eq!((s.histograms[0].count, s.histograms[0].sum), (2, 40));
    }

    #[test]
    fn names_are_unique() {
        let mut m = Metrics::new();
        m.counter("dup", Unit::Count, "a");
        assert!(std::panic::catch_unwind(move || m.histogram("dup", Unit::Count, "b")).is_err());
    }
}
