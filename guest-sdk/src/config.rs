//! Configuration values the operator set for this plugin (`[plugins.<name>.config]`).
//! Off wasm (native unit tests) every key is unset.

/// The value of `key`, or `None` if the operator did not set it.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_family = "wasm")]
    {
        crate::__bindings::sanctum::plugin::config::get(key)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = key;
        None
    }
}
