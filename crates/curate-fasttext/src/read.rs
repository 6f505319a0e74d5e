//! A bounds-checked little-endian reader over a model file's bytes: every short read becomes a
//! [`LoadError::Truncated`] naming the part being read and its offset.

use crate::error::LoadError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails as truncated unless `need` more bytes remain (a size read from the file checked
    /// before allocating for it).
    pub(crate) fn expect(&self, need: u128, what: &'static str) -> Result<(), LoadError> {
        if need > self.remaining() as u128 {
            return Err(LoadError::Truncated {
                what,
                offset: self.pos,
                need: need.min(usize::MAX as u128) as usize,
                len: self.buf.len(),
            });
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LoadError> {
        if n > self.remaining() {
            return Err(LoadError::Truncated {
                what,
                offset: self.pos,
                need: n,
                len: self.buf.len(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], LoadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, LoadError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, LoadError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64, LoadError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, LoadError> {
        Ok(self.take(1, what)?[0])
    }

    /// A C++ `bool` (one byte, 0 or 1).
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, LoadError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(LoadError::invalid(what, format!("{b} is not a boolean"))),
        }
    }

    /// `n` little-endian `f32`s.
    pub(crate) fn f32s(&mut self, n: usize, what: &'static str) -> Result<Vec<f32>, LoadError> {
        let bytes = n
            .checked_mul(4)
            .ok_or_else(|| LoadError::invalid(what, format!("{n} values overflow")))?;
        let raw = self.take(bytes, what)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Bytes up to (not including) the next NUL, which is consumed.
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], LoadError> {
        let rest = &self.buf[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(LoadError::Truncated {
                what,
                offset: self.pos,
                need: rest.len() + 1,
                len: self.buf.len(),
            }),
        }
    }
}
