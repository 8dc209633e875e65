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
            reader: ChunkReader::new(file, path, end, HEADER_CHUNK),
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
