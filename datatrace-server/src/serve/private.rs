//! The data directory and its files are the server's alone: the directory is made (or
//! narrowed to) mode 0700 and the metadata database 0600, since they hold encrypted secrets,
//! password hashes, checkpoints and dead letters with full row values.

use std::path::Path;

/// Creates `dir` (and its parents) when missing, and makes it accessible to its owner only;
/// returns a note when an existing directory was narrowed.
pub fn private_dir(dir: &Path) -> std::io::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            return Ok(None);
        }
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
            return Ok(Some(format!(
                "the data directory {} was readable by others (mode {:o}); it is now 0{:o}",
                dir.display(),
                mode & 0o777,
                mode & 0o700
            )));
        }
        Ok(None)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map(|_| None)
    }
}

/// Creates `file` empty with mode 0600 when missing, or narrows an existing one to 0600.
/// SQLite creates its `-wal` and `-shm` files with the database file's mode.
pub fn private_file(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if file.exists() {
            for f in [
                file.to_owned(),
                file.with_extension("sqlite-wal"),
                file.with_extension("sqlite-shm"),
            ] {
                if f.exists() {
                    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))?;
                }
            }
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dirs_and_files_are_owner_only() {
        let base = std::env::temp_dir().join(format!("dt-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("a/b");
        assert_eq!(private_dir(&dir).unwrap(), None);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&dir).unwrap().unwrap().contains("755"));
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("metadata.sqlite");
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        let _ = std::fs::remove_dir_all(&base);
    }
}
