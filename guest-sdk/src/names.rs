//! The naming rules from the WIT, checkable in `const` so that breaking them fails the build.

/// The longest name the host exposes a tool under, `<plugin>__<tool>` (from the WIT).
pub(crate) const MAX_EXPOSED_NAME: usize = 48;

/// The WIT's naming rule; plugin names may not contain `__`, which separates them from tool
/// names in what clients see.
pub(crate) const fn is_name(name: &str, allow_double_underscore: bool) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 1;
    while i < bytes.len() {
        let b = bytes[i];
        let underscore_ok = allow_double_underscore || bytes[i - 1] != b'_';
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || (b == b'_' && underscore_ok)) {
            return false;
        }
        i += 1;
    }
    true
}

/// `str` equality, which is not yet usable in `const fn`.
pub(crate) const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_wit_rules() {
        for good in ["a", "echo", "my_tool2", "x9"] {
            assert!(is_name(good, false), "{good}");
        }
        for bad in ["", "Echo", "2x", "_x", "my-tool", "é"] {
            assert!(!is_name(bad, true), "{bad}");
        }
        assert!(is_name("a__b", true));
        assert!(!is_name("a__b", false));
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("echo", "echo"));
        assert!(!same("echo", "ech"));
        assert!(!same("echo", "echa"));
    }
}
