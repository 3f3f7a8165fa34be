//! `sanctum new-plugin`: a new plugin project made from the templates in
//! `host/templates/<lang>/` (a Rust crate, a Python app or a JavaScript module).
//!
//! Owns the templates, their `{{name}}`/`{{sdk_path}}` substitution, the checks on the plugin
//! name and the guest SDK path, and writing the files. It only ever creates one new directory;
//! it must not touch the runtime, the policy or anything the server loads.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::config::PluginLang;
use crate::ids::{NameError, PluginName};

/// Longest plugin name accepted. Clients see `<plugin>__<tool>` in at most 48 characters
/// ([`crate::ids::MAX_TOOL_NAME_LEN`]); 40 leaves room for the separator and a short tool name
/// such as the template's `greet`, which the SDK would otherwise refuse at compile time.
pub const MAX_PLUGIN_NAME_LEN: usize = 40;

/// One file of a new plugin: where it goes in the project, and its template.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub path: &'static str,
    pub text: &'static str,
}

/// Every file `new-plugin --lang rust` writes, in the order it reports them.
pub const TEMPLATES: [Template; 4] = [
    Template { path: "Cargo.toml", text: include_str!("../../templates/rust/Cargo.toml.tmpl") },
    Template { path: "src/lib.rs", text: include_str!("../../templates/rust/lib.rs.tmpl") },
    Template { path: "README.md", text: include_str!("../../templates/rust/README.md.tmpl") },
    // Stored without its dot so the template directory is not itself affected by it.
    Template { path: ".gitignore", text: include_str!("../../templates/rust/gitignore.tmpl") },
];

/// Every file `new-plugin --lang python` writes.
pub const PYTHON_TEMPLATES: [Template; 7] = [
    Template { path: "app.py", text: include_str!("../../templates/python/app.py.tmpl") },
    Template { path: "tests/test_app.py", text: include_str!("../../templates/python/test_app.py.tmpl") },
    Template { path: "tests/conftest.py", text: include_str!("../../templates/python/conftest.py.tmpl") },
    Template { path: "requirements.txt", text: include_str!("../../templates/python/requirements.txt.tmpl") },
    Template { path: "build.sh", text: include_str!("../../templates/python/build.sh.tmpl") },
    Template { path: "README.md", text: include_str!("../../templates/python/README.md.tmpl") },
    Template { path: ".gitignore", text: include_str!("../../templates/python/gitignore.tmpl") },
];

/// Every file `new-plugin --lang js` writes.
pub const JS_TEMPLATES: [Template; 7] = [
    Template { path: "plugin.js", text: include_str!("../../templates/js/plugin.js.tmpl") },
    Template { path: "component.js", text: include_str!("../../templates/js/component.js.tmpl") },
    Template { path: "test/plugin.test.js", text: include_str!("../../templates/js/plugin.test.js.tmpl") },
    Template { path: "package.json", text: include_str!("../../templates/js/package.json.tmpl") },
    Template { path: "build.sh", text: include_str!("../../templates/js/build.sh.tmpl") },
    Template { path: "README.md", text: include_str!("../../templates/js/README.md.tmpl") },
    Template { path: ".gitignore", text: include_str!("../../templates/js/gitignore.tmpl") },
];

/// The files of a new plugin in `lang`.
pub fn templates(lang: PluginLang) -> &'static [Template] {
    match lang {
        PluginLang::Rust => &TEMPLATES,
        PluginLang::Python => &PYTHON_TEMPLATES,
        PluginLang::Js => &JS_TEMPLATES,
    }
}

/// Generated scripts that must be executable.
const EXECUTABLES: [&str; 1] = ["build.sh"];

/// The tool the template defines, for the "next steps" it prints.
pub const TEMPLATE_TOOL: &str = "greet";

/// Names that pass the naming rule but break the generated crate: the crates it depends on or
/// that Rust links implicitly would be shadowed by the plugin's own library of the same name.
const RESERVED_CRATES: [&str; 9] =
    ["sanctum_guest", "serde", "serde_json", "schemars", "std", "core", "alloc", "proc_macro", "test"];

/// Rust keywords (strict and reserved, 2024 edition); `cargo new` refuses them as package names.
const KEYWORDS: [&str; 51] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
    "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Why a plugin crate was not created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    // No variant has a `#[source]` (or a field named `source`): each message already includes
    // the cause, which anyhow's "Caused by" would print a second time.
    #[error("invalid plugin name: {0}")]
    Name(NameError),
    #[error(
        "plugin name {name:?} is {len} characters; the limit is {MAX_PLUGIN_NAME_LEN}, so that `<plugin>__<tool>` \
         fits in 48"
    )]
    TooLong { name: String, len: usize },
    #[error("plugin name {name:?} is reserved ({why}); choose another")]
    Reserved { name: String, why: &'static str },
    #[error("{} already exists; choose another name or parent directory (--dir)", .0.display())]
    Exists(PathBuf),
    #[error("cannot create the plugin in {}: {error}", .path.display())]
    Parent { path: PathBuf, error: io::Error },
    #[error(
        "no sanctum guest SDK at {}: {why}; pass --sdk PATH, the guest-sdk directory of a sanctum checkout",
        .path.display()
    )]
    Sdk { path: PathBuf, why: String },
    #[error(
        "the guest SDK path {path:?} has characters the generated scripts do not quote; use a path of letters, \
         digits and `_.+-/` (--sdk)"
    )]
    SdkPath { path: String },
    #[error("cannot {action} {}: {error}", .path.display())]
    Io { action: &'static str, path: PathBuf, error: io::Error },
}

/// Check `name` against the rule for plugin names (the host's, see [`PluginName`]) and the
/// limits of the generated project (a Rust crate also cannot be named like a keyword or a crate
/// it links).
pub fn check_name(name: &str, lang: PluginLang) -> Result<(), ScaffoldError> {
    PluginName::parse(name).map_err(ScaffoldError::Name)?;
    if name.len() > MAX_PLUGIN_NAME_LEN {
        return Err(ScaffoldError::TooLong { name: name.to_owned(), len: name.len() });
    }
    let why = if lang != PluginLang::Rust {
        None
    } else if RESERVED_CRATES.contains(&name) {
        Some("the generated crate would shadow the Rust crate of that name")
    } else if KEYWORDS.contains(&name) {
        Some("a Rust keyword")
    } else {
        None
    };
    match why {
        Some(why) => Err(ScaffoldError::Reserved { name: name.to_owned(), why }),
        None => Ok(()),
    }
}

/// Fill a template: every `{{name}}` becomes `name` and every `{{sdk_path}}` becomes `sdk_path`,
/// both inserted as given (the caller escapes them for the file they land in).
pub fn render(template: &str, name: &str, sdk_path: &str) -> String {
    template.replace("{{name}}", name).replace("{{sdk_path}}", sdk_path)
}

/// The guest SDK of the checkout this binary was built from. Recorded at compile time, so it
/// exists only where that checkout still does; `--sdk` covers the rest.
pub fn default_sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("guest-sdk")
}

/// How the new crate at `crate_dir` names the SDK at `sdk_dir` (both absolute and free of
/// `..`): relative when the two share a directory below the filesystem root, so a checkout that
/// holds both can move as a whole; absolute otherwise, where a relative path would only climb
/// to `/` and back down. Always with `/`, which cargo accepts on every platform.
pub fn sdk_path_for(crate_dir: &Path, sdk_dir: &Path) -> String {
    let from: Vec<Component<'_>> = crate_dir.components().collect();
    let to: Vec<Component<'_>> = sdk_dir.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let shares_a_directory = from[..common].iter().any(|c| matches!(c, Component::Normal(_)));
    if !shares_a_directory {
        return sdk_dir.to_string_lossy().into_owned();
    }
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(to[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() { ".".to_owned() } else { parts.join("/") }
}

/// `text` as the inside of a TOML basic string (`"…"`).
fn toml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// A plugin crate that [`create`] wrote.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    /// The crate's directory, as the caller named its parent (for messages the user can paste).
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<&'static str>,
    /// The SDK path as written into the project.
    pub sdk_path: String,
    pub lang: PluginLang,
}

impl Created {
    /// What to tell the user: the files, then the commands that test, build and try the plugin.
    pub fn summary(&self) -> String {
        let dir = self.dir.display();
        let name = &self.name;
        let mut out = format!("created plugin `{name}` in {dir} (guest SDK: {})\n", self.sdk_path);
        for file in &self.files {
            out.push_str(&format!("  {file}\n"));
        }
        let try_it = r#"'{"name": "Ada"}'"#;
        let next = match self.lang {
            PluginLang::Rust => format!(
                "  cargo test\n  rustup target add wasm32-wasip2   # once\n  cargo build --release --target \
                 wasm32-wasip2\n  sanctum call target/wasm32-wasip2/release/{name}.wasm {TEMPLATE_TOOL} --args {try_it}\n"
            ),
            PluginLang::Python | PluginLang::Js => {
                format!(
                    "  ./build.sh   # tests, then {name}.wasm\n  sanctum call {name}.wasm {TEMPLATE_TOOL} --args {try_it}\n"
                )
            }
        };
        out.push_str(&format!(
            "next:\n  cd {dir}\n{next}then copy the .wasm into the directory `sanctum serve --plugins` serves.\n"
        ));
        out
    }
}

/// Create the plugin project `parent/name` in `lang` from [`templates`]. `parent` must exist
/// and `parent/name` must not; `sdk` defaults to [`default_sdk_dir`]. On failure nothing is
/// left behind.
pub fn create(parent: &Path, name: &str, sdk: Option<&Path>, lang: PluginLang) -> Result<Created, ScaffoldError> {
    check_name(name, lang)?;
    let parent_abs =
        std::fs::canonicalize(parent).map_err(|error| ScaffoldError::Parent { path: parent.to_owned(), error })?;
    if !parent_abs.is_dir() {
        let error = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
        return Err(ScaffoldError::Parent { path: parent.to_owned(), error });
    }
    let sdk_dir = check_sdk(sdk.map_or_else(default_sdk_dir, Path::to_owned), lang)?;
    let crate_dir = parent_abs.join(name);
    let shown_dir = parent.join(name);
    let sdk_path = sdk_path_for(&crate_dir, &sdk_dir);
    let sdk_path_text = match lang {
        PluginLang::Rust => toml_escape(&sdk_path),
        // Written into shell, Python and JSON strings: only characters none of them quote.
        PluginLang::Python | PluginLang::Js => {
            if !sdk_path.chars().all(|c| c.is_ascii_alphanumeric() || "_.+-/".contains(c)) {
                return Err(ScaffoldError::SdkPath { path: sdk_path });
            }
            sdk_path.clone()
        }
    };

    // `create_dir` (not `_all`) refuses an existing path atomically, so two runs cannot both
    // write into the same directory.
    std::fs::create_dir(&crate_dir).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => ScaffoldError::Exists(shown_dir.clone()),
        _ => ScaffoldError::Io { action: "create", path: shown_dir.clone(), error },
    })?;
    let written = write_files(&crate_dir, name, &sdk_path_text, templates(lang));
    if let Err(error) = written {
        // The directory is ours (just created), so removing it cannot lose anyone's work.
        let _ = std::fs::remove_dir_all(&crate_dir);
        return Err(error);
    }
    let files = templates(lang).iter().map(|t| t.path).collect();
    Ok(Created { name: name.to_owned(), dir: shown_dir, files, sdk_path, lang })
}

fn write_files(crate_dir: &Path, name: &str, sdk_path: &str, templates: &[Template]) -> Result<(), ScaffoldError> {
    for template in templates {
        let path = crate_dir.join(template.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| ScaffoldError::Io {
                action: "create",
                path: dir.to_owned(),
                error,
            })?;
        }
        std::fs::write(&path, render(template.text, name, sdk_path)).map_err(|error| ScaffoldError::Io {
            action: "write",
            path: path.clone(),
            error,
        })?;
        if EXECUTABLES.contains(&template.path) {
            make_executable(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), ScaffoldError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|error| ScaffoldError::Io {
        action: "make executable",
        path: path.to_owned(),
        error,
    })
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), ScaffoldError> {
    Ok(())
}

/// The SDK directory, absolute, after checking it holds the `sanctum-guest` crate and, for
/// Python and JavaScript, that language's SDK and the world beside it.
fn check_sdk(dir: PathBuf, lang: PluginLang) -> Result<PathBuf, ScaffoldError> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| ScaffoldError::Sdk {
        path: dir.clone(),
        why: format!("cannot read {}: {e}", manifest.display()),
    })?;
    if !text.lines().any(|line| line.trim() == r#"name = "sanctum-guest""#) {
        return Err(ScaffoldError::Sdk { path: dir, why: "its Cargo.toml is not the sanctum-guest crate".into() });
    }
    let needed: &[&str] = match lang {
        PluginLang::Rust => &[],
        PluginLang::Python => &["python/sanctum_plugin/__init__.py", "python/wit/http.wit", "../wit/plugin.wit"],
        PluginLang::Js => &["js/package.json", "../wit/plugin.wit"],
    };
    if let Some(missing) = needed.iter().find(|file| !dir.join(file).is_file()) {
        return Err(ScaffoldError::Sdk { path: dir.clone(), why: format!("it has no {missing}") });
    }
    std::fs::canonicalize(&dir).map_err(|e| ScaffoldError::Sdk { path: dir, why: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_plugin_rule() {
        for good in ["a", "demo_tool", "notes2", "x9_y", &"p".repeat(MAX_PLUGIN_NAME_LEN)] {
            assert!(check_name(good, PluginLang::Rust).is_ok(), "{good}");
        }
        for bad in ["", "Demo", "2x", "_x", "my-tool", "a__b", "trailing_", "é", "a b"] {
            assert!(matches!(check_name(bad, PluginLang::Python), Err(ScaffoldError::Name(_))), "{bad}");
        }
        let long = "p".repeat(MAX_PLUGIN_NAME_LEN + 1);
        let error = check_name(&long, PluginLang::Js).expect_err("too long");
        assert!(error.to_string().contains("the limit is 40"), "{error}");
        for reserved in ["serde", "sanctum_guest", "std", "test", "fn", "async"] {
            assert!(
                matches!(check_name(reserved, PluginLang::Rust), Err(ScaffoldError::Reserved { .. })),
                "{reserved}"
            );
            // Only a Rust crate is named by the plugin name; a Python or JS project is not.
            assert!(check_name(reserved, PluginLang::Python).is_ok(), "{reserved}");
        }
    }

    #[test]
    fn render_fills_every_placeholder() {
        assert_eq!(render("{{name}}/{{sdk_path}} {{name}}", "demo", "../sdk"), "demo/../sdk demo");
        for template in [&TEMPLATES[..], &PYTHON_TEMPLATES, &JS_TEMPLATES].concat() {
            let text = render(template.text, "demo_tool", "../guest-sdk");
            assert!(!text.contains("{{"), "{} keeps a placeholder", template.path);
            let fixed = [".gitignore", "requirements.txt"].contains(&template.path);
            assert!(template.text.contains("{{") || fixed, "{} fills in nothing", template.path);
        }
        let manifest = render(TEMPLATES[0].text, "demo_tool", "../guest-sdk");
        assert!(manifest.contains("name = \"demo_tool\""), "{manifest}");
        assert!(manifest.contains("sanctum-guest = { path = \"../guest-sdk\" }"), "{manifest}");
        assert!(manifest.contains("crate-type = [\"cdylib\"]") && manifest.contains("\n[workspace]\n"), "{manifest}");
    }

    #[test]
    fn the_sdk_path_is_relative_within_a_shared_directory() {
        let sdk = Path::new("/work/sanctum/guest-sdk");
        assert_eq!(sdk_path_for(Path::new("/work/sanctum/plugins-src/notes"), sdk), "../../guest-sdk");
        assert_eq!(sdk_path_for(Path::new("/work/notes"), sdk), "../sanctum/guest-sdk");
        assert_eq!(sdk_path_for(Path::new("/tmp/x/notes"), sdk), "/work/sanctum/guest-sdk");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_escape(r#"C:\dir "x""#), r#"C:\\dir \"x\""#);
        assert_eq!(toml_escape("a\nb"), "a\\u000Ab");
    }

    #[test]
    fn create_writes_the_crate_once_and_refuses_what_it_cannot_build() {
        let parent = tempfile::tempdir().expect("temp dir");
        let created = create(parent.path(), "demo_tool", None, PluginLang::Rust).expect("created");
        assert_eq!(created.files, ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"]);
        let lib = std::fs::read_to_string(parent.path().join("demo_tool/src/lib.rs")).expect("lib.rs");
        assert!(lib.contains("name: \"demo_tool\""), "{lib}");
        let manifest = std::fs::read_to_string(parent.path().join("demo_tool/Cargo.toml")).expect("Cargo.toml");
        assert!(manifest.contains(&format!("path = \"{}\"", created.sdk_path)), "{manifest}");
        assert!(created.summary().contains("demo_tool.wasm greet --args"), "{}", created.summary());

        assert!(matches!(create(parent.path(), "demo_tool", None, PluginLang::Rust), Err(ScaffoldError::Exists(_))));
        assert!(matches!(create(parent.path(), "Bad", None, PluginLang::Rust), Err(ScaffoldError::Name(_))));
        let not_sdk = create(parent.path(), "other", Some(parent.path()), PluginLang::Rust);
        assert!(matches!(not_sdk, Err(ScaffoldError::Sdk { .. })), "{not_sdk:?}");
        assert!(!parent.path().join("other").exists(), "nothing is left behind");
        let missing = create(&parent.path().join("missing"), "other", None, PluginLang::Rust);
        assert!(matches!(missing, Err(ScaffoldError::Parent { .. })), "{missing:?}");
    }

    #[test]
    fn python_and_js_projects_are_written_with_an_executable_build_and_a_plain_sdk_path() {
        let parent = tempfile::tempdir().expect("temp dir");
        for (lang, name, main) in [(PluginLang::Python, "py_demo", "app.py"), (PluginLang::Js, "js_demo", "plugin.js")]
        {
            let created = create(parent.path(), name, None, lang).expect("created");
            assert_eq!(created.files, templates(lang).iter().map(|t| t.path).collect::<Vec<_>>());
            let source = std::fs::read_to_string(parent.path().join(name).join(main)).expect("source");
            assert!(source.contains(&format!("\"{name}\"")) || source.contains(&format!("'{name}'")), "{source}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode =
                    std::fs::metadata(parent.path().join(name).join("build.sh")).expect("build.sh").permissions();
                assert_eq!(mode.mode() & 0o111, 0o111, "build.sh is executable");
            }
            assert!(created.summary().contains("./build.sh"), "{}", created.summary());
        }
        // An SDK without the Python package is refused before anything is written.
        let rust_only = tempfile::tempdir().expect("temp dir");
        std::fs::write(rust_only.path().join("Cargo.toml"), "[package]\nname = \"sanctum-guest\"\n").expect("write");
        let refused = create(parent.path(), "other", Some(rust_only.path()), PluginLang::Python);
        assert!(
            matches!(&refused, Err(ScaffoldError::Sdk { why, .. }) if why.contains("sanctum_plugin")),
            "{refused:?}"
        );
        assert!(!parent.path().join("other").exists());
    }
}
