//! The trait a plugin author implements once per tool.

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::__bindings::wit;
use crate::{Output, ToolError};

/// One tool a plugin offers.
///
/// Tools are stateless types (usually unit structs): every call runs in a fresh sandbox
/// instance, so there is nothing to keep between calls and no `self` to keep it in.
///
/// The arguments are a `serde` + `schemars` type. Its doc comment becomes the tool's
/// description (unless [`Tool::DESCRIPTION`] is set) and its fields' doc comments the argument
/// descriptions; the SDK derives and normalises the input schema (see [`crate::schema`]).
///
/// ```
/// use sanctum_guest::{Annotations, Output, Tool, ToolError};
///
/// pub struct Shout;
///
/// /// Return the text in upper case.
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// pub struct ShoutArgs {
///     /// What to shout.
///     text: String,
/// }
///
/// impl Tool for Shout {
///     const NAME: &'static str = "shout";
///     const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true);
///     type Args = ShoutArgs;
///
///     fn call(args: ShoutArgs) -> Result<Output, ToolError> {
///         Ok(args.text.to_uppercase().into())
///     }
/// }
/// ```
pub trait Tool {
    /// Name within the plugin: lowercase ASCII letters, digits and `_`, starting with a letter.
    /// Clients see it as `<plugin>__<name>`.
    const NAME: &'static str;

    /// Short human-readable title, if the name alone is not clear to a person.
    const TITLE: Option<&'static str> = None;

    /// What the tool does, written for the model that decides whether to call it. Empty (the
    /// default) means "the doc comment of [`Tool::Args`]".
    const DESCRIPTION: &'static str = "";

    /// Behaviour hints for clients; the default states nothing.
    const ANNOTATIONS: Annotations = Annotations::NONE;

    /// The arguments, deserialized from the JSON object the client sent. The host has already
    /// validated that object against [`Tool::input_schema`], so a deserialization failure means
    /// the schema and this type disagree. Numbers such as `3.0` are accepted for integer fields,
    /// as JSON Schema counts them as integers, and an optional field sent as `null` is absent.
    type Args: DeserializeOwned + JsonSchema;

    /// JSON Schema (2020-12) of the arguments; its root must be `{"type": "object", ...}`.
    /// Derived from [`Tool::Args`] unless overridden; an override is used as written.
    fn input_schema() -> Value {
        crate::schema::input_schema::<Self::Args>()
    }

    /// JSON Schema of [`Output::structured`]. Declare one only if every successful call sets a
    /// structured result that conforms to it; [`crate::schema::output_schema`] derives it from
    /// the result type.
    fn output_schema() -> Option<Value> {
        None
    }

    /// Run the tool.
    fn call(args: Self::Args) -> Result<Output, ToolError>;
}

/// Hints about a tool's behaviour, shown to MCP clients. Advice only: the host never trusts
/// them for security. `None` means "not stated" and leaves the MCP default in force.
///
/// Build them in a `const` with the chained setters:
/// `Annotations::NONE.read_only(true).open_world(false)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Annotations {
    /// The tool does not change its environment.
    pub read_only: Option<bool>,
    /// The tool may destroy or overwrite data (meaningful only when not read-only).
    pub destructive: Option<bool>,
    /// Calling the tool twice with the same arguments has no further effect.
    pub idempotent: Option<bool>,
    /// The tool talks to an open world of external entities (e.g. the internet).
    pub open_world: Option<bool>,
}

impl Annotations {
    /// Nothing stated. A `const` so tools can build their annotations in `Tool::ANNOTATIONS`.
    pub const NONE: Self = Self { read_only: None, destructive: None, idempotent: None, open_world: None };

    /// State whether the tool leaves its environment unchanged.
    #[must_use]
    pub const fn read_only(mut self, value: bool) -> Self {
        self.read_only = Some(value);
        self
    }

    /// State whether the tool may destroy or overwrite data.
    #[must_use]
    pub const fn destructive(mut self, value: bool) -> Self {
        self.destructive = Some(value);
        self
    }

    /// State whether repeating a call with the same arguments has no further effect.
    #[must_use]
    pub const fn idempotent(mut self, value: bool) -> Self {
        self.idempotent = Some(value);
        self
    }

    /// State whether the tool talks to external entities.
    #[must_use]
    pub const fn open_world(mut self, value: bool) -> Self {
        self.open_world = Some(value);
        self
    }
}

impl From<Annotations> for wit::Annotations {
    fn from(a: Annotations) -> Self {
        Self { read_only: a.read_only, destructive: a.destructive, idempotent: a.idempotent, open_world: a.open_world }
    }
}

/// [`Tool::Args`] for a tool that takes no arguments. It accepts only `{}`, matching the schema
/// `{"type": "object", "properties": {}, "additionalProperties": false}`; `()` would not do, as
/// it deserializes from `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Its doc comment is for authors, not a description for every tool that takes no arguments.
#[schemars(description = "")]
pub struct NoArgs {}
