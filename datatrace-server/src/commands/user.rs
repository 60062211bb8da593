//! `datatrace user add`: adds a user (the first admin) to a server's metadata store.

use std::io::BufRead;

use crate::cli::UserAddArgs;
use crate::serve::auth::Role;
use crate::serve::sql_store::{SqlStore, PASSWORD_ENV};
use crate::serve::{accounts, private};

/// The environment variable holding the new user's password.
pub const USER_PASSWORD_ENV: &str = "DATATRACE_USER_PASSWORD";

/// Adds the user; the exit code.
pub async fn add(args: &UserAddArgs) -> u8 {
    match add_inner(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

async fn add_inner(args: &UserAddArgs) -> Result<(), String> {
    let role = Role::parse(&args.role)
        .ok_or_else(|| format!("--role {:?}: expected viewer, operator or admin", args.role))?;
    let password = match std::env::var(USER_PASSWORD_ENV) {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password from standard input: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let store = match &args.metadata_url {
        Some(url) => SqlStore::open_mysql(url)
            .await
            .map_err(|e| format!("--metadata-url: {e} (the password goes in {PASSWORD_ENV})"))?,
        None => {
            private::private_dir(&args.data_dir).map_err(|e| {
                format!(
                    "cannot create the data directory {}: {e}",
                    args.data_dir.display()
                )
            })?;
            SqlStore::open_sqlite(&args.data_dir)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let store = std::sync::Arc::new(store);
    let name = args.username.trim();
    accounts::add_user(&store, name, password, role)
        .await
        .map_err(|e| match e.field {
            Some(f) => format!("{f}: {}", e.message),
            None => e.message,
        })?;
    store
        .audit(
            "cli",
            "user.create",
            Some(&format!("user {name}")),
            Some(role.as_str()),
            "ok",
        )
        .await
        .map_err(|e| e.to_string())?;
    println!("added user {name} ({role})");
    Ok(())
}
