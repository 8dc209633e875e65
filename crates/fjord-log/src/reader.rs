//! Positional, chunked reading of segment files (`&File` only, so reads need no `&mut`).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::batch::{BATCH_HEADER_LEN, BatchHeader};
use crate::error::LogError;

/// Chunk size for walking batch headers.
pub(crate) const HEADER_CHUNK: usize = 16 * 1024;
/// Chunk size for recovery scans, which read every byte.
pub(crate) const SCAN_CHUNK: usize = 256 * 1024;

/// Reads byte ranges of a file through a buffer filled `chunk` bytes at a time, never past `end`.
pub(crate) struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    end: u64,
    chunk: usize,
    buf: Vec<u8>,
    buf_start: u64,
}

#[cfg(test)]
thread_local! {
    /// Bytes chunk readers on this thread have read from files (for tests of how much a walk
    /// copies).
    static BYTES_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Bytes chunk readers on this thread have read from files so far.
#[cfg(test)]
pub(crate) fn bytes_read_here() -> u64 {
    BYTES_READ.with(|b| b.get())
}

impl<'a> ChunkReader<'a> {
    /// A reader of `file` (named `path` in errors) limited to bytes before `end`.
    pub fn new(file: &'a File, path: &'a Path, end: u64, chunk: usize) -> Self {
        ChunkReader {
            file,
            path,
            end,
            chunk,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// The readable length.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Sets how much later reads fetch at least (a read still covers what it is asked for).
    pub fn set_chunk(&mut self, chunk: usize) {
        self.chunk = chunk;
    }

    /// Returns the `len` bytes at `pos`, or `None` when they extend past the end.
    pub fn slice(&mut self, pos: u64, len: usize) -> Result<Option<&[u8]>, LogError> {
        let Some(stop) = pos.checked_add(len as u64) else {
            return Ok(None);
        };
        if stop > self.end {
            return Ok(None);
        }
        let buffered_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || stop > buffered_end {
            let want = (len.max(self.chunk) as u64).min(self.end - pos) as usize;
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, pos)
                .map_err(LogError::io("read", self.path))?;
            self.buf_start = pos;
            #[cfg(test)]
            BYTES_READ.with(|b| b.set(b.get() + want as u64));
        }
        let from = (pos - self.buf_start) as usize;
        Ok(Some(&self.buf[from..from + len]))
    }
}

/// Reads `len` bytes at `pos` of `file` into a new buffer.
pub(crate) fn read_exact(
    file: &File,
    path: &Path,
    pos: u64,
    len: usize,
) -> Result<Vec<u8>, LogError> {
    crate::io::read_exact_at(file, pos, len).map_err(LogError::io("read", path))
}

/// Iterates `(position, header)` of the batches of a segment from a batch boundary on, reading
/// headers only. Data that does not parse is reported as [`LogError::Corrupt`].
pub(crate) struct HeaderWalker<'a> {
    reader: ChunkReader<'a>,
    pos: u64,
    failed: bool,
}

impl<'a> HeaderWalker<'a> {
    /// Walks `file` (logical length `end`) starting at the batch boundary `pos`.
    pub fn new(file: &'a File, path: &'a Path, end: u64, pos: u64) -> Self {
        HeaderWalker {
            // The first read takes the first header alone: the walk does not know yet whether
            // the batches are small enough for a chunk to hold several (see `step`).
            reader: ChunkReader::new(file, path, end, BATCH_HEADER_LEN),
            pos,
            failed: false,
        }
    }

    fn step(&mut self) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let pos = self.pos;
        if pos >= self.reader.end() {
            return Ok(None);
        }
        let path = self.reader.path;
        let corrupt = |reason: String| LogError::Corrupt {
            path: path.to_path_buf(),
            position: pos,
            reason,
        };
        let bytes = self
            .reader
            .slice(pos, BATCH_HEADER_LEN)?
            .ok_or_else(|| corrupt("torn batch header".into()))?;
        let header = BatchHeader::parse(bytes).map_err(|e| corrupt(e.to_string()))?;
        let next = pos + header.total_len() as u64;
        if next > self.reader.end() {
            return Err(corrupt("batch extends past the end of the segment".into()));
        }
        // The next header is as far as this batch is long. Past a chunk's reach, a full chunk
        // would copy that many bytes of records to use only the header's 61 (a fetch through
        // 1 MB batches read 16 KiB per header), so the read after a large batch takes the
        // header alone; after a small one, a chunk that holds the next several.
        self.reader
            .set_chunk(if header.total_len() >= HEADER_CHUNK {
                BATCH_HEADER_LEN
            } else {
                HEADER_CHUNK
            });
        self.pos = next;
        Ok(Some((pos, header)))
    }
}

impl Iterator for HeaderWalker<'_> {
    type Item = Result<(u64, BatchHeader), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.step().transpose();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::build_batch;
    use std::io::Write;

    #[test]
    fn a_header_walk_reads_only_the_header_after_a_large_batch() -> Result<(), LogError> {
        let big = vec![7u8; 40 * 1024];
        let small = [1u8; 100];
        let mut file = tempfile::tempfile().map_err(LogError::io("create", Path::new("t")))?;
        let mut expected = Vec::new();
        let mut pos = 0u64;
        for i in 0..23i64 {
            let value: &[u8] = if i < 3 { &big } else { &small };
            let batch = build_batch(i, &[(None, Some(value), 0)]);
            expected.push((pos, i));
            pos += batch.len() as u64;
            file.write_all(&batch)
                .map_err(LogError::io("write", Path::new("t")))?;
        }
        let path = Path::new("t");
        let before = bytes_read_here();
        let mut walker = HeaderWalker::new(&file, path, pos, 0);
        let mut seen = Vec::new();
        for item in walker.by_ref() {
            let (at, h) = item?;
            seen.push((at, h.last_offset()));
        }
        assert_eq!(seen, expected);
        // The headers of batches 0-3 alone, then one chunk for the rest of the 20 small
        // batches: under 4 KiB. A 16 KiB chunk per large batch would read over 48 KiB.
        let read = bytes_read_here() - before;
        assert!(read < 4 * 1024, "read {read} bytes");
        Ok(())
    }
}
