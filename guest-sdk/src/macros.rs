//! The `plugin!` macro: the one place a plugin touches the component exports.

/// Export a plugin made of the listed [`Tool`](crate::Tool)s. Invoke it once, at the root of
/// the plugin crate.
///
/// ```ignore
/// sanctum_guest::plugin! {
///     name: "echo",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "Echoes text back; an example plugin.",
///     // Optional; omit it when the plugin needs no capabilities.
///     requirements: [sanctum_guest::Requirement::Config("greeting")],
///     tools: [EchoTool, StatsTool],
/// }
/// ```
///
/// All values must be constant expressions: `describe` runs when the host loads the plugin and
/// must not depend on anything decided at run time. Being constant also lets the macro check
/// the plugin and tool names against the WIT's rules (and for duplicates) at compile time.
///
/// The generated exports find the SDK as `::sanctum_guest`, so the dependency must keep that
/// name (no `package =` renaming).
#[macro_export]
macro_rules! plugin {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        $(requirements: [$($requirement:expr),* $(,)?],)?
        tools: [$($tool:ty),+ $(,)?] $(,)?
    ) => {
        // An anonymous const keeps every generated name out of the plugin's namespace.
        const _: () = {
            // A `const`, so `Plugin::new` checks the names while the plugin compiles.
            const PLUGIN: $crate::__private::Plugin = $crate::__private::Plugin::new(
                $name,
                $version,
                $description,
                &[$($($requirement),*)?],
                &[$($crate::__private::ToolEntry::of::<$tool>()),+],
            );

            struct Exports;

            impl $crate::__bindings::Guest for Exports {
                fn describe() -> $crate::__bindings::wit::PluginInfo {
                    PLUGIN.describe()
                }

                fn call(
                    name: ::std::string::String,
                    args_json: ::std::string::String,
                ) -> ::core::result::Result<
                    $crate::__bindings::wit::ToolOutput,
                    $crate::__bindings::wit::ToolError,
                > {
                    PLUGIN
                        .call(&name, &args_json)
                        .map(::core::convert::Into::into)
                        .map_err(::core::convert::Into::into)
                }
            }

            $crate::__bindings::__export!(Exports with_types_in $crate::__bindings);
        };
    };
}
