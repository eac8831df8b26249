//! # guard (being written)
