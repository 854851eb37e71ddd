//! Chunk planning: given where each data record starts (byte offset and physical line, as a
//! real CSV parser reports them), cut the file into record-aligned byte ranges of about
//! `target_bytes`. A record never straddles two chunks, whatever commas or newlines its
//! quoted fields hold, because boundaries are only ever placed at record starts.

use serde::{Deserialize, Serialize};

/// The most bytes one chunk may span: `chunk_bytes` plus the widest record allowed (every
/// field at `max_field_bytes`, with quotes and a delimiter each) plus 64 KiB for blank lines
/// between records. The validator rejects a file whose open chunk would grow past it (a run
/// of blank lines, a record of nothing but delimiters), and the database consumer refuses a
/// chunk item whose range is wider, before it reads or allocates a byte.
pub fn max_chunk_span(chunk_bytes: u64, max_field_bytes: u64, fields: u64) -> u64 {
    let widest_record = max_field_bytes.saturating_add(3).saturating_mul(fields.max(1));
    chunk_bytes.saturating_add(widest_record).saturating_add(64 * 1024)
}

/// One chunk: the half-open byte range `[start, end)` of whole records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPlan {
    /// 0-based chunk number within the file.
    pub number: u32,
    pub start: u64,
    pub end: u64,
    /// 1-based physical line on which the chunk's first record starts.
    pub first_line: u64,
    /// Records in the chunk.
    pub records: u64,
}

/// Accumulates record starts and emits chunk plans as they close (it keeps only the open
/// one: the caller keeps what it needs of the closed ones).
#[derive(Debug)]
pub struct ChunkPlanner {
    target_bytes: u64,
    closed: u32,
    open: Option<ChunkPlan>,
}

impl ChunkPlanner {
    pub fn new(target_bytes: u64) -> ChunkPlanner {
        ChunkPlanner {
            target_bytes: target_bytes.max(1),
            closed: 0,
            open: None,
        }
    }

    /// Records that a data record starts at `byte` on physical `line`. Calls must be in
    /// file order. Returns the chunk this record closed, if it starts a new one.
    pub fn record(&mut self, byte: u64, line: u64) -> Option<ChunkPlan> {
        match &mut self.open {
            Some(chunk) if byte - chunk.start < self.target_bytes => {
                chunk.records += 1;
                None
            }
            open => {
                let number = self.closed + u32::from(open.is_some());
                let closed = open.take().map(|mut full| {
                    full.end = byte;
                    full
                });
                self.closed += u32::from(closed.is_some());
                *open = Some(ChunkPlan {
                    number,
                    start: byte,
                    end: byte,
                    first_line: line,
                    records: 1,
                });
                closed
            }
        }
    }

    /// Where the open chunk starts, if any.
    pub fn open_start(&self) -> Option<u64> {
        self.open.map(|c| c.start)
    }

    /// Closes the open chunk, if any, at `end_byte` (the file's size) and returns it.
    pub fn finish(self, end_byte: u64) -> Option<ChunkPlan> {
        self.open.map(|mut last| {
            last.end = end_byte;
            last
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_may_span_its_target_plus_the_widest_record_allowed() {
        assert_eq!(max_chunk_span(1000, 10, 2), 1000 + 26 + 65_536);
        assert_eq!(max_chunk_span(1000, 10, 0), 1000 + 13 + 65_536, "at least one field");
        assert_eq!(max_chunk_span(u64::MAX, u64::MAX, 9), u64::MAX, "never overflows");
    }

    #[test]
    fn no_records_means_no_chunks() {
        assert!(ChunkPlanner::new(10).finish(100).is_none());
    }

    #[test]
    fn records_are_grouped_until_a_chunk_reaches_the_target_size() {
        let mut p = ChunkPlanner::new(10);
        let mut closed = Vec::new();
        for (i, byte) in [5u64, 9, 14, 16, 30].iter().enumerate() {
            closed.extend(p.record(*byte, i as u64 + 2));
        }
        assert_eq!(closed.iter().map(|c| c.number).collect::<Vec<_>>(), vec![0, 1]);
        let chunks: Vec<ChunkPlan> = closed.into_iter().chain(p.finish(40)).collect();
        assert_eq!(
            chunks,
            vec![
                ChunkPlan {
                    number: 0,
                    start: 5,
                    end: 16,
                    first_line: 2,
                    records: 3
                },
                ChunkPlan {
                    number: 1,
                    start: 16,
                    end: 30,
                    first_line: 5,
                    records: 1
                },
                ChunkPlan {
                    number: 2,
                    start: 30,
                    end: 40,
                    first_line: 6,
                    records: 1
                },
            ]
        );
    }

    #[test]
    fn chunks_tile_the_data_without_gaps() {
        let mut p = ChunkPlanner::new(7);
        let mut chunks = Vec::new();
        for b in (3..200).step_by(3) {
            chunks.extend(p.record(b, b));
        }
        chunks.extend(p.finish(202));
        assert_eq!(chunks[0].start, 3);
        assert_eq!(chunks.last().unwrap().end, 202);
        for w in chunks.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        assert_eq!(chunks.iter().map(|c| c.records).sum::<u64>(), 66);
    }
}
