//! [`Decimal`]: an exact decimal number kept as its text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact decimal number (MySQL `DECIMAL`), kept as validated text so that no digit is ever
/// lost to floating point: `-12345678901234567890.000000000000000001` survives every hop.
///
/// The text keeps its scale as the source gave it (`1.50` stays `1.50`); use
/// [`Decimal::normalized`] to compare numbers written with different scales.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Decimal(Box<str>);

/// Text that is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid decimal {0:?}: expected [-]digits[.digits]")]
pub struct DecimalError(pub String);

impl Decimal {
    /// The decimal as text, e.g. `-1.50`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether the number is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-') && self.0.bytes().any(|b| (b'1'..=b'9').contains(&b))
    }
    /// The number of digits after the point.
    pub fn scale(&self) -> usize {
        self.0.split_once('.').map_or(0, |(_, f)| f.len())
    }
    /// The same number without leading zeros in the integer part, trailing zeros in the
    /// fraction, or a negative zero: `-000.500` becomes `-0.5`, `2.00` becomes `2`.
    pub fn normalized(&self) -> Decimal {
        let (neg, body) = match self.0.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, &*self.0),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let zero = int == "0" && frac.is_empty();
        let mut s = String::with_capacity(body.len() + 1);
        if neg && !zero {
            s.push('-');
        }
        s.push_str(int);
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        Decimal(s.into())
    }
    /// The exact number `units / 10^scale`: `from_scaled(-1234, 2)` is `-12.34`,
    /// `from_scaled(5, 3)` is `0.005`.
    pub fn from_scaled(units: i128, scale: u32) -> Decimal {
        let digits = units.unsigned_abs().to_string();
        let scale = scale as usize;
        let mut s = String::with_capacity(digits.len() + scale + 3);
        if units < 0 {
            s.push('-');
        }
        if scale == 0 {
            s.push_str(&digits);
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            s.push_str(int);
            s.push('.');
            s.push_str(frac);
        } else {
            s.push_str("0.");
            s.extend(std::iter::repeat_n('0', scale - digits.len()));
            s.push_str(&digits);
        }
        Decimal(s.into())
    }

    /// The nearest `f64` (lossy; for stores that only have floats).
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(f64::NAN)
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix('-')
            .or_else(|| s.strip_prefix('+'))
            .unwrap_or(s);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        let ok = digits(int)
            && frac.is_none_or(|f| !f.is_empty() && digits(f))
            && !(int.is_empty() && frac.is_none());
        if !ok {
            return Err(DecimalError(s.to_string()));
        }
        let text = s.strip_prefix('+').unwrap_or(s);
        let text = if int.is_empty() {
            // ".5" -> "0.5"
            let neg = text.starts_with('-');
            format!(
                "{}0{}",
                if neg { "-" } else { "" },
                text.trim_start_matches('-')
            )
        } else {
            text.to_string()
        };
        Ok(Decimal(text.into()))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({})", self.0)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_keeps_digits() {
        let big = "-12345678901234567890.000000000000000001";
        assert_eq!(big.parse::<Decimal>().unwrap().as_str(), big);
        assert_eq!(".5".parse::<Decimal>().unwrap().as_str(), "0.5");
        assert_eq!("+3".parse::<Decimal>().unwrap().as_str(), "3");
        for bad in ["", "-", "1.", "1e5", "abc", "1.2.3", "NaN"] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad}");
        }
    }

    #[test]
    fn normalizes() {
        let n = |s: &str| s.parse::<Decimal>().unwrap().normalized().to_string();
        assert_eq!(n("-000.500"), "-0.5");
        assert_eq!(n("2.00"), "2");
        assert_eq!(n("-0.000"), "0");
        assert_eq!(n("0010"), "10");
        assert_eq!("1.50".parse::<Decimal>().unwrap().scale(), 2);
        assert_eq!(Decimal::from_scaled(-1234, 2).as_str(), "-12.34");
        assert_eq!(Decimal::from_scaled(5, 3).as_str(), "0.005");
        assert_eq!(Decimal::from_scaled(-5, 1).as_str(), "-0.5");
        assert_eq!(Decimal::from_scaled(7, 0).as_str(), "7");
        assert_eq!(
            Decimal::from_scaled(i128::MIN, 0).as_str(),
            i128::MIN.to_string()
        );
    }
}
