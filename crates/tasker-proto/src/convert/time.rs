//! Instants as `google.protobuf.Timestamp`.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// `at` as a timestamp, to the nanosecond.
pub(crate) fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        // Below 2·10⁹ even in a leap second, so it always fits.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(i32::MAX),
    }
}

/// An optional instant as an optional timestamp.
pub(crate) fn optional_timestamp(at: Option<DateTime<Utc>>) -> Option<Timestamp> {
    at.map(timestamp)
}

/// The instant of timestamp field `field`.
///
/// # Errors
/// ``"`field`: not a valid instant"`` for negative nanoseconds or an instant
/// outside chrono's range.
pub(crate) fn instant(field: &str, at: &Timestamp) -> Result<DateTime<Utc>, String> {
    u32::try_from(at.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
        .ok_or_else(|| format!("`{field}`: not a valid instant"))
}

/// An optional timestamp field as an optional instant.
pub(crate) fn optional_instant(
    field: &str,
    at: Option<&Timestamp>,
) -> Result<Option<DateTime<Utc>>, String> {
    at.map(|t| instant(field, t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_to_the_nanosecond() {
        let at = DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap();
        assert_eq!(instant("at", &timestamp(at)).unwrap(), at);
    }

    #[test]
    fn negative_nanos_are_refused_by_name() {
        let bad = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(
            instant("since", &bad).unwrap_err(),
            "`since`: not a valid instant"
        );
    }
}
