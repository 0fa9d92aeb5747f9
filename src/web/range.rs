//! Single byte ranges (`Range: bytes=...`), parsed by `http-range-header` and
//! resolved against the object size as RFC 9110 §14 says: one satisfiable
//! range gets a 206; a range that starts past the end a 416; several ranges,
//! or a header that does not parse, get the whole body (a server may ignore a
//! Range it does not support).

use http_range_header::{EndPosition, StartPosition};

use crate::storage::ByteRange;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeDecision {
    Full,
    Partial(ByteRange),
    Unsatisfiable,
}

pub fn decide(header: Option<&str>, size: u64) -> RangeDecision {
    let Some(header) = header else { return RangeDecision::Full };
    let Ok(parsed) = http_range_header::parse_range_header(header) else { return RangeDecision::Full };
    let [range] = parsed.ranges.as_slice() else { return RangeDecision::Full };
    let last = size.checked_sub(1);
    match (range.start, range.end, last) {
        // "first-last" with last < first is not a valid range at all.
        (StartPosition::Index(first), EndPosition::Index(end), _) if end < first => RangeDecision::Full,
        (_, _, None) => RangeDecision::Unsatisfiable,
        (StartPosition::Index(first), _, Some(last)) if first > last => RangeDecision::Unsatisfiable,
        (StartPosition::Index(first), EndPosition::Index(end), Some(last)) => {
            RangeDecision::Partial(first..=end.min(last))
        }
        (StartPosition::Index(first), EndPosition::LastByte, Some(last)) => RangeDecision::Partial(first..=last),
        // A suffix longer than the object means the whole object.
        (StartPosition::FromLast(suffix), _, Some(last)) => RangeDecision::Partial(size - suffix.min(size)..=last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_in_all_three_forms() {
        assert_eq!(decide(Some("bytes=0-9"), 100), RangeDecision::Partial(0..=9));
        assert_eq!(decide(Some("bytes=90-"), 100), RangeDecision::Partial(90..=99));
        assert_eq!(decide(Some("bytes=-10"), 100), RangeDecision::Partial(90..=99));
        assert_eq!(decide(Some("bytes=99-99"), 100), RangeDecision::Partial(99..=99));
    }

    #[test]
    fn ends_and_suffixes_past_the_object_are_clamped() {
        assert_eq!(decide(Some("bytes=50-1000"), 100), RangeDecision::Partial(50..=99));
        assert_eq!(decide(Some("bytes=-200"), 100), RangeDecision::Partial(0..=99));
    }

    #[test]
    fn ranges_starting_past_the_end_are_unsatisfiable() {
        assert_eq!(decide(Some("bytes=100-"), 100), RangeDecision::Unsatisfiable);
        assert_eq!(decide(Some("bytes=200-300"), 100), RangeDecision::Unsatisfiable);
        assert_eq!(decide(Some("bytes=0-0"), 0), RangeDecision::Unsatisfiable);
    }

    #[test]
    fn several_invalid_or_malformed_ranges_get_the_whole_body() {
        assert_eq!(decide(None, 100), RangeDecision::Full);
        assert_eq!(decide(Some("bytes=0-1,5-6"), 100), RangeDecision::Full);
        assert_eq!(decide(Some("bytes=10-5"), 100), RangeDecision::Full);
        assert_eq!(decide(Some("bytes=abc"), 100), RangeDecision::Full);
        assert_eq!(decide(Some("items=0-1"), 100), RangeDecision::Full);
        assert_eq!(decide(Some("bytes= 0-1"), 100), RangeDecision::Full);
    }
}
