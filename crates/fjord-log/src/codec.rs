//! Decompression of record batches, for the places that must see individual records of a
//! compressed batch: validation on produce (streamed, see the `reader` module), timestamp lookups and
//! key checks. Batches are stored and served as the producer compressed them.
//!
//! Codecs as Kafka frames them: gzip streams, Snappy either raw or in the xerial framing the
//! Java client writes, LZ4 frames, and zstd frames.

use std::io::Read;

use crate::error::BatchError;

/// Largest decompressed size accepted: a batch that inflates beyond it is treated as
/// invalid rather than allowed to exhaust memory (a decompression bomb).
pub const MAX_DECOMPRESSED: usize = 256 << 20;

/// xerial Snappy stream magic, followed by two 4-byte version fields.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";

/// Decompresses the records section of a batch compressed with `codec`
/// (1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub fn decompress(codec: u8, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let fail = |what: &str| BatchError::InvalidRecord {
        reason: format!("cannot decompress {what} batch"),
    };
    match codec {
        1 => read_bounded(flate2::read::MultiGzDecoder::new(data)).map_err(|_| fail("gzip")),
        2 => snappy(data).ok_or_else(|| fail("snappy")),
        3 => read_bounded(lz4_flex::frame::FrameDecoder::new(data)).map_err(|_| fail("lz4")),
        4 => {
            let decoder =
                ruzstd::decoding::StreamingDecoder::new(data).map_err(|_| fail("zstd"))?;
            read_bounded(decoder).map_err(|_| fail("zstd"))
        }
        other => Err(BatchError::InvalidRecord {
            reason: format!("unknown compression codec {other}"),
        }),
    }
}

/// Kafka's name of a codec number.
pub(crate) fn name(codec: u8) -> &'static str {
    match codec {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}

/// A reader of the decompressed records section of a batch compressed with `codec`. gzip,
/// LZ4 and zstd are streamed, so memory stays at the decoder's window however far the batch
/// inflates; Snappy, whose output is at most about 22 times its input, is decompressed at once.
pub(crate) fn reader<'a>(codec: u8, data: &'a [u8]) -> Result<Box<dyn Read + 'a>, BatchError> {
    let fail = |what: &str| BatchError::InvalidRecord {
        reason: format!("cannot decompress {what} batch"),
    };
    Ok(match codec {
        1 => Box::new(flate2::read::MultiGzDecoder::new(data)),
        2 => Box::new(std::io::Cursor::new(
            snappy(data).ok_or_else(|| fail("snappy"))?,
        )),
        3 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        4 => Box::new(ruzstd::decoding::StreamingDecoder::new(data).map_err(|_| fail("zstd"))?),
        other => {
            return Err(BatchError::InvalidRecord {
                reason: format!("unknown compression codec {other}"),
            });
        }
    })
}

fn read_bounded(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(std::io::Error::other("decompressed batch too large"));
    }
    Ok(out)
}

fn snappy(data: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = snap::raw::Decoder::new();
    let Some(mut rest) = data.strip_prefix(XERIAL_MAGIC.as_slice()) else {
        if snap::raw::decompress_len(data).ok()? > MAX_DECOMPRESSED {
            return None;
        }
        return decoder.decompress_vec(data).ok();
    };
    rest = rest.get(8..)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let block = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        if out.len() + snap::raw::decompress_len(block).ok()? > MAX_DECOMPRESSED {
            return None;
        }
        out.extend(decoder.decompress_vec(block).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"fjord fjord fjord records records records";

    #[test]
    fn gzip_and_lz4_round_trip() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        assert_eq!(decompress(1, &gz.finish().unwrap()).unwrap(), TEXT);
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(TEXT).unwrap();
        assert_eq!(decompress(3, &lz.finish().unwrap()).unwrap(), TEXT);
    }

    #[test]
    fn snappy_raw_and_xerial() {
        let block = snap::raw::Encoder::new().compress_vec(TEXT).unwrap();
        assert_eq!(decompress(2, &block).unwrap(), TEXT);
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend([0, 0, 0, 1, 0, 0, 0, 1]);
        for half in [&TEXT[..10], &TEXT[10..]] {
            let b = snap::raw::Encoder::new().compress_vec(half).unwrap();
            framed.extend((b.len() as u32).to_be_bytes());
            framed.extend(b);
        }
        assert_eq!(decompress(2, &framed).unwrap(), TEXT);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in 1..=4 {
            assert!(
                decompress(codec, b"\x00\x01garbage").is_err(),
                "codec {codec}"
            );
        }
        assert!(decompress(9, b"").is_err());
    }
}
