//! Validation of one command grant, including the refusal of programs that would turn a
//! plugin's arguments into code execution.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::PolicyError;
use super::file::CommandFile;
use crate::model::{ChildLimits, CommandGrant, JobLimits};

/// Programs that run another program or code given as an argument. Granting one would hand the
/// plugin (and the agent steering it) a shell, so they need `full_trust = true`.
const LAUNCHERS: &[&str] = &[
    "env",
    "sudo",
    "su",
    "doas",
    "pkexec",
    "xargs",
    "find",
    "nice",
    "nohup",
    "timeout",
    "stdbuf",
    "setsid",
    "chroot",
    "unshare",
    "nsenter",
    "strace",
    "ltrace",
    "gdb",
    "script",
    "watch",
    "time",
    "busybox",
    "toybox",
    "npx",
    "npm",
    "pnpm",
    "yarn",
    "pip",
    "pip3",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "sed",
    "make",
    "flock",
    "parallel",
    "expect",
    "ssh-agent",
    "dbus-run-session",
    "systemd-run",
];

/// Shells and interpreters: safe only when the operator fixes the script they run (the first
/// leading argument), so no plugin argument can become `-c CODE` or the program text.
const INTERPRETERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "fish",
    "csh",
    "tcsh",
    "python",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "lua",
    "luajit",
    "tclsh",
    "wish",
    "Rscript",
    "osascript",
    "pwsh",
];

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Compiled size an `allowed_args` pattern may take.
const PATTERN_SIZE_LIMIT: usize = 256 << 10;
const DEFAULT_OUTPUT_KIB: u64 = 256;

pub(super) fn validate(key: &str, file: &CommandFile) -> Result<CommandGrant, PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid { key: key.to_owned(), reason };
    let program = PathBuf::from(&file.program);
    if !program.is_absolute() {
        return Err(invalid(format!("program {:?} must be an absolute path (no PATH lookup)", file.program)));
    }
    let resolved = std::fs::canonicalize(&program)
        .map_err(|e| invalid(format!("program {:?} cannot be found: {e}", file.program)))?;
    if !file.full_trust {
        refuse_code_runners(&program, &resolved, file).map_err(invalid)?;
    }
    let allowed_args = file
        .allowed_args
        .iter()
        // Anchored as a whole, so `a|ab` accepts "ab" (a bare leftmost-first search would stop at
        // "a" and refuse it); the runtime still checks that the match spans the argument.
        .map(|p| {
            // The `regex` engine runs in linear time; the size limits bound what one pattern may
            // cost to compile and to run.
            regex::RegexBuilder::new(&format!("^(?:{p})$"))
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| invalid(format!("allowed_args pattern {p:?} does not compile: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = PathBuf::from(file.cwd.as_deref().unwrap_or("/"));
    if !cwd.is_absolute() {
        return Err(invalid(format!("cwd {:?} must be an absolute path", cwd.display())));
    }
    let kib =
        |v: Option<u64>| usize::try_from(v.unwrap_or(DEFAULT_OUTPUT_KIB).saturating_mul(1024)).unwrap_or(usize::MAX);
    let absolute = |field: &str, paths: &[String]| -> Result<Vec<PathBuf>, PolicyError> {
        paths
            .iter()
            .map(|p| {
                let path = PathBuf::from(p);
                if path.is_absolute() {
                    Ok(path)
                } else {
                    Err(invalid(format!("{field} entry {p:?} must be absolute")))
                }
            })
            .collect()
    };
    let readable = absolute("readable", file.readable.as_deref().unwrap_or(&["/".to_owned()]))?;
    let writable = absolute("writable", &file.writable)?;
    let defaults = ChildLimits::default();
    let limits = &file.limits;
    let jobs = job_limits(file).map_err(invalid)?;
    Ok(CommandGrant {
        // Run as written: a venv's `bin/python3` is a symlink whose target would not see the
        // venv. The target was judged above together with the name.
        program,
        leading_args: file.args.clone(),
        allowed_args,
        allow_flags: file.allow_flags,
        env: file.env.clone(),
        cwd,
        timeout: file.timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis),
        max_stdout_bytes: kib(file.max_stdout_kib),
        max_stderr_bytes: kib(file.max_stderr_kib),
        allow_stdin: file.stdin,
        rlimits: ChildLimits {
            max_processes: limits.processes.unwrap_or(defaults.max_processes),
            cpu_seconds: limits.cpu_seconds.unwrap_or(defaults.cpu_seconds),
            address_space_bytes: limits.address_space_mib.map_or(defaults.address_space_bytes, |m| m << 20),
            open_files: limits.open_files.unwrap_or(defaults.open_files),
        },
        readable,
        writable,
        jobs,
    })
}

/// Judge both the configured name and where it really points (`/bin/sh` is often `dash`).
/// `max_jobs`, `job_timeout_ms` and `job_output_kib`, each within its bounds.
fn job_limits(file: &CommandFile) -> Result<JobLimits, String> {
    let bounded = |name: &str, value: Option<u64>, default: u64, range: std::ops::RangeInclusive<u64>| {
        let value = value.unwrap_or(default);
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(format!("{name} = {value} is outside {}..={}", range.start(), range.end()))
        }
    };
    let max_running =
        bounded("max_jobs", file.max_jobs, u64::from(JobLimits::DEFAULT_MAX_RUNNING), JobLimits::MAX_RUNNING_RANGE)?;
    let timeout_ms =
        bounded("job_timeout_ms", file.job_timeout_ms, JobLimits::DEFAULT_TIMEOUT_MS, JobLimits::TIMEOUT_MS_RANGE)?;
    let output_kib =
        bounded("job_output_kib", file.job_output_kib, JobLimits::DEFAULT_OUTPUT_KIB, JobLimits::OUTPUT_KIB_RANGE)?;
    Ok(JobLimits {
        max_running: u32::try_from(max_running).unwrap_or(JobLimits::DEFAULT_MAX_RUNNING),
        timeout: Duration::from_millis(timeout_ms),
        output_bytes: output_kib << 10,
    })
}

fn refuse_code_runners(program: &Path, resolved: &Path, file: &CommandFile) -> Result<(), String> {
    for path in [program, resolved] {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if LAUNCHERS.contains(&name.as_str()) {
            return Err(format!(
                "{name} runs whatever its arguments name, which would give the plugin a shell; \
                 set full_trust = true only if that is intended"
            ));
        }
        if is_interpreter(&name) {
            let script = file.args.first().filter(|a| !a.starts_with('-'));
            if script.is_none() || file.allow_flags {
                return Err(format!(
                    "{name} is an interpreter: fix the script it runs as the first of `args` and keep \
                     allow_flags = false (or set full_trust = true)"
                ));
            }
        }
    }
    Ok(())
}

/// `python3`, `python3.11`, `perl5.36` count as their family.
fn is_interpreter(name: &str) -> bool {
    let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS.contains(&family) || INTERPRETERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(program: &str, args: &[&str]) -> CommandFile {
        CommandFile {
            program: program.into(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            allowed_args: vec![],
            allow_flags: false,
            env: Default::default(),
            cwd: None,
            timeout_ms: None,
            max_stdout_kib: None,
            max_stderr_kib: None,
            stdin: false,
            full_trust: false,
            limits: Default::default(),
            readable: None,
            writable: vec![],
            max_jobs: None,
            job_timeout_ms: None,
            job_output_kib: None,
        }
    }

    #[test]
    fn job_limits_default_and_are_bounded() {
        let grant = validate("k", &command("/bin/echo", &[])).expect("valid");
        assert_eq!(grant.jobs, JobLimits::default());
        assert_eq!((grant.jobs.max_running, grant.jobs.timeout.as_secs()), (1, 1800));
        let mut file = command("/bin/echo", &[]);
        (file.max_jobs, file.job_timeout_ms, file.job_output_kib) = (Some(3), Some(5000), Some(64));
        let grant = validate("k", &file).expect("valid");
        assert_eq!(grant.jobs.max_running, 3);
        assert_eq!(grant.jobs.timeout, Duration::from_secs(5));
        assert_eq!(grant.jobs.output_bytes, 64 << 10);
        for (max, timeout, kib, named) in [
            (Some(0), None, None, "max_jobs = 0"),
            (Some(65), None, None, "max_jobs = 65"),
            (None, Some(999), None, "job_timeout_ms = 999"),
            (None, None, Some(65_537), "job_output_kib = 65537"),
        ] {
            (file.max_jobs, file.job_timeout_ms, file.job_output_kib) = (max, timeout, kib);
            let error = validate("plugins.p.commands.c", &file).expect_err(named).to_string();
            assert!(error.contains(named) && error.starts_with("plugins.p.commands.c:"), "{error}");
        }
    }

    #[test]
    fn plain_programs_are_granted() {
        let grant = validate("k", &command("/bin/echo", &[])).expect("echo is fine");
        assert!(grant.program.is_absolute());
        assert_eq!(grant.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn argument_patterns_match_whole_arguments_with_any_alternative() {
        let mut file = command("/bin/echo", &[]);
        file.allowed_args = vec!["a|ab".into(), "staging|production".into()];
        let grant = validate("k", &file).expect("valid");
        let accepts = |arg: &str| grant.allowed_args.iter().any(|p| p.is_match(arg));
        assert!(accepts("ab") && accepts("a") && accepts("production"));
        assert!(!accepts("stagingX") && !accepts("xproduction") && !accepts("abc"));
    }

    #[test]
    fn shells_launchers_and_relative_paths_are_refused() {
        for (program, args) in [("/bin/sh", &[][..]), ("/bin/sh", &["-c"][..]), ("/usr/bin/env", &[][..])] {
            let error = validate("plugins.p.commands.c", &command(program, args)).expect_err(program);
            assert!(error.to_string().starts_with("plugins.p.commands.c:"), "{error}");
        }
        assert!(validate("k", &command("echo", &[])).expect_err("relative").to_string().contains("absolute"));
        assert!(validate("k", &command("/no/such/program", &[])).is_err());
    }

    #[test]
    fn an_interpreter_with_a_fixed_script_is_allowed_and_full_trust_overrides() {
        assert!(validate("k", &command("/bin/sh", &["/opt/deploy.sh"])).is_ok());
        let mut trusted = command("/usr/bin/env", &[]);
        trusted.full_trust = true;
        assert!(validate("k", &trusted).is_ok());
        assert!(is_interpreter("python3.11") && is_interpreter("perl") && !is_interpreter("git"));
    }
}
