//! The cost of an access decision: 100 rules (the case), 32 served tools, the caller
//! and arguments a Letta agent's deploy call brings. Measures `Bound::decide` and
//! `Bound::listed` (what every call and every listing pays) in-process, as medians of runs.
//!
//! Run: `cargo bench -p sanctum --bench access` (release profile; prints a Markdown table).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use sanctum::access::{AccessSection, Bound, Caller};
use serde_json::json;

const RUNS: usize = 15;
const ITERATIONS: usize = 100_000;

/// `rules` rules that all name devops__deploy (so a deploy decision walks all of them); with
/// `who`, each names its own group and agent, else every rule is for every caller and each
/// evaluates its conditions (the worst case).
fn policy(rules: usize, who: bool) -> Arc<sanctum::access::AccessPolicy> {
    let mut text = String::from("default = \"deny\"\n");
    for i in 0..rules {
        let who = if who { format!("groups = [\"g{i}\"]\nagents = [\"agent-{i}\"]\n") } else { String::new() };
        text.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\n{who}\
             tools = [\"plugin{i}__*\", \"devops__*\"]\neffect = \"{}\"\n\
             when = [{{ pointer = \"/environment\", in = [\"staging\", \"dev\"] }}, \
                     {{ pointer = \"/app\", matches = \"[a-z][a-z0-9-]{{0,30}}\" }}]\n",
            if i % 10 == 9 { "approve" } else { "allow" }
        ));
    }
    let section: AccessSection = toml::from_str(&text).expect("parses");
    Arc::new(section.compile().expect("compiles"))
}

fn tools() -> Vec<String> {
    let mut tools: Vec<String> = (0..28).map(|i| format!("plugin{i}__tool")).collect();
    tools.extend(["devops__deploy", "devops__status", "devops__history", "health"].map(String::from));
    tools
}

/// Median nanoseconds per call of `f` over [`RUNS`] runs of [`ITERATIONS`].
fn median_ns(mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..ITERATIONS {
                f();
            }
            started.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

#[allow(clippy::print_stdout)]
fn main() {
    let tools = tools();
    let groups: Vec<Arc<str>> = vec![Arc::from("g99"), Arc::from("ops")];
    let caller = Caller { principal: "letta", groups: &groups, agent: Some("agent-99") };
    let args = json!({"app": "web", "environment": "staging", "version": "1.4.2"});
    println!(
        "| rules | decide: rules name the tool, one names the caller | decide: every rule applies (conditions \
         evaluated) | decide: a tool no rule names | listed (one tool) |"
    );
    println!("|---|---|---|---|---|");
    for rules in [0, 10, 100] {
        let bound = Bound::new(policy(rules, true), tools.iter().map(String::as_str));
        let everyone = Bound::new(policy(rules, false), tools.iter().map(String::as_str));
        let decide = median_ns(|| {
            black_box(bound.decide(black_box(&caller), black_box("devops__deploy"), black_box(&args)));
        });
        let worst = median_ns(|| {
            black_box(everyone.decide(black_box(&caller), black_box("devops__deploy"), black_box(&args)));
        });
        let untouched = median_ns(|| {
            black_box(bound.decide(black_box(&caller), black_box("health"), black_box(&args)));
        });
        let listed = median_ns(|| {
            black_box(bound.listed(black_box(&caller), black_box("devops__deploy")));
        });
        println!(
            "| {rules} | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} µs |",
            decide / 1e3,
            worst / 1e3,
            untouched / 1e3,
            listed / 1e3
        );
    }
}
