//! Finding the server binaries: environment overrides, `PATH`, and well-known directories.

use std::env;
use std::path::{Path, PathBuf};

/// The command that installs every test dependency; named in every "not found" message.
pub(crate) const SETUP_HINT: &str =
    "run `scripts/test.sh` from the workspace root (it installs MariaDB, osmem-server, a JDK, \
     Maven and the search engines' jars)";

/// The workspace root, known at compile time (the testkit lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Finds an executable: `$env_var` if set (it must exist), else each of `names` on `PATH`, then in
/// `extra_dirs`. The error names everything that was tried and the setup script.
pub(crate) fn find(
    env_var: &str,
    names: &[&str],
    extra_dirs: &[PathBuf],
) -> Result<PathBuf, String> {
    if let Some(path) = env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "datatrace-testkit: ${env_var} is set to {} but that is not an executable file; \
                 fix or unset it, or {SETUP_HINT}",
                path.display()
            ))
        };
    }
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(extra_dirs.iter().cloned());
    for name in names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "datatrace-testkit: `{}` not found (looked at ${env_var}, PATH and {}); {SETUP_HINT}, \
         or set {env_var}",
        names.join("` / `"),
        extra_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The directories where Debian and friends put daemons that are not always on `PATH`.
pub(crate) fn sbin_dirs() -> Vec<PathBuf> {
    [
        "/usr/sbin",
        "/usr/local/sbin",
        "/sbin",
        "/usr/bin",
        "/usr/local/bin",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// Where a workspace venv may hold osmem-server: the console script in `.venv/bin` (if the
/// package ever ships one) and the binary bundled in the wheel
/// (`.venv/lib/python3.X/site-packages/osmem_server/bin`).
pub(crate) fn osmem_dirs() -> Vec<PathBuf> {
    let venv = workspace_root().join(".venv");
    let mut dirs = vec![venv.join("bin")];
    if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python"))
            })
            .collect();
        pythons.sort();
        dirs.extend(
            pythons
                .into_iter()
                .map(|p| p.join("site-packages").join("osmem_server").join("bin")),
        );
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_the_setup_script() {
        let err = find(
            "DATATRACE_TESTKIT_NO_SUCH_VAR",
            &["datatrace-no-such-binary"],
            &[],
        )
        .unwrap_err();
        assert!(err.contains("scripts/test.sh"), "{err}");
        assert!(err.contains("datatrace-no-such-binary"), "{err}");
    }

    #[test]
    fn finds_sh_on_path() {
        assert!(find("DATATRACE_TESTKIT_NO_SUCH_VAR", &["sh"], &sbin_dirs()).is_ok());
    }
}
