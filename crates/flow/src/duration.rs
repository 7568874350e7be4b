//! Durations written as a number and a unit: `"90s"`, `"15m"`, `"25h"`, `"3d"`.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A non-negative span of time with whole-second precision, kept in the unit it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowDuration {
    amount: u64,
    unit: DurationUnit,
}

/// The unit a [`FlowDuration`] was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d`
    Days,
}

impl DurationUnit {
    fn seconds(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3_600,
            Self::Days => 86_400,
        }
    }

    fn suffix(self) -> char {
        match self {
            Self::Seconds => 's',
            Self::Minutes => 'm',
            Self::Hours => 'h',
            Self::Days => 'd',
        }
    }
}

/// Why a duration string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected a whole number followed by s, m, h or d (e.g. \"90s\", \"15m\", \"25h\", \"3d\"), at most 400 days"
)]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
}

/// Longest duration accepted: 400 days, comfortably above an OTN token's one-year life.
pub const MAX_DURATION_SECONDS: u64 = 400 * 86_400;

impl FlowDuration {
    /// Builds a duration of `amount` units.
    pub fn new(amount: u64, unit: DurationUnit) -> Self {
        Self { amount, unit }
    }

    /// Builds a duration from whole seconds.
    pub fn from_secs(seconds: u64) -> Self {
        Self::new(seconds, DurationUnit::Seconds)
    }

    /// Total length in seconds (saturating).
    pub fn as_secs(&self) -> u64 {
        self.amount.saturating_mul(self.unit.seconds())
    }

    /// Total length in milliseconds (saturating).
    pub fn as_millis(&self) -> u64 {
        self.as_secs().saturating_mul(1_000)
    }
}

impl FromStr for FlowDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || DurationError {
            input: input.to_owned(),
        };
        let trimmed = input.trim();
        let unit = match trimmed.chars().last() {
            Some('s') => DurationUnit::Seconds,
            Some('m') => DurationUnit::Minutes,
            Some('h') => DurationUnit::Hours,
            Some('d') => DurationUnit::Days,
            _ => return Err(err()),
        };
        let digits = &trimmed[..trimmed.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let amount: u64 = digits.parse().map_err(|_| err())?;
        let duration = Self::new(amount, unit);
        if duration.as_secs() > MAX_DURATION_SECONDS {
            return Err(err());
        }
        Ok(duration)
    }
}

impl fmt::Display for FlowDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl Serialize for FlowDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FlowDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What [`FlowDuration::from_str`] accepts, as an ECMA-262 regular expression: surrounding white
/// space (Rust's `trim` set), a whole number (leading zeros allowed) of at most 400 days in its
/// unit, and the unit.
pub const DURATION_PATTERN: &str = concat!(
    r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*0*(?:",
    r"(?:[0-9]{1,7}|[12][0-9]{7}|3[0-3][0-9]{6}|34[0-4][0-9]{5}|345[0-5][0-9]{4}|34560000)s|",
    r"(?:[0-9]{1,5}|[1-4][0-9]{5}|5[0-6][0-9]{4}|57[0-5][0-9]{3}|576000)m|",
    r"(?:[0-9]{1,3}|[1-8][0-9]{3}|9[0-5][0-9]{2}|9600)h|",
    r"(?:[0-9]{1,2}|[1-3][0-9]{2}|400)d",
    r")[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
);

impl JsonSchema for FlowDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A whole number followed by a unit: s (seconds), m (minutes), h (hours) or d (days), e.g. \"90s\", \"15m\", \"25h\", \"3d\". At most 400 days.",
            "examples": ["90s", "15m", "25h", "3d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        let cases = [
            ("90s", 90),
            ("15m", 900),
            ("25h", 90_000),
            ("3d", 259_200),
            ("0s", 0),
        ];
        for (text, secs) in cases {
            let d: FlowDuration = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "s",
            "10",
            "1.5h",
            "-3d",
            "10w",
            "5 h",
            "401d",
            "99999999999999999999s",
        ] {
            assert!(text.parse::<FlowDuration>().is_err(), "{text:?} accepted");
        }
    }
}
