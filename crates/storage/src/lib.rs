//! botflow storage crate (work in progress).
