//! Exact renderings.
