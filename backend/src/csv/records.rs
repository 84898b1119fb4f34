//! CSV records out of a byte stream, with a fast path for the common record.
//!
//! Sales exports are mostly records without a quote in them, one per line. Such a record is cut
//! at its delimiters in one pass over its line (a byte-class table finds delimiters, quotes and
//! line ends) and kept as the line plus cell offsets, instead of being walked byte by byte through
//! the CSV state machine; a record holding a quote goes through `csv_core` (the parser of the
//! `csv` crate). The dialect is that crate's: `"` quotes, `""` inside quotes, CR, LF and CRLF end
//! records, empty lines are skipped, records may have any number of fields; a UTF-8 BOM at the
//! start is dropped (the `csv` crate keeps one followed by a quote). The cells are the bytes the
//! `csv` crate reads (a property test checks it).
//!
//! A record carries the line it starts on, counting every line end before it (CR, LF or CRLF,
//! inside quotes too) as a text editor numbers lines.

use std::io::Read;

use csv_core::ReadRecordResult;

/// Bytes read from the input at a time (the buffer grows for a longer record).
const BUFFER_BYTES: usize = 256 * 1024;
/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One CSV record: its cells' bytes and where each cell is in them, and the line it starts on.
#[derive(Debug, Default, Clone)]
pub(crate) struct Record {
    /// The cells' bytes: for a record without quotes, its line as written (delimiters included);
    /// otherwise the cells unquoted, one after the other.
    bytes: Vec<u8>,
    /// Each cell's start and end in `bytes`.
    cells: Vec<(u32, u32)>,
    line: u64,
    /// Where the record starts in the input (tests check lines against it).
    #[cfg(test)]
    byte: u64,
}

impl Record {
    /// Where cell `index` is in [`Self::as_slice`].
    pub(crate) fn range(&self, index: usize) -> Option<std::ops::Range<usize>> {
        self.cells
            .get(index)
            .map(|&(from, to)| from as usize..to as usize)
    }

    /// Cell `index`'s bytes.
    pub(crate) fn get(&self, index: usize) -> Option<&[u8]> {
        self.range(index).map(|range| &self.bytes[range])
    }

    /// Bytes holding every cell (see [`Self::range`]); where they are valid UTF-8, so is each
    /// cell whose range falls on character boundaries.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The cells in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.cells
            .iter()
            .map(|&(from, to)| &self.bytes[from as usize..to as usize])
    }

    /// The line the record starts on (1 for the first).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }
}

/// What a byte is to the fast path.
const PLAIN: u8 = 0;
const DELIMITER: u8 = 1;
/// A quote: the record goes to `csv_core`.
const QUOTE: u8 = 2;
/// CR or LF: the record ends.
const LINE_END: u8 = 3;

/// Reads CSV records (see the module docs).
pub(crate) struct RecordReader<R> {
    input: R,
    buffer: Vec<u8>,
    /// Unread bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    /// The input has no more bytes.
    eof: bool,
    /// Reading the input failed: the records end there (as in the `csv` crate).
    failed: bool,
    /// Nothing read yet (a BOM may start the input).
    fresh: bool,
    /// Each byte's [`PLAIN`], [`DELIMITER`], [`QUOTE`] or [`LINE_END`].
    classes: [u8; 256],
    /// Parser for the records off the fast path. Each record it is given starts a line, where it
    /// is back in its first state after the record before.
    core: csv_core::Reader,
    /// Line ends consumed: each CR, and each LF not right after a CR.
    line_ends: u64,
    /// The last byte consumed was a CR (an LF next ends the same line).
    after_cr: bool,
    /// Bytes consumed (tests check record lines against it).
    #[cfg(test)]
    byte: u64,
    /// `csv_core`'s output: cell bytes and cell ends.
    cells: Vec<u8>,
    ends: Vec<usize>,
}

/// Largest buffer, and largest record: a record's cells are placed by 32-bit offsets.
const MAX_RECORD_BYTES: usize = u32::MAX as usize;

/// A cell's end as a record keeps it (below [`MAX_RECORD_BYTES`], so exact).
#[expect(
    clippy::cast_possible_truncation,
    reason = "offsets stay below MAX_RECORD_BYTES"
)]
fn cell_end(at: usize) -> u32 {
    at as u32
}

fn too_long() -> std::io::Error {
    std::io::Error::other("a CSV record is over 4 GB")
}

/// A `csv_core` parser that has read one record already: it drops a BOM only at the start of its
/// first input, and a record it is given later may start anywhere in the file (a BOM there is
/// data). The file's own BOM is dropped by [`RecordReader`].
fn primed_core(delimiter: u8) -> csv_core::Reader {
    let mut core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let (mut cells, mut ends) = ([0; 4], [0; 4]);
    let _ = core.read_record(b"x\n", &mut cells, &mut ends);
    core
}

fn classes(delimiter: u8) -> [u8; 256] {
    let mut classes = [PLAIN; 256];
    classes[usize::from(delimiter)] = DELIMITER;
    classes[usize::from(b'"')] = QUOTE;
    classes[usize::from(b'\r')] = LINE_END;
    classes[usize::from(b'\n')] = LINE_END;
    classes
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(input: R, delimiter: u8) -> Self {
        Self {
            input,
            buffer: vec![0; BUFFER_BYTES],
            start: 0,
            end: 0,
            eof: false,
            failed: false,
            fresh: true,
            classes: classes(delimiter),
            core: primed_core(delimiter),
            line_ends: 0,
            after_cr: false,
            #[cfg(test)]
            byte: 0,
            cells: vec![0; 1024],
            ends: vec![0; 64],
        }
    }

    /// A reader whose delimiter `sniff` picks from the input's first bytes (one read's worth).
    ///
    /// # Errors
    /// When reading the input fails.
    pub(crate) fn sniffing(input: R, sniff: impl FnOnce(&[u8]) -> u8) -> std::io::Result<Self> {
        let mut reader = Self::new(input, b',');
        reader.fill()?;
        let delimiter = sniff(&reader.buffer[reader.start..reader.end]);
        reader.classes = classes(delimiter);
        reader.core = primed_core(delimiter);
        Ok(reader)
    }

    /// Reads the next record into `record`: `false` at the end of the input.
    ///
    /// # Errors
    /// When reading the input fails.
    pub(crate) fn read(&mut self, record: &mut Record) -> std::io::Result<bool> {
        record.bytes.clear();
        record.cells.clear();
        if self.failed {
            return Ok(false);
        }
        if self.fresh {
            self.fresh = false;
            while self.end - self.start < BOM.len() && !self.eof {
                self.fill()?;
            }
            if self.buffer[self.start..self.end].starts_with(BOM) {
                self.consume(BOM.len());
            }
        }
        // Line ends before a record are empty lines: skipped.
        loop {
            if self.start == self.end {
                if self.eof {
                    return Ok(false);
                }
                self.fill()?;
                continue;
            }
            match self.buffer[self.start] {
                b'\r' | b'\n' => self.consume(1),
                _ => break,
            }
        }
        record.line = self.line_ends + 1;
        #[cfg(test)]
        {
            record.byte = self.byte;
        }
        // The fast path: the record's line is in the buffer (or ends the input) and holds no
        // quote; cells are cut at the delimiters, found in the same pass.
        'line: loop {
            let rest = &self.buffer[self.start..self.end];
            let mut from = 0;
            let mut at = 0;
            let length = loop {
                let classes = &self.classes;
                let Some(skipped) = rest[at..]
                    .iter()
                    .position(|byte| classes[usize::from(*byte)] != PLAIN)
                else {
                    if self.eof {
                        break rest.len();
                    }
                    // The line goes on past the buffer: read more and start it again.
                    record.cells.clear();
                    self.fill()?;
                    continue 'line;
                };
                at += skipped;
                match classes[usize::from(rest[at])] {
                    DELIMITER => {
                        record.cells.push((from, cell_end(at)));
                        from = cell_end(at + 1);
                        at += 1;
                    }
                    QUOTE => {
                        record.cells.clear();
                        break 'line;
                    }
                    _ => break at,
                }
            };
            record.cells.push((from, cell_end(length)));
            record.bytes.extend_from_slice(&rest[..length]);
            self.consume_plain(length);
            return Ok(true);
        }
        self.read_quoted(record)?;
        Ok(true)
    }

    /// Reads a record holding a quote with `csv_core`, from a non-empty line.
    fn read_quoted(&mut self, record: &mut Record) -> std::io::Result<()> {
        let (mut cells, mut ends) = (0, 0);
        loop {
            let (result, read, written, ended) = self.core.read_record(
                &self.buffer[self.start..self.end],
                &mut self.cells[cells..],
                &mut self.ends[ends..],
            );
            self.consume(read);
            cells += written;
            ends += ended;
            match result {
                ReadRecordResult::InputEmpty => {
                    if !self.eof {
                        self.fill()?;
                    }
                }
                ReadRecordResult::OutputFull => {
                    let grown = (self.cells.len() * 2).min(MAX_RECORD_BYTES);
                    if grown == self.cells.len() {
                        return Err(too_long());
                    }
                    self.cells.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        record.bytes.extend_from_slice(&self.cells[..cells]);
        let mut from = 0;
        for &to in &self.ends[..ends] {
            record.cells.push((cell_end(from), cell_end(to)));
            from = to;
        }
        Ok(())
    }

    /// Consumes a plain line of `length` bytes (no CR or LF in it) and the line end after it.
    fn consume_plain(&mut self, length: usize) {
        self.start += length;
        #[cfg(test)]
        {
            self.byte += length as u64;
        }
        self.after_cr = false;
        if self.start < self.end {
            // The line end: its LF (after a CR) is consumed with the empty lines before the next
            // record, where it counts for nothing.
            self.consume(1);
        }
    }

    /// Consumes `count` bytes, counting the line ends among them.
    fn consume(&mut self, count: usize) {
        for &byte in &self.buffer[self.start..self.start + count] {
            match byte {
                b'\r' => {
                    self.line_ends += 1;
                    self.after_cr = true;
                }
                b'\n' => {
                    if !self.after_cr {
                        self.line_ends += 1;
                    }
                    self.after_cr = false;
                }
                _ => self.after_cr = false,
            }
        }
        self.start += count;
        #[cfg(test)]
        {
            self.byte += count as u64;
        }
    }

    /// Reads more input after the unread bytes (moved to the front first; the buffer doubles when
    /// they fill it). Sets `eof` when the input has no more.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            let grown = (self.buffer.len() * 2).min(MAX_RECORD_BYTES);
            if grown == self.buffer.len() {
                return Err(too_long());
            }
            self.buffer.resize(grown, 0);
        }
        loop {
            match self.input.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(read) => {
                    self.end += read;
                    return Ok(());
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.failed = true;
                    self.eof = true;
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A reader that hands out at most `step` bytes per read, so that records straddle reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let count = self.step.min(out.len()).min(self.data.len());
            out[..count].copy_from_slice(&self.data[..count]);
            self.data = &self.data[count..];
            Ok(count)
        }
    }

    /// Every record read by [`RecordReader`]: its cells, start line and start byte.
    fn ours(input: &[u8], delimiter: u8, step: usize) -> Vec<(Vec<Vec<u8>>, u64, u64)> {
        let mut reader = RecordReader::new(Trickle { data: input, step }, delimiter);
        let mut record = Record::default();
        let mut records = Vec::new();
        while reader.read(&mut record).unwrap() {
            records.push((
                record.iter().map(<[u8]>::to_vec).collect(),
                record.line(),
                record.byte,
            ));
        }
        records
    }

    /// Every record's cells, read by the `csv` crate with the dialect the importer always used.
    fn csv_crate(input: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(input);
        let mut record = ::csv::ByteRecord::new();
        let mut records = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            records.push(record.iter().map(<[u8]>::to_vec).collect());
        }
        records
    }

    fn cells_of(records: &[(Vec<Vec<u8>>, u64, u64)]) -> Vec<Vec<Vec<u8>>> {
        records.iter().map(|(cells, _, _)| cells.clone()).collect()
    }

    /// The line a byte is on: one more than the line ends (CR, LF, CRLF as one) before it.
    fn line_at(input: &[u8], byte: u64) -> u64 {
        let before = &input[..usize::try_from(byte).unwrap()];
        let crs = before.iter().filter(|byte| **byte == b'\r').count();
        let lone_lfs = before
            .iter()
            .enumerate()
            .filter(|(at, byte)| **byte == b'\n' && (*at == 0 || before[at - 1] != b'\r'))
            .count();
        1 + u64::try_from(crs + lone_lfs).unwrap()
    }

    #[test]
    fn plain_quoted_and_mixed_line_ends_read_like_the_csv_crate_with_true_line_numbers() {
        let input = b"\xEF\xBB\xBFdate,sku,qty\r\n2024-01-02,A,1\r\n\r\n2024-01-03,\"B, big\",2\n\
                      2024-01-04,\"say \"\"hi\"\"\nthere\",3\r2024-01-05,C,4\n\n,,\nlast,no,end";
        for step in [1, 2, 3, 7, 4096] {
            let read = ours(input, b',', step);
            assert_eq!(cells_of(&read), csv_crate(input, b','), "step {step}");
            let lines: Vec<u64> = read.iter().map(|(_, line, _)| *line).collect();
            // Line 3 is empty; the quoted cell of line 5 runs onto line 6; line 6 ends with a
            // lone CR, so the next record is line 7; line 8 is empty.
            assert_eq!(lines, [1, 2, 4, 5, 7, 9, 10], "step {step}");
        }
    }

    #[test]
    fn a_record_longer_than_the_buffer_is_read_whole() {
        let long = "x".repeat(BUFFER_BYTES * 3 + 17);
        let input = format!("a,{long},b\n\"q\",{long}\nend\n");
        let read = ours(input.as_bytes(), b',', 100_000);
        assert_eq!(cells_of(&read), csv_crate(input.as_bytes(), b','));
        assert_eq!(read[0].0[1].len(), long.len());
        assert_eq!(
            read.iter().map(|(_, line, _)| *line).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn a_failed_read_is_an_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk gone"))
            }
        }
        let mut reader = RecordReader::new(Broken, b',');
        let error = reader.read(&mut Record::default()).unwrap_err();
        assert_eq!(error.to_string(), "disk gone");
        // The records end there, as the `csv` crate's do.
        assert!(!reader.read(&mut Record::default()).unwrap());
    }

    /// Bytes that make CSV interesting, and some that do not.
    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![
                b'a', b'b', b'1', b' ', b',', b';', b'\t', b'"', b'"', b'\r', b'\n', b'\n', 0xC3,
                0xA9, 0xEF, 0xBB, 0xBF,
            ]),
            0..200,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_input_reads_as_the_csv_crate_reads_it(
            input in csv_bytes(),
            delimiter in prop::sample::select(vec![b',', b';', b'\t']),
            step in 1usize..9,
        ) {
            let read = ours(&input, delimiter, step);
            // The `csv` crate drops a leading BOM only when it is not followed by a quote; a
            // BOM is never data, so it goes here either way.
            let without_bom = input.strip_prefix(BOM).unwrap_or(&input);
            prop_assert_eq!(cells_of(&read), csv_crate(without_bom, delimiter));
            // Each record starts where its position says, on the line it names, and never on
            // a line end (empty lines are skipped).
            for (_, line, byte) in &read {
                prop_assert_eq!(*line, line_at(&input, *byte));
                let first = input[usize::try_from(*byte).unwrap()..].first().copied();
                prop_assert!(first.is_none_or(|first| first != b'\r' && first != b'\n'));
            }
        }
    }
}
