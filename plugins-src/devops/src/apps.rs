//! The operator's application table (`config.apps`) and validation of what an agent asks for.
//!
//! Every name an agent passes is checked here, before any command runs: the app and the
//! environment must be configured, and a version must look like a version. The deploy command's
//! own grant checks the arguments again on the host side.

use std::collections::BTreeMap;

use sanctum_guest::ToolError;
use serde::Deserialize;

/// One application as the operator configured it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct App {
    /// What the app is, for `list_apps`.
    #[serde(default)]
    pub(crate) description: String,
    /// Where it may be deployed, e.g. `["staging", "production"]`.
    pub(crate) environments: Vec<String>,
    /// The granted command that deploys it, run as `<command> <environment> <version>`.
    pub(crate) deploy_command: String,
    /// Health endpoint; `{environment}` in it is replaced by the environment name.
    #[serde(default)]
    pub(crate) health_url: Option<String>,
}

/// All configured apps, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Apps {
    apps: BTreeMap<String, App>,
    /// The granted directory holding the history (guest path).
    pub(crate) state_dir: String,
}

/// The state directory used when the operator sets no `state_dir`.
const DEFAULT_STATE_DIR: &str = "/state";
/// Versions longer than this are refused; real ones are tags or short hashes.
const MAX_VERSION_LEN: usize = 64;

impl Apps {
    /// Read the configuration the operator granted.
    pub(crate) fn load() -> Result<Self, ToolError> {
        let apps = sanctum_guest::config::get("apps").ok_or_else(|| {
            ToolError::new("no applications are configured: the operator must set `config.apps` for the devops plugin")
        })?;
        let state_dir = sanctum_guest::config::get("state_dir").unwrap_or_else(|| DEFAULT_STATE_DIR.to_owned());
        Self::parse(&apps, state_dir)
    }

    pub(crate) fn parse(apps_json: &str, state_dir: String) -> Result<Self, ToolError> {
        let apps: BTreeMap<String, App> = serde_json::from_str(apps_json)
            .map_err(|e| ToolError::new(format!("the operator's `config.apps` is not valid: {e}")))?;
        for (name, app) in &apps {
            if !is_identifier(name) || app.environments.iter().any(|e| !is_identifier(e)) {
                return Err(ToolError::new(format!(
                    "the operator's `config.apps.{name}` uses a name that is not lowercase letters, digits, `-` or `_`"
                )));
            }
        }
        Ok(Self { apps, state_dir })
    }

    /// The app and environment, if both are configured; otherwise an error listing what is.
    pub(crate) fn target(&self, app: &str, environment: &str) -> Result<&App, ToolError> {
        let Some(config) = self.apps.get(app) else {
            let known: Vec<&str> = self.apps.keys().map(String::as_str).collect();
            return Err(ToolError::new(format!(
                "unknown app `{app}`; configured apps: {}",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )));
        };
        if !config.environments.iter().any(|e| e == environment) {
            return Err(ToolError::new(format!(
                "app `{app}` has no environment `{environment}`; its environments: {}",
                config.environments.join(", ")
            )));
        }
        Ok(config)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &App)> {
        self.apps.iter()
    }
}

impl App {
    /// The health URL for `environment`, if the app has one.
    pub(crate) fn health_url(&self, environment: &str) -> Option<String> {
        self.health_url.as_ref().map(|url| url.replace("{environment}", environment))
    }
}

/// Refuse anything that is not plainly a version: it becomes an argument of the operator's
/// deploy command, so it must never look like a flag, a path or a URL.
pub(crate) fn check_version(version: &str) -> Result<(), ToolError> {
    let ok = !version.is_empty()
        && version.len() <= MAX_VERSION_LEN
        && version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(ToolError::new(format!(
            "`{version}` is not a valid version: use 1-{MAX_VERSION_LEN} letters, digits, `.`, `_`, `-` or `+`, \
             starting with a letter or digit (e.g. `v1.4.2`)"
        )))
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Apps {
        Apps::parse(
            r#"{"web": {"environments": ["staging", "production"], "deploy_command": "deploy-web",
                "health_url": "http://127.0.0.1:9/{environment}/health"}}"#,
            "/state".into(),
        )
        .expect("valid")
    }

    #[test]
    fn configured_targets_are_found_and_unknown_ones_named() {
        let apps = apps();
        assert_eq!(apps.target("web", "staging").map(|a| a.deploy_command.as_str()), Ok("deploy-web"));
        let err = apps.target("api", "staging").expect_err("unknown app");
        assert_eq!(err.message(), "unknown app `api`; configured apps: web");
        let err = apps.target("web", "qa").expect_err("unknown environment");
        assert_eq!(err.message(), "app `web` has no environment `qa`; its environments: staging, production");
    }

    #[test]
    fn health_urls_take_the_environment() {
        let apps = apps();
        let web = apps.target("web", "staging").expect("configured");
        assert_eq!(web.health_url("staging").as_deref(), Some("http://127.0.0.1:9/staging/health"));
    }

    #[test]
    fn versions_must_look_like_versions() {
        for good in ["v1.2.3", "1.0.0-rc.1+build.5", "abc123f"] {
            assert_eq!(check_version(good), Ok(()), "{good}");
        }
        for bad in ["", "-rf", "--force", "../etc", "v1 2", "a;b", "$(id)", &"1".repeat(65)] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_operator_config_is_reported() {
        let err =
            Apps::parse(r#"{"Web": {"environments": [], "deploy_command": "x"}}"#, "/s".into()).expect_err("name");
        assert!(err.message().contains("config.apps.Web"), "{}", err.message());
        let err = Apps::parse(r#"{"web": {"environments": []}}"#, "/s".into()).expect_err("missing field");
        assert!(err.message().contains("deploy_command"), "{}", err.message());
    }
}
