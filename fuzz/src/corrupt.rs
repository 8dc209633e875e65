//! File corruptions for the `log_recovery` target, and a record of what they may have broken.
//!
//! A corruption names a file by class and segment (counted from the last, the active one,
//! modulo the number of segments the log had when it was closed), then an operation. Each is
//! encoded as `target u8 | op u8 | operands`; see [`Op`]. Missing files read as empty, so writes to a
//! deleted file create it again.
//!
//! [`Touched`] keeps what the corruptions could have done that recovery cannot detect, so the
//! checker knows which of its strict invariants still hold: CRC-32C covers a batch from its
//! `attributes` field on, so a changed base offset, another batch copied over a batch from
//! its length field on, and data cut at a batch boundary in the middle of the log all look
//! valid; and bytes written by the fuzzer could in principle form a batch with a correct CRC.

use std::ops::Range;
use std::path::{Path, PathBuf};

use fjord_log::{BATCH_HEADER_LEN, BatchHeader};

use crate::input::Input;

/// Bytes at the start of a batch that its CRC-32C does not cover.
const UNCHECKED_HEADER: u64 = 21;

/// Most corruptions applied to one log.
pub const MAX_CORRUPTIONS: usize = 8;

/// The files a corruption can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `<base>.log`.
    Log,
    /// `<base>.index`.
    Index,
    /// `<base>.timeindex`.
    TimeIndex,
    /// `recovery-point`.
    RecoveryPoint,
    /// `log-start-offset`.
    LogStart,
    /// `clean-shutdown`.
    CleanShutdown,
}

const CLASSES: [Class; 6] = [
    Class::Log,
    Class::Index,
    Class::TimeIndex,
    Class::RecoveryPoint,
    Class::LogStart,
    Class::CleanShutdown,
];

/// What a corruption does to its file (`len` is the file's current length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `0 | pos u16 | bit u8`: flips bit `bit % 8` of byte `pos % len`.
    FlipBit { pos: u16, bit: u8 },
    /// `1 | pos u16 | n u8 | n % 17 bytes`: writes the bytes at `pos % (len + 1)`.
    Overwrite { pos: u16, data: Vec<u8> },
    /// `2 | to u16`: cuts the file to `to % (len + 1)` bytes.
    Truncate { to: u16 },
    /// `3 | n u8 | n % 65 bytes`: appends the bytes.
    Append { data: Vec<u8> },
    /// `4`: deletes the file.
    Delete,
    /// `5 | value i64`: replaces the contents with `"{value}\n"` (how checkpoints look).
    WriteNumber { value: i64 },
    /// `6 | pos u16 | n u8`: zeroes `n` bytes from `pos % (len + 1)` (not past the end).
    Zero { pos: u16, n: u8 },
    /// `7 | src u16 | dst u16 | n u16`: copies up to `n % 512` bytes from `src % (len + 1)` to
    /// `dst % (len + 1)`, extending the file if needed (a misdirected write).
    Copy { src: u16, dst: u16, n: u16 },
}

impl Op {
    fn read(input: &mut Input<'_>) -> Op {
        match input.u8() % 8 {
            0 => Op::FlipBit {
                pos: input.u16(),
                bit: input.u8(),
            },
            1 => {
                let pos = input.u16();
                let n = usize::from(input.u8() % 17);
                Op::Overwrite {
                    pos,
                    data: input.bytes(n).to_vec(),
                }
            }
            2 => Op::Truncate { to: input.u16() },
            3 => {
                let n = usize::from(input.u8() % 65);
                Op::Append {
                    data: input.bytes(n).to_vec(),
                }
            }
            4 => Op::Delete,
            5 => Op::WriteNumber { value: input.i64() },
            6 => Op::Zero {
                pos: input.u16(),
                n: input.u8(),
            },
            _ => Op::Copy {
                src: input.u16(),
                dst: input.u16(),
                n: input.u16(),
            },
        }
    }

    /// Appends the encoding of `self` (after the target byte) to `out`; for seeds.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::FlipBit { pos, bit } => {
                out.push(0);
                out.extend(pos.to_be_bytes());
                out.push(*bit);
            }
            Op::Overwrite { pos, data } => {
                out.push(1);
                out.extend(pos.to_be_bytes());
                out.push(data.len() as u8);
                out.extend(data);
            }
            Op::Truncate { to } => {
                out.push(2);
                out.extend(to.to_be_bytes());
            }
            Op::Append { data } => {
                out.push(3);
                out.push(data.len() as u8);
                out.extend(data);
            }
            Op::Delete => out.push(4),
            Op::WriteNumber { value } => {
                out.push(5);
                out.extend(value.to_be_bytes());
            }
            Op::Zero { pos, n } => {
                out.push(6);
                out.extend(pos.to_be_bytes());
                out.push(*n);
            }
            Op::Copy { src, dst, n } => {
                out.push(7);
                out.extend(src.to_be_bytes());
                out.extend(dst.to_be_bytes());
                out.extend(n.to_be_bytes());
            }
        }
    }
}

/// The target byte for `class` of the segment `from_last` places before the active one.
pub fn target_byte(class: Class, from_last: u8) -> u8 {
    let c = CLASSES.iter().position(|&c| c == class).unwrap_or(0) as u8;
    from_last % 42 * CLASSES.len() as u8 + c
}

/// A segment as it was before corruption: its base offset and where its batches start.
#[derive(Debug, Clone)]
pub struct SegmentLayout {
    /// File name stem (the zero-padded base offset).
    pub stem: String,
    /// Byte positions of the batches in the `.log` file.
    pub batch_starts: Vec<u64>,
}

/// The stems (zero-padded base offsets) of the segment files in `dir`, in order.
fn segment_stems(dir: &Path) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .expect("list log dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log").map(str::to_owned)
        })
        .collect();
    stems.sort();
    stems
}

/// The segments in `dir` and where their batches start.
pub fn layout(dir: &Path) -> Vec<SegmentLayout> {
    segment_stems(dir)
        .into_iter()
        .map(|stem| {
            let data = std::fs::read(dir.join(format!("{stem}.log"))).expect("read segment");
            let mut batch_starts = Vec::new();
            let mut pos = 0;
            while pos + BATCH_HEADER_LEN <= data.len() {
                let h = BatchHeader::parse(&data[pos..]).expect("a built segment parses");
                batch_starts.push(pos as u64);
                pos += h.total_len();
            }
            SegmentLayout { stem, batch_starts }
        })
        .collect()
}

/// The segments (file stems) that [`Log::open`] will load without re-reading them: all of
/// them after a clean shutdown, else those before the one containing the recovery point.
pub fn trusted_segments(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut stems = segment_stems(dir);
    if dir.join("clean-shutdown").exists() {
        return stems.into_iter().collect();
    }
    // Read as the log reads it: a non-negative decimal number, anything else counts as 0.
    let point = std::fs::read(dir.join("recovery-point"))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.trim().parse::<i64>().ok())
        .filter(|&p| p >= 0)
        .unwrap_or(0);
    let bases: Vec<i64> = stems
        .iter()
        .map(|s| s.parse().unwrap_or(i64::MAX))
        .collect();
    let first_recovered = bases.partition_point(|&b| b <= point).saturating_sub(1);
    stems.truncate(first_recovered);
    stems.into_iter().collect()
}

/// What the corruptions may have done beyond what recovery detects by CRC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Segments (file stems) whose log, offset index or time index file was changed.
    pub segments: std::collections::BTreeSet<String>,
    /// Bytes were written over the part of a batch's header outside the CRC (base offset,
    /// length, epoch, magic, the CRC itself): another batch's contents from there on, copied
    /// over it, make a valid batch at the first one's offsets, or a batch may be given other
    /// offsets.
    pub offsets: bool,
    /// A `.log` file other than the last was cut or deleted (offsets may have gaps).
    pub gaps: bool,
    /// A `.log` file was deleted (the log may now start later).
    pub deleted_log: bool,
    /// Fuzzer bytes were written into a `.log` file (they might form a valid batch).
    pub raw_log_bytes: bool,
    /// The log start offset checkpoint was changed.
    pub log_start: bool,
    /// The recovery point checkpoint was changed.
    pub recovery_point: bool,
}

/// Reads and applies corruptions from `input` until it is exhausted (at most
/// [`MAX_CORRUPTIONS`]) to the log in `dir` whose segments were `layout`.
pub fn apply_all(input: &mut Input<'_>, dir: &Path, layout: &[SegmentLayout]) -> Touched {
    let mut touched = Touched::default();
    for _ in 0..MAX_CORRUPTIONS {
        if input.is_empty() || layout.is_empty() {
            break;
        }
        let target = input.u8();
        let op = Op::read(input);
        let class = CLASSES[usize::from(target) % CLASSES.len()];
        let segment = layout.len() - 1 - usize::from(target) / CLASSES.len() % layout.len();
        let seg = &layout[segment];
        let path = path_of(dir, class, &seg.stem);
        if crate::tracing() {
            eprintln!("corrupt {}: {op:?}", path.display());
        }
        let effect = apply(&path, &op);
        match class {
            Class::Log => {
                touched.segments.insert(seg.stem.clone());
                let last = segment + 1 == layout.len();
                if let Some(written) = &effect.written {
                    touched.offsets |= seg
                        .batch_starts
                        .iter()
                        .any(|&p| written.start < p + UNCHECKED_HEADER && p < written.end);
                }
                touched.raw_log_bytes |= matches!(op, Op::Overwrite { .. } | Op::Append { .. });
                touched.deleted_log |= effect.deleted;
                touched.gaps |= !last && (effect.deleted || effect.shortened);
            }
            Class::Index | Class::TimeIndex => {
                touched.segments.insert(seg.stem.clone());
            }
            Class::RecoveryPoint => touched.recovery_point = true,
            Class::LogStart => touched.log_start = true,
            Class::CleanShutdown => {}
        }
    }
    touched
}

fn path_of(dir: &Path, class: Class, stem: &str) -> PathBuf {
    match class {
        Class::Log => dir.join(format!("{stem}.log")),
        Class::Index => dir.join(format!("{stem}.index")),
        Class::TimeIndex => dir.join(format!("{stem}.timeindex")),
        Class::RecoveryPoint => dir.join("recovery-point"),
        Class::LogStart => dir.join("log-start-offset"),
        Class::CleanShutdown => dir.join("clean-shutdown"),
    }
}

/// What one operation did to its file.
#[derive(Debug, Default)]
struct Effect {
    /// Byte range written (for offset-field tracking).
    written: Option<Range<u64>>,
    deleted: bool,
    shortened: bool,
}

fn apply(path: &Path, op: &Op) -> Effect {
    let mut data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let len = data.len();
    let wrap = |x: u16, m: usize| usize::from(x) % m;
    let mut effect = Effect::default();
    let write_at = |data: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        let end = at + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[at..end].copy_from_slice(bytes);
        Some(at as u64..end as u64)
    };
    match op {
        Op::FlipBit { pos, bit } => {
            if len == 0 {
                return effect;
            }
            let at = wrap(*pos, len);
            data[at] ^= 1 << (bit % 8);
            effect.written = Some(at as u64..at as u64 + 1);
        }
        Op::Overwrite { pos, data: bytes } => {
            effect.written = write_at(&mut data, wrap(*pos, len + 1), bytes);
        }
        Op::Truncate { to } => {
            let to = wrap(*to, len + 1);
            effect.shortened = to < len;
            data.truncate(to);
        }
        Op::Append { data: bytes } => effect.written = write_at(&mut data, len, bytes),
        Op::Delete => {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    panic!("cannot delete {}: {e}", path.display())
                }
                _ => {}
            }
            effect.deleted = true;
            return effect;
        }
        Op::WriteNumber { value } => {
            effect.shortened = true;
            data = format!("{value}\n").into_bytes();
            effect.written = Some(0..data.len() as u64);
        }
        Op::Zero { pos, n } => {
            let at = wrap(*pos, len + 1);
            let end = (at + usize::from(*n)).min(len);
            data[at..end].fill(0);
            effect.written = Some(at as u64..end as u64);
        }
        Op::Copy { src, dst, n } => {
            let src = wrap(*src, len + 1);
            let end = (src + usize::from(*n % 512)).min(len);
            let chunk = data[src..end].to_vec();
            effect.written = write_at(&mut data, wrap(*dst, len + 1), &chunk);
        }
    }
    std::fs::write(path, &data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    effect
}
