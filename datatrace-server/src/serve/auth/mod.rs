//! Who may call the API: users with roles, their passwords, sessions and API tokens, the
//! server token, and the layers that check them on every route.

pub mod authenticator;
pub mod guard;
pub mod principal;
pub mod role;
pub mod secret;
pub mod throttle;

pub use authenticator::Authenticator;
pub use principal::{Principal, Via};
pub use role::Role;
