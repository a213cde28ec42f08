//! In-process tests of the memory handler.
