//! Identity for access control (issue 11, design 0009): who a caller is ([`Principal`]: a user
//! with a [`Role`] and an [`Agencies`] scope), what they may do ([`allows`], the role table), and
//! the two kinds of credential a node keeps: argon2id password hashes ([`password`]) and API keys
//! for service accounts ([`api_key`]).
//!
//! Nothing here does I/O or reads a clock; the only thing taken from the operating system is
//! randomness (salts, API key secrets) from `OsRng`. Storage is `store::UserStore`; HTTP
//! (login, tokens, enforcement) builds on these types.
//!
//! Secrets (passwords, API key secrets, password hashes) never appear in `Debug` output or in
//! error messages.

pub mod api_key;
pub mod password;
mod role;

pub use api_key::{ApiKeyToken, NewApiKey};
pub use password::{PasswordHash, Passwords, check_password_policy};
pub use role::{Action, Agencies, Principal, Role, allows};
