//! `sanctum:plugin/config`: read-only values the operator set for this plugin.

use crate::runtime::bindings::config;
use crate::runtime::sandbox::CallState;

impl config::Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        self.scope.grants.config.get(&key).cloned()
    }
}
