//! The trace of a run: one line per step, and a hash of all of them. The same seed must give
//! the same trace, line for line; the hash makes that cheap to compare.

/// Step descriptions in order, and their running FNV-1a hash.
#[derive(Debug, Clone)]
pub struct Trace {
    lines: Vec<String>,
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Trace {
    fn default() -> Trace {
        Trace {
            lines: Vec::new(),
            hash: FNV_OFFSET,
        }
    }
}

impl Trace {
    pub fn push(&mut self, line: String) {
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        self.lines.push(line);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The last `count` lines.
    pub fn tail(&self, count: usize) -> &[String] {
        &self.lines[self.lines.len().saturating_sub(count)..]
    }

    /// FNV-1a over every line and its newline.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}
