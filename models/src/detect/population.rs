//! A weighted population of configurations and guest drivers, and per policy column the
//! exact share of guests in each outcome: the cells weighted and summed, as fractions.

use std::fmt::Write;

use super::matrix::Column;
use super::presets::Preset;
use super::{Driver, GuestKernel, ImsPath, Outcome};

/// The outcome classes the shares are given for, in the tables' order.
pub const CLASSES: [Outcome; 6] = [
    Outcome::Ims(ImsPath::Native),
    Outcome::Ims(ImsPath::Hypercall),
    Outcome::Ims(ImsPath::Trapped),
    Outcome::Fallback,
    Outcome::ScaleLost,
    Outcome::Broken,
];

/// An exact fraction `num / den` (reduced; `den` > 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Numerator.
    pub num: u128,
    /// Denominator.
    pub den: u128,
}

const fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Share {
    /// `num / den` reduced.
    pub const fn new(num: u128, den: u128) -> Share {
        let g = gcd(num, den);
        let g = if g == 0 { 1 } else { g };
        Share { num: num / g, den: den / g }
    }

    /// The share in percent, rounded half up to two decimals, as text (`12.35`).
    pub fn percent(&self) -> String {
        // 100 × 100 × num / den, rounded half up: (20000 num + den) / (2 den).
        let hundredths = (20_000 * self.num + self.den) / (2 * self.den);
        format!("{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Configurations with weights, and a mix of guest drivers with weights; a guest is a
/// configuration and a driver drawn independently (the weight of a pair is the product).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Population {
    /// Each configuration and its weight.
    pub configurations: Vec<(Preset, u64)>,
    /// Each driver and its weight.
    pub drivers: Vec<(Driver, u64)>,
}

impl Population {
    /// The share of the population in each of [`CLASSES`] under `column`: for each class
    /// Σ w_config × w_driver over the pairs whose cell is that class, over
    /// Σ w_config × Σ w_driver. The preset's release is replaced by the column's.
    pub fn shares(&self, column: &Column) -> [Share; 6] {
        let total: u128 = self.configurations.iter().map(|&(_, w)| u128::from(w)).sum::<u128>()
            * self.drivers.iter().map(|&(_, w)| u128::from(w)).sum::<u128>();
        let mut num = [0u128; 6];
        for (preset, wc) in &self.configurations {
            for &(driver, wd) in &self.drivers {
                let kernel = column.kernel(GuestKernel { driver, ..preset.kernel });
                let outcome = super::evaluate(&preset.view, &kernel, column.policy).outcome;
                let i = CLASSES.iter().position(|&c| c == outcome).expect("every outcome is a class");
                num[i] += u128::from(*wc) * u128::from(wd);
            }
        }
        num.map(|n| Share::new(n, total))
    }

    /// The weight of the broken guests under `column` (Σ w_config × w_driver over the BRK
    /// pairs), split by the message they compose: (remappable, compatibility format), and
    /// the population's total weight.
    pub fn broken_weights(&self, column: &Column) -> (u128, u128, u128) {
        let total: u128 = self.configurations.iter().map(|&(_, w)| u128::from(w)).sum::<u128>()
            * self.drivers.iter().map(|&(_, w)| u128::from(w)).sum::<u128>();
        let (mut remappable, mut compat) = (0u128, 0u128);
        for (preset, wc) in &self.configurations {
            for &(driver, wd) in &self.drivers {
                let kernel = column.kernel(GuestKernel { driver, ..preset.kernel });
                if super::evaluate(&preset.view, &kernel, column.policy).outcome == Outcome::Broken {
                    let w = u128::from(*wc) * u128::from(wd);
                    if super::composes_remappable(&preset.view) { remappable += w } else { compat += w }
                }
            }
        }
        (remappable, compat, total)
    }

    /// The shares as a text table at most 72 columns wide: a row per column, the percent
    /// of the population in each outcome.
    pub fn text_table(&self, columns: &[Column]) -> String {
        let mut s = format!("{:<8}", "policy");
        for c in CLASSES {
            let _ = write!(s, "{:>8}", c.short());
        }
        s.push('\n');
        for col in columns {
            let _ = write!(s, "{:<8}", col.key);
            for share in self.shares(col) {
                let _ = write!(s, "{:>8}", share.percent());
            }
            s.push('\n');
        }
        s.push_str("\npercent of guests, each configuration weight times each driver\nweight; exact fractions in report.json. Columns: as the matrix.\n");
        s
    }

    /// The shares as data: column names (`policy`, then each class) and, per column, its
    /// title and each share as an exact fraction.
    pub fn rows(&self, columns: &[Column]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut names = vec!["policy".to_owned()];
        names.extend(CLASSES.iter().map(|c| c.short().to_owned()));
        let rows = columns
            .iter()
            .map(|col| {
                let mut r = vec![col.title.to_owned()];
                r.extend(self.shares(col).iter().map(Share::to_string));
                r
            })
            .collect();
        (names, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_reduce_and_round() {
        assert_eq!(Share::new(6, 8), Share { num: 3, den: 4 });
        assert_eq!(Share::new(0, 8), Share { num: 0, den: 1 });
        assert_eq!(Share::new(3, 4).percent(), "75.00");
        // 1/3 = 33.333…% → 33.33; 2/3 = 66.666…% → 66.67; 1/8 = 12.5% → 12.50.
        assert_eq!(Share::new(1, 3).percent(), "33.33");
        assert_eq!(Share::new(2, 3).percent(), "66.67");
        assert_eq!(Share::new(1, 8).percent(), "12.50");
        // 1/16000 = 0.00625% rounds half up to 0.01.
        assert_eq!(Share::new(1, 16_000).percent(), "0.01");
        assert_eq!(Share::new(1, 1).percent(), "100.00");
    }
}
