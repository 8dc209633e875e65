//! Bounds every count and length in a request body by the bytes that remain, before the body
//! is decoded.
//!
//! Why: `kafka-protocol` sizes a `Vec` from an array's count before reading the elements
//! (`Vec::with_capacity(n)`), so a 22-byte request announcing 2^31 elements asks for
//! gigabytes. Kafka's own generated parsers refuse such a count ("Tried to allocate a
//! collection of size N, but there are only M bytes remaining"); [`check_body`] does the same
//! for every array, string, bytes/records field and tagged-field section, walking the body
//! with the request schemas in `schema`. The connection runs it on every request between the
//! header and the body decoder, and closes the connection on an error, as for any malformed
//! request. (A Fetch body that Fjord's own reader, `server::fetch_decode`, takes whole does
//! not need it: that reader reserves room only for what the bytes left can hold.) A body the
//! walker accepts holds every element its counts announce, so decoding it allocates in
//! proportion to the frame, which `socket.request.max.bytes` bounds. The reserving allocator
//! ([`crate::alloc`]) stays behind it as a second line.
//!
//! The walker reads the wire exactly as the decoder does (the same length encodings, the same
//! 5-byte unsigned varints, unknown tagged fields skipped by their size, known ones read by
//! type), so the two never disagree about where a field starts. It rejects nothing a
//! well-formed request contains: every array element takes at least one byte at every served
//! version (a unit test checks the schemas for it), so a count above the bytes left cannot be
//! honest. It is stricter than the decoder in one place only: a known tagged field must fill
//! exactly the size it announces.

mod schema;
#[cfg(test)]
mod tests;

use std::fmt;

use kafka_protocol::messages::ApiKey;

/// The wire shape of a field.
#[derive(Debug, Clone, Copy)]
enum Ty {
    /// A fixed-width value: bool, int8 to int64, float64, uuid (the width in bytes).
    Fixed(u8),
    /// A string: INT16 length, or compact (unsigned varint length + 1).
    Str,
    /// Bytes or records: INT32 length, or compact.
    Bytes,
    /// A struct: its fields, then (flexible versions) its tagged-field section.
    Struct(&'static [Field]),
    /// A nullable struct: an INT8 that is 1 when the struct follows.
    OptStruct(&'static [Field]),
    /// An array: INT32 count, or compact (unsigned varint count + 1), then the elements.
    Array(&'static Ty),
}

/// One field of a struct or request body.
#[derive(Debug, Clone, Copy)]
struct Field {
    /// The wire shape.
    ty: Ty,
    /// First version carrying the field.
    since: i16,
    /// Last version carrying the field.
    until: i16,
    /// The tag of a tagged field (flexible versions only); `None` for a regular field.
    tag: Option<u32>,
}

impl Field {
    /// Whether `version` carries the field.
    fn present(&self, version: i16) -> bool {
        (self.since..=self.until).contains(&version)
    }
}

/// The bytes of a struct's regular fields at `version`, when every one of them is
/// fixed-width.
fn fixed_width(fields: &[Field], version: i16) -> Option<usize> {
    fields
        .iter()
        .filter(|f| f.tag.is_none() && f.present(version))
        .try_fold(0usize, |width, f| match f.ty {
            Ty::Fixed(n) => Some(width + usize::from(n)),
            _ => None,
        })
}

/// What a length prefix or count measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The elements of an array.
    Array,
    /// The bytes of a string.
    String,
    /// The bytes of a bytes or records field.
    Bytes,
    /// The fields of a tagged-field section.
    TaggedFields,
    /// The bytes of one tagged field.
    TaggedField,
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            What::Array => "array",
            What::String => "string",
            What::Bytes => "bytes field",
            What::TaggedFields => "tagged-field section",
            What::TaggedField => "tagged field",
        })
    }
}

impl What {
    /// What the count or length counts.
    fn unit(self) -> &'static str {
        match self {
            What::Array => "elements",
            What::TaggedFields => "fields",
            What::String | What::Bytes | What::TaggedField => "bytes",
        }
    }
}

/// Why a request body was refused. Offsets count from the start of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    /// A count or length exceeds the bytes left after its prefix.
    #[error(
        "{what} of {len} {unit} at byte {offset}, but only {remaining} bytes remain",
        unit = .what.unit()
    )]
    TooLong {
        /// What the prefix measures.
        what: What,
        /// The announced count or length.
        len: u64,
        /// Bytes left after the prefix.
        remaining: usize,
        /// Where the prefix starts.
        offset: usize,
    },
    /// A length below -1 (the null marker).
    #[error("{what} length {len} at byte {offset} is negative")]
    Negative {
        /// What the prefix measures.
        what: What,
        /// The announced length.
        len: i64,
        /// Where the prefix starts.
        offset: usize,
    },
    /// The body ends inside a field.
    #[error("body ends inside a field at byte {offset}")]
    Truncated {
        /// Where the incomplete field starts.
        offset: usize,
    },
    /// A known tagged field whose value does not take exactly the size it announces (or does
    /// not fit in the body). The decoder reads such a value by type whatever its size says,
    /// and would resume elsewhere than the walker; nothing well-formed is refused.
    #[error(
        "tagged field {tag} at byte {offset}: its value does not take the {size} bytes announced"
    )]
    TagSize {
        /// The field's tag.
        tag: u32,
        /// The announced size.
        size: u64,
        /// Where the value starts.
        offset: usize,
    },
    /// The API has no request schema (every served API has one; see the unit tests).
    #[error("no request schema")]
    NoSchema,
}

/// Walks the request body `body` of `key` at `version` (the frame after its request header)
/// and checks every count and length against the bytes that remain. Returns the bytes the
/// body's fields take (the decoder ignores any that follow).
pub fn check_body(key: ApiKey, version: i16, body: &[u8]) -> Result<usize, BoundsError> {
    walk(key, version, body, true)
}

/// [`check_body`] with `whole_elements` off: every element walked field by field (tests
/// compare the two).
fn walk(
    key: ApiKey,
    version: i16,
    body: &[u8],
    whole_elements: bool,
) -> Result<usize, BoundsError> {
    let (flexible, fields) = schema::message(key).ok_or(BoundsError::NoSchema)?;
    let mut walker = Walker {
        buf: body,
        pos: 0,
        end: body.len(),
        version,
        flexible: version >= flexible,
        whole_elements,
    };
    walker.fields(fields)?;
    Ok(walker.pos)
}

/// Reads an unsigned varint from the front of `buf` as kafka-protocol's decoder does: at most
/// 5 bytes, bits beyond 32 dropped. Returns the value and the bytes it took, or `None` when
/// `buf` ends first.
pub(crate) fn read_uvarint(buf: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, &b) in buf.iter().take(5).enumerate() {
        value |= (u32::from(b) & 0x7f) << (i * 7);
        if b < 0x80 || i == 4 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A cursor over a body; `end` is lowered while inside a known tagged field.
struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    version: i16,
    flexible: bool,
    /// Skip array elements of only fixed-width fields whole (see [`Walker::value`]).
    whole_elements: bool,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], BoundsError> {
        if n > self.remaining() {
            return Err(BoundsError::Truncated { offset: self.pos });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), BoundsError> {
        self.take(n).map(|_| ())
    }

    /// An unsigned varint as the decoder reads it ([`read_uvarint`]).
    fn uvarint(&mut self) -> Result<u32, BoundsError> {
        let (value, len) = read_uvarint(&self.buf[self.pos..self.end])
            .ok_or(BoundsError::Truncated { offset: self.end })?;
        self.pos += len;
        Ok(value)
    }

    /// The fields present at this version, then (flexible versions) the tagged-field section.
    fn fields(&mut self, fields: &[Field]) -> Result<(), BoundsError> {
        for field in fields {
            if field.tag.is_none() && field.present(self.version) {
                self.value(field.ty)?;
            }
        }
        if self.flexible {
            self.tagged_fields(fields)?;
        }
        Ok(())
    }

    fn value(&mut self, ty: Ty) -> Result<(), BoundsError> {
        match ty {
            Ty::Fixed(width) => self.skip(usize::from(width)),
            Ty::Str => match self.length(What::String)? {
                Some(len) => self.skip(len),
                None => Ok(()),
            },
            Ty::Bytes => match self.length(What::Bytes)? {
                Some(len) => self.skip(len),
                None => Ok(()),
            },
            Ty::Struct(fields) => self.fields(fields),
            // As the decoder: the struct follows only a marker of exactly 1.
            Ty::OptStruct(fields) => match self.take(1)?[0] {
                1 => self.fields(fields),
                _ => Ok(()),
            },
            Ty::Array(elem) => {
                let Some(count) = self.length(What::Array)? else {
                    return Ok(());
                };
                // Elements whose regular fields at this version are all fixed-width (a
                // fetch's partitions): one skip each, then their tagged-field section. An
                // element cut short is walked field by field, so the error is the same.
                if let Ty::Struct(fields) = elem
                    && self.whole_elements
                    && let Some(width) = fixed_width(fields, self.version)
                {
                    for _ in 0..count {
                        if self.remaining() < width {
                            return self.fields(fields);
                        }
                        self.skip(width)?;
                        if self.flexible {
                            self.tagged_fields(fields)?;
                        }
                    }
                    return Ok(());
                }
                for _ in 0..count {
                    self.value(*elem)?;
                }
                Ok(())
            }
        }
    }

    /// Reads a length or count prefix (INT16 for strings, INT32 otherwise; in flexible
    /// versions an unsigned varint holding the value + 1) and checks it against the bytes left
    /// after it. `None` is null.
    fn length(&mut self, what: What) -> Result<Option<usize>, BoundsError> {
        let offset = self.pos;
        let len = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if what == What::String {
            let b = self.take(2)?;
            i64::from(i16::from_be_bytes([b[0], b[1]]))
        } else {
            let b = self.take(4)?;
            i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if len == -1 {
            return Ok(None);
        }
        let Ok(len) = u64::try_from(len) else {
            return Err(BoundsError::Negative { what, len, offset });
        };
        self.bounded(what, len, offset).map(Some)
    }

    /// Checks that `len` (announced at `offset`) fits in the bytes that remain.
    fn bounded(&self, what: What, len: u64, offset: usize) -> Result<usize, BoundsError> {
        let remaining = self.remaining();
        match usize::try_from(len) {
            Ok(n) if n <= remaining => Ok(n),
            _ => Err(BoundsError::TooLong {
                what,
                len,
                remaining,
                offset,
            }),
        }
    }

    /// A tagged-field section (KIP-482): a count, then per field its tag, size and value.
    /// Tags `fields` declares for this version are walked by type and must fill their size;
    /// the others are skipped by it.
    fn tagged_fields(&mut self, fields: &[Field]) -> Result<(), BoundsError> {
        let offset = self.pos;
        let count = self.uvarint()?;
        self.bounded(What::TaggedFields, count.into(), offset)?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let at = self.pos;
            let size = self.uvarint()?;
            let known = fields
                .iter()
                .find(|f| f.tag == Some(tag) && f.present(self.version));
            let Some(field) = known else {
                let size = self.bounded(What::TaggedField, size.into(), at)?;
                self.skip(size)?;
                continue;
            };
            let start = self.pos;
            let mismatch = BoundsError::TagSize {
                tag,
                size: size.into(),
                offset: start,
            };
            let Ok(size) = self.bounded(What::TaggedField, size.into(), at) else {
                return Err(mismatch);
            };
            let end = std::mem::replace(&mut self.end, start + size);
            let walked = self.value(field.ty);
            let filled = self.pos == self.end;
            self.end = end;
            if walked.is_err() || !filled {
                return Err(mismatch);
            }
        }
        Ok(())
    }
}
