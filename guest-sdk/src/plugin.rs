//! The table that [`plugin!`](crate::plugin) builds, and the exported `describe` and `call`
//! implemented over it.
//!
//! Keeping the logic here, in ordinary generic code, leaves the macro a few lines of glue and
//! lets the dispatch be unit-tested natively without a component.

use crate::__bindings::wit;
use crate::args::parse_args;
use crate::names::{MAX_EXPOSED_NAME, is_name, same};
use crate::{Output, Requirement, Tool, ToolError};

/// Everything `describe` reports, and the tools `call` dispatches to.
#[derive(Debug)]
pub struct Plugin {
    name: &'static str,
    version: &'static str,
    description: &'static str,
    requirements: &'static [Requirement],
    tools: &'static [ToolEntry],
}

/// One tool with its type erased, so tools of different `Args` types fit in one table.
#[derive(Debug)]
pub struct ToolEntry {
    name: &'static str,
    describe: fn() -> wit::Tool,
    call: fn(&str) -> Result<Output, ToolError>,
}

impl ToolEntry {
    /// The entry for tool `T`; `const` so the whole table can be a `const`.
    pub const fn of<T: Tool>() -> Self {
        Self { name: T::NAME, describe: describe_tool::<T>, call: call_tool::<T> }
    }
}

impl Plugin {
    /// Check the names the host would otherwise refuse at load. `plugin!` builds the table in a
    /// `const`, so a bad name fails the plugin's build, pointing at the rule it breaks.
    pub const fn new(
        name: &'static str,
        version: &'static str,
        description: &'static str,
        requirements: &'static [Requirement],
        tools: &'static [ToolEntry],
    ) -> Self {
        assert!(
            is_name(name, false),
            "plugin name must be lowercase ASCII letters, digits and single `_`, starting with a letter"
        );
        let mut i = 0;
        while i < tools.len() {
            let tool = tools[i].name;
            assert!(
                is_name(tool, true),
                "tool name must be lowercase ASCII letters, digits and `_`, starting with a letter"
            );
            assert!(name.len() + 2 + tool.len() <= MAX_EXPOSED_NAME, "`<plugin>__<tool>` must fit in 48 characters");
            let mut j = 0;
            while j < i {
                assert!(!same(tools[j].name, tool), "two tools have the same name");
                j += 1;
            }
            i += 1;
        }
        Self { name, version, description, requirements, tools }
    }

    /// What the exported `describe` returns.
    pub fn describe(&self) -> wit::PluginInfo {
        wit::PluginInfo {
            name: self.name.to_owned(),
            version: self.version.to_owned(),
            description: self.description.to_owned(),
            tools: self.tools.iter().map(|t| (t.describe)()).collect(),
            requirements: self.requirements.iter().map(|&r| r.into()).collect(),
        }
    }

    /// Run tool `name` on `args_json`.
    pub fn call(&self, name: &str, args_json: &str) -> Result<Output, ToolError> {
        match self.tools.iter().find(|t| t.name == name) {
            Some(tool) => (tool.call)(args_json),
            // The host only calls tools that `describe` listed, so this means host and plugin
            // disagree; name what exists to make that visible.
            None => {
                let known: Vec<&str> = self.tools.iter().map(|t| t.name).collect();
                Err(ToolError::new(format!("unknown tool `{name}`; plugin `{}` has: {}", self.name, known.join(", "))))
            }
        }
    }
}

fn describe_tool<T: Tool>() -> wit::Tool {
    wit::Tool {
        name: T::NAME.to_owned(),
        title: T::TITLE.map(str::to_owned),
        description: description::<T>(),
        input_schema: T::input_schema().to_string(),
        output_schema: T::output_schema().map(|schema| schema.to_string()),
        annotations: T::ANNOTATIONS.into(),
    }
}

fn description<T: Tool>() -> String {
    if T::DESCRIPTION.is_empty() {
        crate::schema::input_schema_and_description::<T::Args>().1.unwrap_or_default()
    } else {
        T::DESCRIPTION.to_owned()
    }
}

fn call_tool<T: Tool>(args_json: &str) -> Result<Output, ToolError> {
    let args = parse_args::<T::Args>(args_json, T::input_schema)
        .map_err(|e| ToolError::new(format!("invalid arguments for tool `{}`: {e}", T::NAME)))?;
    T::call(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Annotations;
    use serde::Deserialize;
    use serde_json::{Value, json};

    struct Add;

    #[derive(Deserialize, schemars::JsonSchema)]
    struct AddArgs {
        a: i64,
        b: Option<i64>,
    }

    impl Tool for Add {
        const NAME: &'static str = "add";
        const TITLE: Option<&'static str> = Some("Add");
        const DESCRIPTION: &'static str = "Add two integers.";
        const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).open_world(false);
        type Args = AddArgs;

        fn input_schema() -> Value {
            json!({"type": "object"})
        }

        fn output_schema() -> Option<Value> {
            Some(json!({"type": "integer"}))
        }

        fn call(args: AddArgs) -> Result<Output, ToolError> {
            let sum = args.a + args.b.unwrap_or(0);
            Output::new().text(sum.to_string()).structured(&sum)
        }
    }

    struct Nothing;

    /// Fail.
    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct NothingArgs {}

    impl Tool for Nothing {
        const NAME: &'static str = "nothing";
        type Args = NothingArgs;

        fn call(_: NothingArgs) -> Result<Output, ToolError> {
            Err(ToolError::new("nothing to do"))
        }
    }

    const PLUGIN: Plugin = Plugin::new(
        "calc",
        "1.2.3",
        "Arithmetic.",
        &[Requirement::Config("precision"), Requirement::Secret("key")],
        &[ToolEntry::of::<Add>(), ToolEntry::of::<Nothing>()],
    );

    #[test]
    #[should_panic(expected = "plugin name must be")]
    fn bad_plugin_name_is_refused() {
        let _ = Plugin::new("Calc", "1", "", &[], &[]);
    }

    const ADD_TWICE: &[ToolEntry] = &[ToolEntry::of::<Add>(), ToolEntry::of::<Add>()];

    #[test]
    #[should_panic(expected = "two tools have the same name")]
    fn duplicate_tools_are_refused() {
        let _ = Plugin::new("calc", "1", "", &[], ADD_TWICE);
    }

    #[test]
    #[should_panic(expected = "must fit in 48 characters")]
    fn long_names_are_refused() {
        // 43 + "__" + "add" = 48 would fit; 44 does not.
        let name = "p".repeat(44).leak();
        let _ = Plugin::new(name, "1", "", &[], &ADD_TWICE[..1]);
    }

    #[test]
    fn describe_reports_plugin_and_tools_in_order() {
        let info = PLUGIN.describe();
        assert_eq!(
            (info.name.as_str(), info.version.as_str(), info.description.as_str()),
            ("calc", "1.2.3", "Arithmetic.")
        );
        assert!(matches!(
            info.requirements.as_slice(),
            [wit::Requirement::Config(c), wit::Requirement::Secret(s)] if c == "precision" && s == "key"
        ));
        let names: Vec<&str> = info.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["add", "nothing"]);

        let add = &info.tools[0];
        assert_eq!(add.title.as_deref(), Some("Add"));
        assert_eq!(add.description, "Add two integers.");
        assert_eq!(add.input_schema, r#"{"type":"object"}"#);
        assert_eq!(add.output_schema.as_deref(), Some(r#"{"type":"integer"}"#));
        assert_eq!(add.annotations.read_only, Some(true));
        assert_eq!(add.annotations.destructive, None);
        assert_eq!(add.annotations.idempotent, None);
        assert_eq!(add.annotations.open_world, Some(false));

        let nothing = &info.tools[1];
        assert_eq!(nothing.title, None);
        assert_eq!(nothing.description, "Fail.", "taken from the doc comment of the arguments");
        assert_eq!(nothing.input_schema, r#"{"additionalProperties":false,"properties":{},"type":"object"}"#);
        assert_eq!(nothing.output_schema, None);
        assert_eq!(nothing.annotations.read_only, None);
    }

    #[test]
    fn call_dispatches_by_name() {
        let out = PLUGIN.call("add", r#"{"a": 2, "b": 3}"#);
        assert_eq!(out, Output::new().text("5").structured(&5));
        let out = PLUGIN.call("add", r#"{"a": 2, "b": null}"#);
        assert_eq!(out, Output::new().text("2").structured(&2));
        assert_eq!(PLUGIN.call("nothing", "{}"), Err(ToolError::new("nothing to do")));
    }

    #[test]
    fn unknown_tool_names_the_known_ones() {
        assert_eq!(
            PLUGIN.call("sub", "{}"),
            Err(ToolError::new("unknown tool `sub`; plugin `calc` has: add, nothing"))
        );
    }

    #[test]
    fn argument_errors_name_the_tool_and_the_problem() {
        let message = |args: &str| match PLUGIN.call("add", args) {
            Err(e) => e.message().to_owned(),
            Ok(out) => panic!("expected an error, got {out:?}"),
        };
        assert_eq!(message(r#"{"b": 1}"#), "invalid arguments for tool `add`: missing field `a`");
        assert_eq!(
            message(r#"{"a": "two"}"#),
            r#"invalid arguments for tool `add`: invalid type: string "two", expected i64"#
        );
        assert!(message("{").starts_with("invalid arguments for tool `add`: not valid JSON ("));
        assert_eq!(
            PLUGIN.call("nothing", r#"{"x": 1}"#),
            Err(ToolError::new("invalid arguments for tool `nothing`: unknown field `x`, there are no fields"))
        );
    }

    #[test]
    fn integral_floats_are_accepted_as_integers() {
        let out = PLUGIN.call("add", r#"{"a": 2.0, "b": -3.0}"#);
        assert_eq!(out, Output::new().text("-1").structured(&-1));
        assert!(PLUGIN.call("add", r#"{"a": 2.5}"#).is_err());
    }
}
