//! Kubernetes-style durations (`90s`, `15m`, `1h30m`) as used in ApprovalPolicy.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern the apiserver enforces; [`Duration::from_str`] accepts exactly this grammar.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// A duration written the Kubernetes way: one or more `<integer><unit>` parts,
/// with units `h`, `m`, `s` and `ms`, for example `90s`, `15m` or `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: {problem} (use forms like 90s, 15m, 1h or 1h30m)")]
pub struct ParseDurationError {
    input: String,
    problem: &'static str,
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    pub const fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// The duration as a jiff span, for timestamp arithmetic.
    pub fn as_signed(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.0).unwrap_or(jiff::SignedDuration::MAX)
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |problem| ParseDurationError {
            input: input.to_owned(),
            problem,
        };
        if input.is_empty() {
            return Err(err("it is empty"));
        }
        let mut total_ms: u64 = 0;
        let mut rest = input;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err("each part must start with a number"));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|_| err("a number is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let factor_ms = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => return Err(err("a number has no unit")),
                _ => return Err(err("the unit must be h, m, s or ms")),
            };
            rest = &rest[unit_len..];
            total_ms = value
                .checked_mul(factor_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| err("it is too large"))?;
        }
        Ok(Self(std::time::Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
        let (m, rem) = (rem / 60_000, rem % 60_000);
        let (s, ms) = (rem / 1_000, rem % 1_000);
        for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_style_durations() {
        let cases = [
            ("90s", 90_000),
            ("15m", 900_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("2m3s", 123_000),
        ];
        for (input, ms) in cases {
            let parsed: Duration = input.parse().unwrap();
            assert_eq!(parsed.as_std().as_millis(), ms, "{input}");
        }
    }

    #[test]
    fn rejects_malformed_durations_with_a_clear_reason() {
        for input in [
            "",
            "15",
            "m",
            "15 m",
            "1d",
            "-5s",
            "1.5h",
            "99999999999999999999h",
        ] {
            let err = input.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains("invalid duration"), "{input}: {err}");
        }
        assert!(
            "1d".parse::<Duration>()
                .unwrap_err()
                .to_string()
                .contains("h, m, s or ms")
        );
    }

    #[test]
    fn display_round_trips() {
        for input in ["90s", "15m", "1h30m", "250ms", "0s", "1h0m5s"] {
            let parsed: Duration = input.parse().unwrap();
            let again: Duration = parsed.to_string().parse().unwrap();
            assert_eq!(parsed, again);
        }
        assert_eq!("90s".parse::<Duration>().unwrap().to_string(), "1m30s");
    }

    #[test]
    fn schema_pattern_agrees_with_parser_on_samples() {
        // The pattern is enforced by the apiserver; the parser must accept
        // everything the pattern accepts, or a stored policy could not be read.
        let accepted = ["1s", "10m", "1h2m3s4ms", "0s"];
        for input in accepted {
            assert!(input.parse::<Duration>().is_ok(), "{input}");
        }
    }
}
