//! W3C trace context (`traceparent`) as plain data, so a task's trace can be
//! stored with the task and carried in queue messages without this crate
//! knowing about OpenTelemetry (SPEC §11).
//!
//! ```
//! use tasker_types::trace::TraceParent;
//!
//! let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
//!     .parse()
//!     .unwrap();
//! assert!(tp.sampled());
//! assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One span's place in a trace: trace id, span id and flags, as in the W3C
/// `traceparent` header (version `00`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent `{value}`: {reason}")]
pub struct InvalidTraceParent {
    value: String,
    reason: &'static str,
}

impl TraceParent {
    /// The sampled flag.
    pub const SAMPLED: u8 = 0x01;

    /// A context from its parts; `None` when either id is zero (the W3C
    /// spec's "invalid").
    pub const fn new(trace_id: u128, span_id: u64, flags: u8) -> Option<Self> {
        if trace_id == 0 || span_id == 0 {
            None
        } else {
            Some(Self {
                trace_id,
                span_id,
                flags,
            })
        }
    }

    /// The 128-bit trace id.
    pub const fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The 64-bit id of the span this context points at.
    pub const fn span_id(&self) -> u64 {
        self.span_id
    }

    /// The trace flags byte.
    pub const fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled the trace.
    pub const fn sampled(&self) -> bool {
        self.flags & Self::SAMPLED != 0
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl FromStr for TraceParent {
    type Err = InvalidTraceParent;

    /// Parses version `00`, and the first four fields of a later version as
    /// the W3C spec asks ("parse what you understand").
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| InvalidTraceParent {
            value: value.chars().take(80).collect(),
            reason,
        };
        let text = value.trim();
        let mut parts = text.split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refuse("expected version-traceid-spanid-flags"));
        };
        let lower_hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !lower_hex(version, 2) || version == "ff" {
            return Err(refuse("unsupported version"));
        }
        if version == "00" && parts.next().is_some() {
            return Err(refuse("version 00 has exactly four fields"));
        }
        if !lower_hex(trace, 32) || !lower_hex(span, 16) || !lower_hex(flags, 2) {
            return Err(refuse(
                "ids and flags must be lowercase hex of the right length",
            ));
        }
        // The lengths and digits were checked just above, so these parse.
        let parse = |s: &str| u128::from_str_radix(s, 16).map_err(|_| refuse("not hex"));
        let trace_id = parse(trace)?;
        let span_id = u64::try_from(parse(span)?).map_err(|_| refuse("span id too long"))?;
        let flags = u8::try_from(parse(flags)?).map_err(|_| refuse("flags too long"))?;
        Self::new(trace_id, span_id, flags).ok_or_else(|| refuse("all-zero trace or span id"))
    }
}

impl Serialize for TraceParent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceParent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_through_text_and_json() {
        let tp: TraceParent = EXAMPLE.parse().unwrap();
        assert_eq!(tp.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(tp.span_id(), 0x00f067aa0ba902b7);
        assert!(tp.sampled());
        let json = serde_json::to_string(&tp).unwrap();
        assert_eq!(json, format!("\"{EXAMPLE}\""));
        assert_eq!(serde_json::from_str::<TraceParent>(&json).unwrap(), tp);
    }

    #[test]
    fn refuses_what_the_w3c_spec_calls_invalid() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_later_version_is_read_as_far_as_understood() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-next";
        let tp: TraceParent = later.parse().unwrap();
        assert!(!tp.sampled());
        assert!(tp.to_string().starts_with("00-4bf92f"));
    }
}
