//! botflow server crate (work in progress).
