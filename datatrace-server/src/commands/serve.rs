//! `datatrace serve`: see [`crate::serve`].

use crate::cli::ServeArgs;

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(args: &ServeArgs) -> u8 {
    crate::serve::serve(args).await
}
