//! The metadata log on disk and the published image.
//!
//! Format: one JSON object per line, appended and fsynced before the change is applied, so a
//! change a client saw succeed survives a crash. A torn last line (a crash mid-write) is cut
//! off at open; damage anywhere else is an error, since silently dropping a committed change
//! would be worse than refusing to start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::{MetadataImage, MetadataRecord};

/// A failure of the metadata log.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Reading or writing the log failed.
    #[error("metadata log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record in the middle of the log does not parse.
    #[error("metadata log {path}: record {index} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Zero-based record index.
        index: usize,
        /// Parser message.
        reason: String,
    },
}

/// Appends metadata records and publishes the resulting image.
pub struct MetadataStore {
    path: PathBuf,
    file: Mutex<File>,
    image: RwLock<Arc<MetadataImage>>,
}

impl MetadataStore {
    /// Opens (or creates) `<dir>/metadata.log` and replays it.
    pub fn open(dir: &Path) -> Result<MetadataStore, MetadataError> {
        let path = dir.join("metadata.log");
        let io = |source| MetadataError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io)?;
        let mut image = MetadataImage::empty();
        let mut good_len = 0usize;
        let mut pos = 0usize;
        let mut index = 0usize;
        while pos < text.len() {
            let end = text[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| pos + i);
            let line = &text[pos..end.unwrap_or(text.len())];
            match (serde_json::from_slice::<MetadataRecord>(line), end) {
                (Ok(record), Some(end)) => {
                    image.apply(&record);
                    good_len = end + 1;
                    pos = end + 1;
                    index += 1;
                }
                // The last line, without its newline: a torn write. Cut it off.
                (_, None) => break,
                (Err(e), Some(_)) => {
                    return Err(MetadataError::Corrupt {
                        path,
                        index,
                        reason: e.to_string(),
                    });
                }
            }
        }
        if good_len < text.len() {
            tracing::warn!(path = %path.display(), kept = good_len, dropped = text.len() - good_len, "truncating torn metadata log tail");
            file.set_len(good_len as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(MetadataStore {
            path,
            file: Mutex::new(file),
            image: RwLock::new(Arc::new(image)),
        })
    }

    /// Returns the current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        match self.image.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Durably appends `records` and applies them; returns the new image.
    ///
    /// Callers validate against the current image first and hold the broker's admin lock, so
    /// two changes never interleave.
    pub fn commit(&self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>, MetadataError> {
        let io = |source| MetadataError::Io {
            path: self.path.clone(),
            source,
        };
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| io(std::io::Error::other(e)))?;
            buf.push(b'\n');
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&buf).map_err(io)?;
        file.sync_data().map_err(io)?;
        let mut guard = self.image.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        for r in records {
            next.apply(r);
        }
        let next = Arc::new(next);
        *guard = Arc::clone(&next);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = MetadataStore::open(dir.path()).unwrap();
            store
                .commit(&[MetadataRecord::ProducerIds { next: 1000 }])
                .unwrap();
            store
                .commit(&[MetadataRecord::ProducerIds { next: 2000 }])
                .unwrap();
        }
        let path = dir.path().join("metadata.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"type\":\"producer_ids\",\"ne").unwrap();
        drop(f);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image().next_producer_id(), 2000);
        store
            .commit(&[MetadataRecord::ProducerIds { next: 3000 }])
            .unwrap();
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image().next_producer_id(), 3000);
        assert_eq!(store.image().last_applied, 2);
    }

    #[test]
    fn corrupt_middle_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("metadata.log"),
            "garbage\n{\"type\":\"producer_ids\",\"next\":1}\n",
        )
        .unwrap();
        assert!(matches!(
            MetadataStore::open(dir.path()),
            Err(MetadataError::Corrupt { index: 0, .. })
        ));
    }
}
