//! SOA serial arithmetic (RFC 1982, serial number arithmetic with SERIAL_BITS = 32).

use std::cmp::Ordering;

/// Compares two serials in sequence space. `None` when they are exactly 2^31 apart, which
/// RFC 1982 leaves undefined.
pub fn compare(a: u32, b: u32) -> Option<Ordering> {
    if a == b {
        return Some(Ordering::Equal);
    }
    let diff = b.wrapping_sub(a);
    match diff.cmp(&(1u32 << 31)) {
        Ordering::Less => Some(Ordering::Less),
        Ordering::Greater => Some(Ordering::Greater),
        Ordering::Equal => None,
    }
}

/// True when `new` is strictly greater than `old` in sequence space.
pub fn is_after(new: u32, old: u32) -> bool {
    compare(old, new) == Some(Ordering::Less)
}

/// The serial to serve for a new generation: the proposed one when it is already after the
/// parent's (an imported zone file may jump ahead), otherwise the parent's plus one, so
/// secondaries always see progress.
pub fn next_serial(parent: Option<u32>, proposed: u32) -> u32 {
    match parent {
        None => proposed,
        Some(old) if is_after(proposed, old) => proposed,
        Some(old) => old.wrapping_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_after_wraps_around_zero() {
        assert!(is_after(0, u32::MAX));
        assert!(is_after(5, u32::MAX - 5));
        assert!(!is_after(u32::MAX, 0));
    }

    #[test]
    fn serials_half_the_space_apart_are_not_comparable() {
        assert_eq!(compare(0, 1 << 31), None);
    }

    #[test]
    fn next_serial_keeps_a_jump_forward_and_otherwise_increments() {
        assert_eq!(next_serial(None, 7), 7);
        assert_eq!(next_serial(Some(7), 2024010100), 2024010100);
        assert_eq!(next_serial(Some(2024010100), 7), 2024010101);
        assert_eq!(next_serial(Some(u32::MAX), 3), 3);
        assert_eq!(next_serial(Some(u32::MAX), u32::MAX), 0);
    }
}
