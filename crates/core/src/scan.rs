//! The record scanner: a CSV state machine (csv-core's, which the csv and csv-async crates
//! wrap) fed with blocks of bytes, reporting every record with its exact byte span, the
//! physical line it starts on, and its fields.
//!
//! Why not csv/csv-async positions: their line numbers skip the newlines of blank lines and
//! count CRLF inconsistently, so they cannot name the line a person sees in an editor. Here a
//! line break is `\n`, `\r\n` or a lone `\r`, and a record's line is the line of its first
//! byte. The chunker (streaming a whole object) and the database consumer (one chunk in
//! memory) both use this scanner, so they agree on record boundaries by construction.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

use crate::spec::CsvDialect;

/// One record, borrowed from the scanner until the callback returns.
pub struct Record<'a> {
    /// Absolute byte offset of the record's first byte.
    pub start: u64,
    /// Absolute byte offset just past the record's terminator (or the end of input).
    pub end: u64,
    /// 1-based physical line of the record's first byte.
    pub line: u64,
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    /// Field `i`'s unquoted bytes.
    pub fn field(&self, i: usize) -> &'a [u8] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[from..self.ends[i]]
    }
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(|i| self.field(i))
    }
    /// All field bytes back to back (for a cheap whole-record UTF-8 check).
    pub fn data(&self) -> &'a [u8] {
        &self.data[..self.ends.last().copied().unwrap_or(0)]
    }
}

/// Where the byte stream stands relative to quotes, mirrored beside csv-core (which does not
/// expose its state) to tell an unterminated quote at the end of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Incremental record scanner; see the module docs.
pub struct RecordScanner {
    core: Reader,
    delimiter: u8,
    quote: u8,
    quote_state: QuoteState,
    /// True unless the scanner starts at the very beginning of a file: csv-core strips a
    /// byte order mark from its first input, which is only right at the start of a file.
    protect_bom: bool,
    fed: bool,
    offset: u64,
    line: u64,
    after_cr: bool,
    in_record: bool,
    record_start: u64,
    record_line: u64,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    finished: bool,
}

impl RecordScanner {
    /// A scanner whose first input byte sits at `offset` on physical line `line`.
    pub fn new(dialect: &CsvDialect, offset: u64, line: u64) -> RecordScanner {
        RecordScanner {
            core: ReaderBuilder::new()
                .delimiter(dialect.delimiter as u8)
                .quote(dialect.quote as u8)
                .build(),
            delimiter: dialect.delimiter as u8,
            quote: dialect.quote as u8,
            quote_state: QuoteState::FieldStart,
            protect_bom: !(offset == 0 && line == 1),
            fed: false,
            offset,
            line,
            after_cr: false,
            in_record: false,
            record_start: offset,
            record_line: line,
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 32],
            ends_len: 0,
            finished: false,
        }
    }

    /// Bytes consumed so far, as an absolute offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the record in progress (0 between records): how large a field can grow.
    pub fn pending_bytes(&self) -> usize {
        self.out_len
    }

    /// Whether input ended inside a record that never completed (only true after `finish`
    /// if csv-core had to close an open record at end of input).
    pub fn in_record(&self) -> bool {
        self.in_record
    }

    /// The line of a record left open inside a quoted field, if input ends now: an
    /// unterminated quote. Ask before [`RecordScanner::finish`].
    pub fn unterminated_quote_line(&self) -> Option<u64> {
        (self.in_record && self.quote_state == QuoteState::Quoted).then_some(self.record_line)
    }

    /// The line of the record in progress, if any.
    pub fn open_record_line(&self) -> Option<u64> {
        self.in_record.then_some(self.record_line)
    }

    fn count_lines(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let terminator = b == b'\n' || b == b'\r';
            self.quote_state = match self.quote_state {
                QuoteState::Quoted if b == self.quote => QuoteState::QuoteInQuoted,
                QuoteState::Quoted => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if b == self.quote => QuoteState::Quoted,
                QuoteState::FieldStart if b == self.quote => QuoteState::Quoted,
                _ if b == self.delimiter || terminator => QuoteState::FieldStart,
                _ => QuoteState::Unquoted,
            };
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' => self.line += 1,
                b'\r' => {
                    self.line += 1;
                    self.after_cr = true;
                }
                _ => self.after_cr = false,
            }
        }
    }

    /// Feeds the next block; `on_record` is called for each record completed in it.
    pub fn feed(&mut self, mut input: &[u8], on_record: &mut impl FnMut(Record<'_>)) {
        while !input.is_empty() {
            if !self.in_record {
                // Blank lines between records are not records; skip them here so that a
                // record's start is its first real byte.
                let skip = input
                    .iter()
                    .position(|b| *b != b'\n' && *b != b'\r')
                    .unwrap_or(input.len());
                self.count_lines(&input[..skip]);
                self.offset += skip as u64;
                input = &input[skip..];
                if input.is_empty() {
                    return;
                }
                self.in_record = true;
                self.record_start = self.offset;
                self.record_line = self.line;
            }
            // Handing csv-core a single first byte keeps it from taking a mid-file BOM for
            // the file's own.
            let take = if self.protect_bom && !self.fed { 1 } else { input.len() };
            self.fed = true;
            let consumed = self.step(&input[..take], on_record);
            input = &input[consumed..];
        }
    }

    /// Signals end of input, flushing a last record that has no terminator.
    pub fn finish(&mut self, on_record: &mut impl FnMut(Record<'_>)) {
        if !self.finished {
            self.finished = true;
            self.step(&[], on_record);
        }
    }

    /// Runs csv-core over `input` until it needs more input or completes one record;
    /// returns the bytes consumed.
    fn step(&mut self, input: &[u8], on_record: &mut impl FnMut(Record<'_>)) -> usize {
        let mut used = 0;
        loop {
            let (result, nin, nout, nend) = self.core.read_record(
                &input[used..],
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.count_lines(&input[used..used + nin]);
            self.offset += nin as u64;
            used += nin;
            // Field ends are already relative to the record's start: csv-core keeps its own
            // output position across calls within one record.
            self.out_len += nout;
            self.ends_len += nend;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return used,
                ReadRecordResult::OutputFull => {
                    let grown = self.out.len() * 2;
                    self.out.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    if self.in_record || self.ends_len > 0 {
                        on_record(Record {
                            start: self.record_start,
                            end: self.offset,
                            line: self.record_line,
                            data: &self.out[..self.out_len],
                            ends: &self.ends[..self.ends_len],
                        });
                    }
                    self.in_record = false;
                    self.out_len = 0;
                    self.ends_len = 0;
                    return used;
                }
            }
        }
    }
}

/// Scans a whole in-memory buffer; convenient for chunks and tests.
pub fn scan_all(dialect: &CsvDialect, bytes: &[u8], line: u64, mut on_record: impl FnMut(Record<'_>)) {
    let mut scanner = RecordScanner::new(dialect, 0, line);
    scanner.feed(bytes, &mut on_record);
    scanner.finish(&mut on_record);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8], block: usize) -> Vec<(u64, u64, u64, Vec<String>)> {
        let mut got = Vec::new();
        let mut push = |r: Record<'_>| {
            got.push((
                r.start,
                r.end,
                r.line,
                r.fields().map(|f| String::from_utf8_lossy(f).into_owned()).collect(),
            ))
        };
        let mut s = RecordScanner::new(&CsvDialect::default(), 0, 1);
        for piece in bytes.chunks(block.max(1)) {
            s.feed(piece, &mut push);
        }
        s.finish(&mut push);
        got
    }

    #[test]
    fn lines_count_lf_crlf_and_lone_cr_once_each_and_blank_lines_are_skipped() {
        let text = b"a,b\r\n\r\nc,d\n\ne,f\rg,h";
        let want = vec![
            (0, 4, 1, vec!["a".to_string(), "b".into()]),
            (7, 11, 3, vec!["c".into(), "d".into()]),
            (12, 16, 5, vec!["e".into(), "f".into()]),
            (16, 19, 6, vec!["g".into(), "h".into()]),
        ];
        for block in [1, 2, 3, 7, 100] {
            assert_eq!(scan(text, block), want, "block size {block}");
        }
    }

    #[test]
    fn quoted_newlines_advance_the_line_but_not_the_record() {
        let got = scan(b"\"x\r\ny\",1\r\nz,2\r\n", 4);
        assert_eq!(got[0].3, vec!["x\r\ny".to_string(), "1".into()]);
        assert_eq!(got[1].2, 3);
        assert_eq!(got[1].0, 10);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_field() {
        // (A mark split across blocks is left to the header check, which strips it too.)
        let got = scan(b"\xef\xbb\xbfID,V\n1,2\n", 64);
        assert_eq!(got[0].3[0], "ID");
        assert_eq!(got[1].2, 2);
    }

    #[test]
    fn an_unterminated_quote_at_the_end_is_told_with_its_line() {
        let mut s = RecordScanner::new(&CsvDialect::default(), 0, 1);
        s.feed(b"a,b\r\nc,\"open,\r\nmore\r\n", &mut |_| {});
        assert_eq!(s.unterminated_quote_line(), Some(2));
        let mut s = RecordScanner::new(&CsvDialect::default(), 0, 1);
        s.feed(b"a,\"x\"\"y\",b\"c\r\nd,e", &mut |_| {});
        assert_eq!(s.unterminated_quote_line(), None, "escaped and stray quotes are fine");
        assert_eq!(s.open_record_line(), Some(2));
    }

    #[test]
    fn a_byte_order_mark_inside_a_file_is_data_wherever_a_chunk_starts() {
        let mut fields = Vec::new();
        scan_all(&CsvDialect::default(), b"\xef\xbb\xbfA,1\n\xef\xbb\xbfB,2\n", 7, |r| {
            fields.push(String::from_utf8_lossy(r.field(0)).into_owned())
        });
        assert_eq!(fields, vec!["\u{feff}A".to_string(), "\u{feff}B".to_string()]);
    }

    #[test]
    fn a_last_record_without_terminator_is_reported() {
        let got = scan(b"a\nb", 1);
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].0, got[1].1), (2, 3));
    }

    #[test]
    fn fields_larger_than_the_initial_buffer_grow_it() {
        let big = "x".repeat(10_000);
        let text = format!("{big},{}\n", "y,".repeat(100));
        let got = scan(text.as_bytes(), 333);
        assert_eq!(got[0].3[0], big);
        assert_eq!(got[0].3.len(), 102);
    }
}
