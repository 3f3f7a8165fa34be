//! Argument conditions: a JSON Pointer into a call's arguments and one test on what it finds
//! (`equals`, `in`, `not_in`, `matches`).
//!
//! A condition has three outcomes, not two. It is *unknown* when the pointer finds nothing (an
//! absent field, even one the schema gives a default: the plugin applies defaults, not
//! sanctum) or finds a value of another JSON type than the test names (`["production"]` where a
//! string is compared). The rule that owns it decides what unknown means, always the closed
//! way: see [`super::Rule::applies`].

use regex::Regex;
use serde_json::Value;

/// The longest pattern source and compiled program a `matches` may have.
const PATTERN_SOURCE_LIMIT: usize = 1024;
const PATTERN_SIZE_LIMIT: usize = 64 << 10;

/// A condition's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }

    /// All of `truths`: false if any is false, else unknown if any is unknown.
    pub fn all(truths: impl IntoIterator<Item = Self>) -> Self {
        let mut result = Self::True;
        for truth in truths {
            match truth {
                Self::False => return Self::False,
                Self::Unknown => result = Self::Unknown,
                Self::True => {}
            }
        }
        result
    }
}

/// The test a condition applies.
#[derive(Debug, Clone)]
pub enum Test {
    Equals(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    /// Anchored: the whole string must match.
    Matches(Regex),
}

/// One compiled condition.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The JSON Pointer as written.
    pub pointer: String,
    /// Its reference tokens, unescaped once here rather than on every call.
    tokens: Vec<String>,
    pub test: Test,
}

impl Condition {
    /// A condition on what `pointer` (RFC 6901: `""` or `/a/b`, `~1` for `/`, `~0` for `~`)
    /// finds; `None` if it is not a JSON Pointer.
    pub fn new(pointer: &str, test: Test) -> Option<Self> {
        let tokens = match pointer {
            "" => Vec::new(),
            _ => pointer.strip_prefix('/')?.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect(),
        };
        Some(Self { pointer: pointer.to_owned(), tokens, test })
    }

    /// What the pointer finds in `args`.
    fn find<'v>(&self, args: &'v Value) -> Option<&'v Value> {
        self.tokens.iter().try_fold(args, |node, token| match node {
            Value::Object(map) => map.get(token),
            // RFC 6901 array indices: digits without a leading zero.
            Value::Array(items)
                if token == "0" || (!token.starts_with('0') && token.bytes().all(|b| b.is_ascii_digit())) =>
            {
                token.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            _ => None,
        })
    }

    /// Compile a `matches` pattern: anchored, with the linear-time engine and a size cap.
    pub fn pattern(source: &str) -> Result<Regex, String> {
        if source.len() > PATTERN_SOURCE_LIMIT {
            return Err(format!("the pattern is longer than {PATTERN_SOURCE_LIMIT} bytes"));
        }
        regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("the pattern does not compile: {e}"))
    }

    /// This condition on `args`.
    pub fn eval(&self, args: &Value) -> Truth {
        let Some(found) = self.find(args) else { return Truth::Unknown };
        match &self.test {
            Test::Equals(expected) => compare(found, std::slice::from_ref(expected), true),
            Test::In(values) => compare(found, values, true),
            Test::NotIn(values) => compare(found, values, false),
            Test::Matches(pattern) => match found {
                Value::String(text) => Truth::of(pattern.is_match(text)),
                _ => Truth::Unknown,
            },
        }
    }

    /// How the condition reads in `sanctum check` and in listings.
    pub fn describe(&self) -> String {
        let list = |values: &[Value]| values.iter().map(Value::to_string).collect::<Vec<_>>().join(", ");
        match &self.test {
            Test::Equals(value) => format!("{} == {value}", self.pointer),
            Test::In(values) => format!("{} in [{}]", self.pointer, list(values)),
            Test::NotIn(values) => format!("{} not in [{}]", self.pointer, list(values)),
            Test::Matches(pattern) => {
                let source = pattern.as_str();
                let inner = source.strip_prefix("^(?:").and_then(|s| s.strip_suffix(")$")).unwrap_or(source);
                format!("{} matches /{inner}/", self.pointer)
            }
        }
    }
}

/// Whether `found` is (`wanted_in`) or is not among `values`; unknown when its JSON type is
/// not the type of any of them.
fn compare(found: &Value, values: &[Value], wanted_in: bool) -> Truth {
    if !values.iter().any(|v| same_type(v, found)) {
        return Truth::Unknown;
    }
    let present = values.iter().any(|v| equal(v, found));
    Truth::of(present == wanted_in)
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// JSON equality, except that numbers compare by value (`1` equals `1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cond(pointer: &str, test: Test) -> Condition {
        Condition::new(pointer, test).expect("a pointer")
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        let args = json!({"a/b": {"m~n": [10, 20]}, "list": [1, 2]});
        assert_eq!(cond("/a~1b/m~0n/1", Test::Equals(json!(20))).eval(&args), Truth::True);
        assert_eq!(cond("/list/01", Test::Equals(json!(2))).eval(&args), Truth::Unknown, "no leading zeros");
        assert_eq!(cond("/list/-", Test::Equals(json!(2))).eval(&args), Truth::Unknown);
        assert!(Condition::new("list", Test::Equals(json!(1))).is_none());
    }

    #[test]
    fn equals_in_and_not_in_compare_values_of_the_same_type() {
        let env = |test| cond("/environment", test);
        let args = json!({"environment": "staging", "replicas": 3});
        assert_eq!(env(Test::Equals(json!("staging"))).eval(&args), Truth::True);
        assert_eq!(env(Test::Equals(json!("production"))).eval(&args), Truth::False);
        assert_eq!(env(Test::In(vec![json!("dev"), json!("staging")])).eval(&args), Truth::True);
        assert_eq!(env(Test::NotIn(vec![json!("production")])).eval(&args), Truth::True);
        assert_eq!(env(Test::NotIn(vec![json!("staging")])).eval(&args), Truth::False);
        assert_eq!(cond("/replicas", Test::Equals(json!(3.0))).eval(&args), Truth::True);
    }

    #[test]
    fn absent_fields_other_types_and_unknown_pointers_are_unknown() {
        let production = || Test::Equals(json!("production"));
        assert_eq!(cond("/environment", production()).eval(&json!({})), Truth::Unknown);
        assert_eq!(cond("/environment", production()).eval(&json!({"environment": ["production"]})), Truth::Unknown);
        assert_eq!(cond("/environment", production()).eval(&json!({"environment": null})), Truth::Unknown);
        assert_eq!(cond("/a/b/c", production()).eval(&json!({"a": "x"})), Truth::Unknown);
        let not_prod = cond("/environment", Test::NotIn(vec![json!("production")]));
        assert_eq!(not_prod.eval(&json!({"environment": 1})), Truth::Unknown);
        assert_eq!(not_prod.eval(&json!({})), Truth::Unknown);
        let pattern = Condition::pattern("stag.*").expect("compiles");
        assert_eq!(cond("/environment", Test::Matches(pattern)).eval(&json!({"environment": 5})), Truth::Unknown);
    }

    #[test]
    fn look_alikes_are_different_strings() {
        // "stаging" with a Cyrillic а: never equal to, or in a list with, the Latin spelling.
        let args = json!({"environment": "st\u{0430}ging"});
        assert_eq!(cond("/environment", Test::Equals(json!("staging"))).eval(&args), Truth::False);
        assert_eq!(cond("/environment", Test::In(vec![json!("staging")])).eval(&args), Truth::False);
    }

    #[test]
    fn matches_is_anchored_and_linear_time_only() {
        let pattern = Condition::pattern("staging|dev-[0-9]+").expect("compiles");
        let matches = cond("/environment", Test::Matches(pattern));
        assert_eq!(matches.eval(&json!({"environment": "dev-12"})), Truth::True);
        assert_eq!(matches.eval(&json!({"environment": "production-staging"})), Truth::False);
        assert!(Condition::pattern("(a)\\1").is_err(), "backreferences need backtracking");
        assert!(Condition::pattern("(?=a)").is_err(), "look-around needs backtracking");
        assert!(Condition::pattern(&"a".repeat(2000)).is_err());
        assert!(Condition::pattern("(a{1000}){1000}").is_err(), "the compiled size is bounded");
    }

    #[test]
    fn truths_combine_closed() {
        assert_eq!(Truth::all([Truth::True, Truth::Unknown]), Truth::Unknown);
        assert_eq!(Truth::all([Truth::Unknown, Truth::False]), Truth::False);
        assert_eq!(Truth::all([]), Truth::True);
    }
}
