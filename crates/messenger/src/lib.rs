//! botflow messenger crate (work in progress).
