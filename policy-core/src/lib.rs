#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(not(feature = "wasm"), forbid(unsafe_code))]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod duration;
mod engine;
mod error;
mod eval;
mod hierarchy;
mod ids;
mod ix;
mod json;
mod load;
mod model;
mod net;
mod path;
mod prepared;
mod refusal;
mod request;
mod request_direct;
mod route;
pub mod suite;
mod verdict;
#[cfg(feature = "wasm")]
mod wasm;

pub use duration::{InvalidDuration, SessionDuration, MAX_SESSION_SECONDS};
pub use engine::{DirectoryError, Engine, Options, ProviderDirectory};
pub use error::{EvalError, LoadError, LoadErrors, RequestError};
pub use eval::Explanation;
pub use hierarchy::{Closure, ClosureError, GroupHierarchy, HierarchyError, Limits};
pub use ids::{Country, Email, GroupId, InvalidCountry, InvalidEmail, InvalidGuid};
pub use model::{
    client_secret_var, Action, App, GroupMembershipClaims, IdentityProvider,
    IdentityUpdateBehavior, ScimConfig, ServiceTokenConfig, Warning, SHARED_CLIENT_SECRET,
};
pub use net::{ClientIp, InvalidIp, IpRange};
pub use path::{PathProblem, PathRefusal};
pub use prepared::PreparedIdentity;
pub use refusal::DenyAnswer;
pub use request::{Identity, Mtls, Request, ServiceToken};
pub use route::Target;
pub use verdict::{DecidingPolicy, Decision, Outcome, Verdict};
#[cfg(feature = "wasm")]
pub use wasm::{PolicyEngine, PolicyRequest};
