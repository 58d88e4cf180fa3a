//! Authentication and permissions (SPEC §8.3), shared by the REST and gRPC
//! adapters: they hand over the raw `Authorization` and `X-API-Key` values,
//! [`Authenticator`] turns them into a [`Principal`], and each service
//! function checks the [`Permission`] it needs. No adapter decides who may
//! do what.

mod api_key;
mod authenticator;
mod jwt;
mod permission;
mod principal;

pub use authenticator::{AuthSetupError, Authenticator};
pub use permission::{Grants, Permission, UnknownPermission};
pub use principal::{AuthMethod, Principal};
