//! A signed-in user compiled once against an engine, for deciding many of their requests.
//!
//! Design choice: what a decision does with an identity that does not depend on the request —
//! the user's identity provider among the engine's, and the closure of their groups over the
//! engine's compiled directory (one hash lookup per group) — is done once, here. A host that
//! caches a [`PreparedIdentity`] per session or token then pays, per request, only for the
//! routing and the policies' rules, the group rules being bit tests on the closure.
//!
//! A prepared identity belongs to the engine that prepared it (its bits index that engine's
//! referenced groups). Every engine has a stamp of its own; deciding with an identity prepared
//! by another engine (e.g. one compiled before the configuration changed) recomputes what was
//! prepared from the identity itself, so the decision is the same as the unprepared one, only
//! not faster.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::engine::Engine;
use crate::error::EvalError;
use crate::hierarchy::Closure;
use crate::ix::IdpIx;
use crate::request::Identity;

/// A user's identity with its group closure, compiled by [`Engine::prepare_identity`].
#[derive(Clone, Debug)]
pub struct PreparedIdentity {
    pub(crate) identity: Identity,
    pub(crate) stamp: u64,
    pub(crate) idp: Option<IdpIx>,
    /// `None` when the identity carries more groups than the engine's limit: deciding then
    /// fails as the unprepared decision does, when (and only when) a group rule is reached.
    pub(crate) closure: Option<Closure>,
}

impl PreparedIdentity {
    /// The identity as it was given.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether `engine` prepared it (else deciding with it recomputes the closure).
    pub fn is_for(&self, engine: &Engine) -> bool {
        self.stamp == engine.stamp
    }
}

/// The next engine's stamp: distinct for every engine of the process.
pub(crate) fn next_stamp() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Engine {
    /// Compiles `identity` for deciding its requests with [`Engine::decide_as`]: resolves its
    /// identity provider and the closure of its groups once.
    pub fn prepare_identity(&self, identity: Identity) -> PreparedIdentity {
        let idp = self.identity_idp(&identity);
        PreparedIdentity {
            idp,
            closure: self.hierarchy_for(idp).closure(&identity.groups).ok(),
            stamp: self.stamp,
            identity,
        }
    }

    /// Decides `request` for the prepared `identity` (`request.identity` is not read): the
    /// same decision as [`Engine::decide`] on the request carrying that identity.
    ///
    /// # Errors
    /// [`EvalError`] when a work limit is hit; the request must then be refused.
    pub fn decide_as(
        &self,
        request: &crate::Request,
        identity: &PreparedIdentity,
    ) -> Result<crate::Decision<'_>, EvalError> {
        crate::eval::run_as(self, request, identity)
    }
}
