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

/// Whether `s` is a valid worker pool name (SPEC §7, routing by step):
/// `[a-z0-9_]`, starting and ending with a letter or digit, with no `__`
/// and not `queue` or ending in `_queue`. The rule keeps every pool queue
/// (`worker_<namespace>__<pool>`) distinct from every other pool queue and
/// from every default queue (`worker_<namespace>_queue`): a pool cannot
/// start with `_` or hold `__`, so the last `__` of a queue name is where
/// its pool starts, and no pool queue ends in `_queue`.
pub fn is_valid_pool(s: &str) -> bool {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    edge(s.bytes().next())
        && edge(s.bytes().last())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.contains("__")
        && s != "queue"
        && !s.ends_with("_queue")
}

/// Describes the pool rule, for error messages.
pub const POOL_RULE: &str = "a-z, 0-9 and single _ between them, not `queue` or ending in `_queue`";

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
    fn pools_are_words_that_cannot_look_like_another_queue() {
        for ok in [
            "python",
            "gpu",
            "ruby_3",
            "a",
            "0",
            "my_queues",
            "queue_x",
            "myqueue",
        ] {
            assert!(is_valid_pool(ok), "{ok}");
        }
        for bad in [
            "",
            "_py",
            "py_",
            "py__thon",
            "Python",
            "py-thon",
            "queue",
            "slow_queue",
            "ü",
        ] {
            assert!(!is_valid_pool(bad), "{bad}");
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
