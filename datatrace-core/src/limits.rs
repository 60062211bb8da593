//! Range checks of numeric settings. Every number a user sets (in a job file or through the
//! API) has a sane upper bound, checked where its configuration is validated, so that no
//! setting can ask for absurd amounts of memory, tasks or time, or overflow arithmetic.
//! The message names the setting, its range and the way out.

/// Checks that setting `name` holds a `value` between `min` and `max` (inclusive).
///
/// The error reads `batch_size = 1000000000000 is out of range: use a value from 1 to
/// 100000`.
pub fn check_range(name: &str, value: u64, min: u64, max: u64) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} = {value} is out of range: use a value from {min} to {max}"
        ))
    }
}

/// [`check_range`] for each `(name, value, min, max)`; the first error.
pub fn check_ranges(items: &[(&str, u64, u64, u64)]) -> Result<(), String> {
    items
        .iter()
        .try_for_each(|&(name, v, min, max)| check_range(name, v, min, max))
}

/// One hour in milliseconds.
pub const HOUR_MS: u64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_setting_and_its_range() {
        assert!(check_range("x", 5, 1, 5).is_ok());
        let e = check_range("batch_size", u64::MAX, 1, 100).unwrap_err();
        assert!(
            e.contains("batch_size") && e.contains(&u64::MAX.to_string()) && e.contains("1 to 100"),
            "{e}"
        );
        assert!(check_ranges(&[("a", 1, 1, 2), ("b", 0, 1, 2)])
            .unwrap_err()
            .starts_with("b = 0"));
    }
}
