//! A forward-only reader over the fuzzer's bytes for structured targets.
//!
//! Every read succeeds: once the input is exhausted, reads return zeros (and empty slices).
//! That keeps the input → behaviour mapping total and simple to write seeds for: a seed is
//! the concatenation of the fields a target reads, in order (see [`crate::seeds`]).

/// Cursor over fuzzer input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes as a big-endian `u16` (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes as a big-endian `u32` (missing bytes read as 0).
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes as a big-endian `i64` (missing bytes read as 0).
    pub fn i64(&mut self) -> i64 {
        (u64::from(self.u32()) << 32 | u64::from(self.u32())) as i64
    }

    /// Up to `n` next bytes (fewer when the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order_then_zeros() {
        let mut input = Input::new(&[1, 0, 2, 0, 0, 0, 3, 9]);
        assert_eq!(input.u8(), 1);
        assert_eq!(input.u16(), 2);
        assert_eq!(input.u32(), 3);
        assert_eq!(input.bytes(5), &[9]);
        assert!(input.is_empty());
        assert_eq!((input.u8(), input.u32(), input.i64()), (0, 0, 0));
        assert!(input.rest().is_empty());
    }
}
