//! The one source of randomness of a run: SplitMix64, seeded by the run's seed. Small,
//! fast, and the same on every platform, so a seed names one run for ever.

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// An index below `len` (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        // usize fits in u64 on every supported platform, and the result is below `len`.
        (self.next_u64() % len as u64) as usize
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.next_u64() % denominator < numerator
    }

    /// Picks an item by weight; `None` when every weight is 0.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, u64)]) -> Option<T> {
        let total: u64 = items.iter().map(|(_, weight)| weight).sum();
        if total == 0 {
            return None;
        }
        let mut pick = self.next_u64() % total;
        for (item, weight) in items {
            if pick < *weight {
                return Some(*item);
            }
            pick -= weight;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(8).next_u64(), first[0]);
    }

    #[test]
    fn weighted_picks_never_choose_a_zero_weight() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            assert_ne!(rng.weighted(&[('a', 0), ('b', 3), ('c', 1)]), Some('a'));
        }
        assert_eq!(rng.weighted::<char>(&[('a', 0)]), None);
    }
}
