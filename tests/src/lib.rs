//! End-to-end harness (the Entra ID emulator lands with the edge gateway work).
