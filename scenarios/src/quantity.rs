//! Quantities with units in scenario files: durations (`300ns`, `2.5us`) and rates
//! (`8M/s`, `200k/s`, `50kHz`). A number without a unit is always an error.
//!
//! Durations are converted exactly: the decimal is read as an integer mantissa and a power
//! of ten, so `2.5us` is exactly 2,500,000 ps and `0.1ns` exactly 100 ps. A duration that is
//! not a whole number of picoseconds is refused rather than rounded.

use sim::SimDuration;

/// Duration units and their size in picoseconds.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("ps", 1),
    ("ns", 1_000),
    ("us", 1_000_000),
    ("µs", 1_000_000),
    ("ms", 1_000_000_000),
    ("s", 1_000_000_000_000),
    ("min", 60_000_000_000_000),
];

/// Rate units and their multiplier per second.
const RATE_UNITS: [(&str, f64); 8] =
    [("/s", 1.0), ("k/s", 1e3), ("M/s", 1e6), ("G/s", 1e9), ("Hz", 1.0), ("kHz", 1e3), ("MHz", 1e6), ("GHz", 1e9)];

/// What a duration may look like, for error messages.
pub const DURATION_HELP: &str = "a number with a unit: ps, ns, us, ms, s (e.g. 300ns, 2.5us)";
/// What a rate may look like, for error messages.
pub const RATE_HELP: &str = "a number with a unit: /s, k/s, M/s, G/s, Hz, kHz, MHz (e.g. 200k/s, 8M/s)";

/// Splits `text` into its leading decimal number and the unit after it.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    (&text[..end], text[end..].trim_start())
}

/// Parses a non-negative decimal exactly into (mantissa, number of fraction digits).
fn parse_decimal(number: &str) -> Option<(u128, u32)> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || !whole.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{frac}");
    let digits = digits.trim_start_matches('0');
    let mantissa = if digits.is_empty() { 0 } else { digits.parse::<u128>().ok()? };
    Some((mantissa, frac.len() as u32))
}

/// Parses a duration such as `2.5us` into exact picoseconds.
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let text = text.trim();
    let (number, unit) = split_number(text);
    if number.starts_with('-') {
        return Err(format!("`{text}` is negative; durations are zero or more"));
    }
    if unit.is_empty() {
        return Err(format!("`{text}` has no unit; expected {DURATION_HELP}"));
    }
    let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!("`{text}`: unknown unit `{unit}`; expected {DURATION_HELP}"));
    };
    let number = number.trim_start_matches('+');
    let Some((mantissa, frac_digits)) = parse_decimal(number) else {
        return Err(format!("`{text}` is not a number with a unit; expected {DURATION_HELP}"));
    };
    let divisor = 10u128.checked_pow(frac_digits).ok_or_else(|| format!("`{text}` has too many digits"))?;
    let scaled = mantissa.checked_mul(u128::from(scale)).ok_or_else(|| format!("`{text}` is too long"))?;
    if scaled % divisor != 0 {
        return Err(format!("`{text}` is not a whole number of picoseconds"));
    }
    let ps = u64::try_from(scaled / divisor).map_err(|_| format!("`{text}` is longer than about 213 days"))?;
    Ok(SimDuration::from_ps(ps))
}

/// Parses a rate such as `200k/s` into events per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, unit) = split_number(text);
    if number.starts_with('-') {
        return Err(format!("`{text}` is negative; a rate must be positive"));
    }
    if unit.is_empty() {
        return Err(format!("`{text}` has no unit; expected {RATE_HELP}"));
    }
    let Some(&(_, scale)) = RATE_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!("`{text}`: unknown unit `{unit}`; expected {RATE_HELP}"));
    };
    let number = number.trim_start_matches('+');
    if parse_decimal(number).is_none() {
        return Err(format!("`{text}` is not a number with a unit; expected {RATE_HELP}"));
    }
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a number"))?;
    let rate = value * scale;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(format!("`{text}`: a rate must be positive"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_exact() {
        let ps = |s: &str| parse_duration(s).map(SimDuration::as_ps);
        assert_eq!(ps("300ns"), Ok(300_000));
        assert_eq!(ps("2.5us"), Ok(2_500_000));
        assert_eq!(ps("0.1ns"), Ok(100));
        assert_eq!(ps("20ms"), Ok(20_000_000_000));
        assert_eq!(ps("1 s"), Ok(1_000_000_000_000));
        assert_eq!(ps("0ns"), Ok(0));
        assert_eq!(ps("1.5µs"), Ok(1_500_000));
        assert!(ps("300").unwrap_err().contains("has no unit"));
        assert!(ps("0.0001ps").unwrap_err().contains("whole number of picoseconds"));
        assert!(ps("-3ns").unwrap_err().contains("negative"));
        assert!(ps("3 parsecs").unwrap_err().contains("unknown unit"));
        assert!(ps("ns").unwrap_err().contains("not a number"));
        assert!(ps("1.2.3ns").unwrap_err().contains("not a number"));
    }

    #[test]
    fn rates_need_units() {
        assert_eq!(parse_rate("8M/s"), Ok(8e6));
        assert_eq!(parse_rate("200k/s"), Ok(2e5));
        assert_eq!(parse_rate("2.5kHz"), Ok(2500.0));
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        assert!(parse_rate("100").unwrap_err().contains("has no unit"));
        assert!(parse_rate("-5k/s").unwrap_err().contains("negative"));
        assert!(parse_rate("0/s").unwrap_err().contains("positive"));
    }
}
