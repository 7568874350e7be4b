//! botflow runtime crate (work in progress).
