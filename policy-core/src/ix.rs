//! Indices into the compiled engine's tables, one type per table.
//!
//! Only the loader makes them (their constructors take a `load::Minted` proof, whose field is
//! private to `crate::load`), and only after it has put the entry they point at into its
//! table. The evaluator therefore never holds a bare integer, and looks each one up through
//! [`crate::Engine`] accessors that turn a missing entry into an [`crate::EvalError`] — never a
//! skipped policy or a rule read as "no match", which for a `deny` policy or an `exclude` would
//! be the direction that opens access.

use crate::load::Minted;

macro_rules! index {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(u32);

        impl $name {
            /// Made by the loader once the entry exists.
            pub(crate) fn new(_: Minted, index: u32) -> $name {
                $name(index)
            }

            /// The position in the table.
            pub(crate) fn get(self) -> usize {
                self.0 as usize
            }
        }
    };
}

index!(
    /// A policy in `Engine::policies` (reusable ones first, then inline ones).
    PolicyIx
);
index!(
    /// An Access group in `Engine::groups`.
    GroupIx
);
index!(
    /// A list in `Engine::lists`.
    ListIx
);
index!(
    /// An identity provider in `Engine::idps`.
    IdpIx
);
index!(
    /// A group some rule names: its bit in the hierarchy's referenced groups.
    RefGroupIx
);
