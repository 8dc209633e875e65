//! A small deterministic generator (xorshift) for tests that vary message shapes without a
//! dependency.

pub(super) struct Gen(pub(super) u64);

impl Gen {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// -1, 0, any value, or a small one: the values offsets take.
    pub(super) fn i64(&mut self) -> i64 {
        match self.below(4) {
            0 => -1,
            1 => 0,
            2 => self.next() as i64,
            _ => self.below(1 << 20) as i64,
        }
    }
}
