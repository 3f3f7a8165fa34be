//! Tool-name globs (`devops__*`, `*__status`, `botfather__get_?`): `*` is any run of
//! characters (including none and `__`), `?` is exactly one, anything else is itself.
//! Matching is linear in the name times the pattern, with no backtracking blow-up.

/// A compiled glob over exposed tool names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
}

impl Glob {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned() }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let pattern: Vec<char> = self.text.chars().collect();
        let name: Vec<char> = name.chars().collect();
        // The classic two-pointer wildcard match: on a mismatch, retry from the last `*`
        // having it swallow one more character. Each step advances, so it is O(n·m) at worst.
        let (mut p, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
                p += 1;
                n += 1;
            } else if p < pattern.len() && pattern[p] == '*' {
                star = Some((p, n));
                p += 1;
            } else if let Some((star_p, star_n)) = star {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks_match_whole_names() {
        let cases = [
            ("devops__*", "devops__deploy", true),
            ("devops__*", "devops__", true),
            ("devops__*", "devopsx__deploy", false),
            ("*__status", "devops__status", true),
            ("*__status", "devops__status_all", false),
            ("*", "health", true),
            ("health", "health", true),
            ("health", "healthz", false),
            ("botfather__get_?", "botfather__get_a", true),
            ("botfather__get_?", "botfather__get_ab", false),
            ("a*b*c", "a__b__c", true),
            ("a*b*c", "a__c__b", false),
            ("**", "", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(Glob::new(pattern).matches(name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn a_pathological_pattern_stays_fast() {
        let name = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(100));
        assert!(!Glob::new(&pattern).matches(&name));
    }
}
