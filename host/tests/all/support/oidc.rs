//! A real OpenID provider on loopback: `tests/oidc/provider.mjs` on `oidc-provider` (pinned in
//! `tests/oidc/package.json` + `package-lock.json`), which `tests/run` installs into
//! `target/oidc-npm/` with Node 22 in `target/node22/` and names in `SANCTUM_OIDC_NPM` and
//! `SANCTUM_NODE`. Without them (a plain `cargo test` on a fresh clone) [`Provider::start`]
//! says so and returns `None`, and the tests that need it stop there.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::repo_root;

/// What the provider prints once it serves.
#[derive(Debug, Deserialize)]
pub struct Started {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    /// The key id and algorithm of the key that signs access tokens.
    pub kid: String,
    pub alg: String,
    /// That key, PKCS#8 DER in base64, so a test can sign what the provider never would.
    private_pkcs8: String,
    /// Its public half (SPKI PEM): the bytes an HMAC-confusion attacker would key with.
    pub public_pem: String,
}

impl Started {
    pub fn signing_key(&self) -> jsonwebtoken::EncodingKey {
        let der = base64::engine::general_purpose::STANDARD.decode(&self.private_pkcs8).expect("provider key");
        jsonwebtoken::EncodingKey::from_ec_der(&der)
    }
}

/// The running provider; killed when dropped (or by [`Provider::stop`]).
pub struct Provider {
    child: tokio::process::Child,
    pub info: Started,
}

impl Provider {
    /// Start the provider issuing tokens whose default audience is `audience`.
    pub async fn start(audience: &str) -> Option<Self> {
        let npm = std::env::var_os("SANCTUM_OIDC_NPM")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/oidc-npm"));
        if !npm.join("node_modules/oidc-provider/package.json").is_file() {
            eprintln!(
                "oidc-provider is not installed in {} (tests/run installs it; or run tests/oidc/install.sh): \
                 not testing against a real OpenID provider",
                npm.display()
            );
            return None;
        }
        let node = std::env::var_os("SANCTUM_NODE").map(PathBuf::from).unwrap_or_else(|| {
            let pinned = repo_root().join("target/node22/package/bin/node");
            if pinned.is_file() { pinned } else { PathBuf::from("node") }
        });
        // ESM resolves `oidc-provider` from the script's own directory: run a copy that sits
        // beside node_modules. Renamed into place, so concurrent tests never read half a file.
        let script = npm.join("provider.mjs");
        let staging = npm.join(format!("provider.{}.{:?}.tmp", std::process::id(), std::thread::current().id()));
        std::fs::copy(repo_root().join("tests/oidc/provider.mjs"), &staging).expect("copy provider.mjs");
        std::fs::rename(&staging, &script).expect("place provider.mjs");
        let mut child = tokio::process::Command::new(&node)
            .arg(&script)
            .arg(audience)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", node.display()));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(60), BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the provider starts within 60 s")
            .expect("read the provider's first line");
        let info: Started = serde_json::from_str(&line).unwrap_or_else(|e| panic!("provider said {line:?}: {e}"));
        Some(Self { child, info })
    }

    /// A genuine access token from the client-credentials grant, for `resource`.
    pub async fn token(&self, client_id: &str, resource: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&scope=tools&resource={}",
            resource.replace(':', "%3A").replace('/', "%2F")
        );
        let response = reqwest::Client::new()
            .post(&self.info.token_endpoint)
            .basic_auth(client_id, Some(format!("{client_id}-secret-0123456789abcdef")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let answer: serde_json::Value = response.json().await.expect("token response");
        assert_eq!(status, 200, "token endpoint: {answer}");
        answer["access_token"].as_str().expect("an access token").to_owned()
    }

    /// Kill the provider: its JWKS endpoint is gone from now on.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
