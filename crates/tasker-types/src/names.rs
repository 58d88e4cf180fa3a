//! Name rules shared by templates, queues and the API. Names end up in queue
//! names, SQL identifiers and URLs, so they are deliberately narrow.

/// Longest namespace: `worker_<namespace>_queue` must fit PGMQ's queue-name limit.
pub const MAX_NAMESPACE_LEN: usize = 29;
/// Longest template or step name.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `s` is a valid namespace: `[a-z0-9_]{1,29}` (SPEC §1).
pub fn is_valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAMESPACE_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `s` is a valid template or step name: a lowercase letter, then up
/// to 63 lowercase letters, digits or underscores.
pub fn is_valid_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase())
        && s.len() <= MAX_NAME_LEN
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Describes the namespace rule, for error messages.
pub const NAMESPACE_RULE: &str = "1 to 29 characters from a-z, 0-9 and _";
/// Describes the identifier rule, for error messages.
pub const IDENTIFIER_RULE: &str =
    "a lowercase letter followed by up to 63 characters from a-z, 0-9 and _";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_short_lowercase_words() {
        for ok in ["payments", "a", "ns_2", "0abc", &"x".repeat(29)] {
            assert!(is_valid_namespace(ok), "{ok}");
        }
        for bad in [
            "",
            "Payments",
            "pay-ments",
            "pay ments",
            "ü",
            &"x".repeat(30),
            "a;drop",
        ] {
            assert!(!is_valid_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn identifiers_start_with_a_letter() {
        for ok in ["fetch", "step_2", &format!("a{}", "b".repeat(63))] {
            assert!(is_valid_identifier(ok), "{ok}");
        }
        for bad in ["", "2step", "_x", "Fetch", "a-b", &"a".repeat(65), "a\"b"] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
    }
}
