//! Scoring one file in pieces: [`split`] finds where its records start, [`score_piece`] scores
//! one piece (on any worker), [`Merger`] puts the pieces' reports together. The pieces' scored
//! lines, concatenated in order, are byte for byte what [`crate::score_csv`] writes for the
//! whole file, and the merged report is the one it returns.
//!
//! # Record boundaries
//! A quoted field may hold line breaks, so a byte offset alone cannot tell whether it is inside
//! a record: only a reader that has followed the quoting from the start of the file knows.
//! [`split`] is that reader — the scorer's own ([`crate::csv_input::Records`], with its header
//! width, record limit and unclosed-quote recovery) — run over the whole file once without
//! looking at the fields; every `rows_per_piece`-th record it reads starts a piece, at the
//! offset of the record's first byte ([`crate::csv_input::RecordInfo::start`], past any blank
//! lines before it). A piece is read by the same reader started at that byte, on the record's
//! line, with the header's width and the file's dialect: its state there is the state the
//! whole file's reader has at a record's start, so it reads the same records. It is given the
//! rest of the file, not just its bytes, and stops after its own records: an unclosed quote's
//! recovery looks ahead at the lines after it, which may lie in the next piece.
//!
//! # Encodings
//! Offsets are the reader's offsets in the *decoded* text. For a UTF-8 file (with or without a
//! byte-order mark) they are the file's own bytes plus the mark and an Excel `sep=` line, so a
//! piece is read straight from the file by a range request, and in UTF-8 no byte of a
//! multi-byte character is a quote, delimiter or line break, so a record boundary never falls
//! inside a character. A UTF-16 or windows-1252 file is transcoded while read: its offsets
//! are not the file's, and transcoding it to a copy first would cost a whole pass and a second
//! object. Such files are not cut ([`Split::Whole`] says why): they are scored in one job. The
//! encoding a piece is read in is the whole file's, detected from the file's first bytes
//! ([`crate::decode::SAMPLE_BYTES`]), never from the piece's own (a UTF-8 file with a stray
//! windows-1252 byte in one piece is still UTF-8 there, as in one pass).
//!
//! # What the merge must do itself
//! Every count is a sum, every list the first ones in row order, and every sum of floats a
//! [`crate::fixed_sum::FixedSum`], exact in any grouping. The one check that spans pieces is the
//! repeated customer id: a piece does not check it, it hands each scored row's id to the
//! caller, and the merge runs the one-pass check ([`crate::intake::RepeatCheck`]) over them in
//! row order, interleaving its warnings with the pieces' own.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::artifact::Model;
use crate::decode::Encoding;
use crate::intake::{Intake, RepeatCheck};
use crate::score::{self, Gathered, RowIssue, ScoreError, ScoreOptions, ScoreReport};

/// One piece of a file: its records are rows `first_row ..= first_row + rows − 1`, the first
/// starting at byte `start` of the file, on physical line `first_line`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Offset in the file (bytes, from its first byte, mark included) of the piece's first
    /// record.
    pub start: u64,
    /// Data record number of the first record (1 = the first after the header).
    pub first_row: u64,
    /// Physical line (1-based) the first record starts on.
    pub first_line: u64,
    /// Records in the piece (rows skipped as empty included, as in row numbers).
    pub rows: u64,
}

/// How a file is to be scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// In one pass: the file has at most one piece's rows, or cannot be read in pieces.
    Whole {
        /// Why, in a few words (for the log).
        reason: String,
    },
    /// In these pieces, in file order.
    Pieces {
        /// The pieces; at least two.
        pieces: Vec<Piece>,
        /// How many of the file's first bytes a piece reads to open it as the whole file is
        /// opened ([`score_piece`]'s `head`): the detection sample and the header.
        head_bytes: u64,
    },
}

/// Reads the whole of `input` once (no field is looked at) and cuts it every `rows_per_piece`
/// records; the file is opened and its mapping checked exactly as scoring does (with
/// `opts.mapping` and `opts.limits`), so a file that cannot be scored fails here, once.
///
/// # Errors
/// As [`crate::score_csv`] for whole-file problems (encoding, header, mapping, limits).
pub fn split<R: Read>(
    model: &Model,
    input: R,
    opts: &ScoreOptions,
    rows_per_piece: u64,
) -> Result<Split, ScoreError> {
    Ok(split_with(model, input, opts, rows_per_piece, false)?.0)
}

/// A file's reference date found in the pass that cuts it: the date and where it came from,
/// as [`crate::plan::plan`] finds them when none is given.
pub type FoundDate = (Option<chrono::NaiveDate>, Option<String>);

/// [`split`] that also finds the file's reference date in the same pass, as
/// [`crate::plan::plan`]'s first pass does when none is given
/// ([`crate::intake::Intake::latest_date`]): a coordinator reads the file once, not once for
/// the date and once to cut it. The date is `(None, None)` when the model reads no dates, and
/// is not looked for in a file scored whole (its one pass plans it).
///
/// # Errors
/// As [`split`].
pub fn split_finding_date<R: Read>(
    model: &Model,
    input: R,
    opts: &ScoreOptions,
    rows_per_piece: u64,
) -> Result<(Split, FoundDate), ScoreError> {
    split_with(model, input, opts, rows_per_piece, true)
}

fn split_with<R: Read>(
    model: &Model,
    input: R,
    opts: &ScoreOptions,
    rows_per_piece: u64,
    find_date: bool,
) -> Result<(Split, FoundDate), ScoreError> {
    let mut intake = Intake::open_with(model, input, &opts.limits, &opts.mapping)?;
    intake.check_mapping()?;
    if !matches!(intake.encoding(), Encoding::Utf8 | Encoding::Utf8Bom) {
        let reason = format!(
            "a {} file is transcoded while read, so it is scored in one pass",
            intake.encoding().label()
        );
        return Ok((Split::Whole { reason }, (None, None)));
    }
    let n = rows_per_piece.max(1);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut cut = |row: u64, start: u64, line: u64| {
        if (row - 1).is_multiple_of(n) {
            pieces.push(Piece {
                start,
                first_row: row,
                first_line: line,
                rows: 0,
            });
        }
        if let Some(last) = pieces.last_mut() {
            last.rows = row - last.first_row + 1;
        }
    };
    let mut found = (None, None);
    if find_date && intake.reads_dates() {
        found.0 = intake.latest_date_while(&mut cut)?;
        found.1 = intake.reference_source().map(str::to_owned);
    } else {
        while let Some((row, start, line)) = intake.next_start()? {
            cut(row, start, line);
        }
    }
    if pieces.len() < 2 {
        let reason = format!("at most {n} rows");
        return Ok((Split::Whole { reason }, found));
    }
    let head_bytes = (crate::decode::SAMPLE_BYTES as u64 + 1).max(pieces[0].start);
    Ok((Split::Pieces { pieces, head_bytes }, found))
}

/// Scores piece `piece` of a file: `head` is the file from its first byte (at least
/// [`Split::Pieces`]'s `head_bytes` of it, or all), `body` the file from `piece.start` on (to
/// its end; reading stops after the piece's records). Writes the piece's scored lines to
/// `output` (the first piece starts with the header line), tells `ids` each scored row's
/// number and customer id, and returns its report and sums for [`Merger::add`]. `opts` must be
/// the whole file's, its reference date included (the file's, found before cutting it).
///
/// # Errors
/// As [`crate::score_csv`], except that a piece with no scorable row is not an error (the
/// merge decides); [`ScoreError::Malformed`] when the piece ends before its last record (the
/// file is not the one that was cut).
#[allow(clippy::too_many_arguments)]
pub fn score_piece<R: Read, W: Write>(
    model: &Model,
    head: R,
    body: R,
    piece: &Piece,
    opts: &ScoreOptions,
    mut output: W,
    ids: &mut dyn FnMut(u64, &str),
    progress: &mut dyn FnMut(u64),
) -> Result<Gathered, ScoreError> {
    let mut intake = Intake::open_with(model, head, &opts.limits, &opts.mapping)?;
    let (report, reference) = score::prepare(model, &mut intake, opts)?;
    intake.read_piece(body, piece)?;
    if piece.first_row == 1 {
        score::write_header(model, opts.explain, &mut output)?;
    }
    let mut gathered = score::gather(
        model,
        intake,
        reference,
        report,
        &mut output,
        opts,
        progress,
        Some(ids),
    )?;
    output.flush()?;
    // Row numbers are the file's; the counts are the piece's own.
    let last = gathered.report.validation.rows_total;
    let read = (last + 1).saturating_sub(piece.first_row);
    if read != piece.rows {
        return Err(ScoreError::Malformed {
            row: last,
            message: format!(
                "the piece of rows {}–{} ended after {read} of its {} records: the file changed after it was cut",
                piece.first_row,
                piece.first_row + piece.rows - 1,
                piece.rows
            ),
        });
    }
    gathered.report.validation.rows_total = read;
    gathered.report.rows_total = read;
    Ok(gathered)
}

/// Puts the pieces of one file together, in file order, into the report [`crate::score_csv`]
/// gives for the whole file. Memory: the first pieces' lists (capped) and the repeat check's
/// remembered ids (bounded by [`crate::InputLimits::max_tracked_ids`], as in one pass).
pub struct Merger {
    max_issues: usize,
    /// The report so far (`None` before the first piece).
    report: Option<ScoreReport>,
    sum_p: crate::fixed_sum::FixedSum,
    portfolio: Option<crate::portfolio::PortfolioAcc>,
    drift: Option<crate::drift::DriftAcc>,
    repeats: RepeatCheck,
}

impl Merger {
    /// A merge for a file scored with `opts`.
    pub fn new(opts: &ScoreOptions) -> Merger {
        Merger {
            max_issues: opts.max_issues,
            report: None,
            sum_p: Default::default(),
            portfolio: None,
            drift: None,
            repeats: RepeatCheck::new(opts.limits.max_tracked_ids),
        }
    }

    /// Adds the next piece: what [`score_piece`] returned and the ids it told, in order.
    pub fn add(&mut self, piece: Gathered, ids: &[(u64, String)]) {
        let p = &piece.report;
        let pv = &p.validation;
        let cap = pv.rejected_rows_cap;
        // What every piece reads the same (the file's head): taken from the first.
        let r = self.report.get_or_insert_with(|| ScoreReport {
            ignored_columns: p.ignored_columns.clone(),
            model_id: p.model_id.clone(),
            reference_date: p.reference_date.clone(),
            reference_date_source: p.reference_date_source.clone(),
            observation_date: p.observation_date.clone(),
            validation: crate::ValidationReport {
                encoding: pv.encoding.clone(),
                delimiter: pv.delimiter.clone(),
                decimal_comma: pv.decimal_comma,
                mapping: pv.mapping.clone(),
                absent_inputs: pv.absent_inputs.clone(),
                rejected_rows_cap: cap,
                columns: pv
                    .columns
                    .iter()
                    .map(|c| crate::report::ColumnStats {
                        feature: c.feature.clone(),
                        column: c.column.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        });
        let id_column = r
            .validation
            .mapping
            .as_ref()
            .and_then(|m| m.id.as_ref())
            .and_then(|m| m.column.clone());
        // The repeats this piece's ids make with every earlier scored row, in row order; only
        // as many are kept as a list can still show (the rest are counted).
        let keep = cap.max(self.max_issues);
        let mut repeats: Vec<RowIssue> = Vec::new();
        let v = &mut r.validation;
        for (row, id) in ids {
            if let Some(w) = self.repeats.check(*row, Some(id), id_column.as_deref(), v) {
                v.warnings_total += 1;
                if repeats.len() < keep {
                    repeats.push(w);
                }
            }
        }
        v.add_piece(pv);
        interleave(&mut v.warnings, cap, &pv.warnings, &repeats);
        interleave(&mut r.warnings, self.max_issues, &p.warnings, &repeats);
        r.rows_total += p.rows_total;
        r.rows_scored += p.rows_scored;
        r.rows_rejected += p.rows_rejected;
        r.rows_skipped_empty += p.rows_skipped_empty;
        let room = self.max_issues.saturating_sub(r.issues.len());
        r.issues.extend(p.issues.iter().take(room).cloned());
        r.risk_counts.high += p.risk_counts.high;
        r.risk_counts.medium += p.risk_counts.medium;
        r.risk_counts.low += p.risk_counts.low;
        self.sum_p.merge(piece.sum_p);
        match &mut self.portfolio {
            Some(acc) => acc.merge(&piece.portfolio),
            None => self.portfolio = Some(piece.portfolio),
        }
        match &mut self.drift {
            Some(acc) => acc.merge(&piece.drift),
            None => self.drift = Some(piece.drift),
        }
    }

    /// The whole file's report.
    ///
    /// # Errors
    /// [`ScoreError::NoUsableRows`] when no piece scored a row, as for one pass;
    /// [`ScoreError::Empty`] when no piece was added.
    pub fn finish(self, model: &Model) -> Result<ScoreReport, ScoreError> {
        let (Some(report), Some(portfolio), Some(counts)) =
            (self.report, self.portfolio, self.drift)
        else {
            return Err(ScoreError::Empty);
        };
        // A stored accumulator holds counts only; a fresh one knows the model's columns.
        let mut drift = crate::drift::DriftAcc::new(model.schema(), &model.card().features);
        drift.merge(&counts);
        score::finish(
            model,
            Gathered {
                report,
                sum_p: self.sum_p,
                portfolio,
                drift,
            },
        )
    }
}

/// Appends to `list` (up to `cap`) the warnings of `piece` and `repeats`, both in row order,
/// merged by row; a row's own warnings come before its repeat, as one pass lists them.
fn interleave(list: &mut Vec<RowIssue>, cap: usize, piece: &[RowIssue], repeats: &[RowIssue]) {
    let (mut a, mut b) = (piece.iter().peekable(), repeats.iter().peekable());
    while list.len() < cap {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.row <= y.row => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        list.extend(next.cloned());
    }
}

/// A small seeded generator (xorshift64*, Marsaglia 2003; Vigna 2016), so every generated file
/// is reproducible by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The header of [`awkward_file`]: the Telco columns and a free-text `notes`.
pub const HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,notes";

/// A seeded Telco-schema file of `rows` records, for tests of cutting files in pieces (here
/// and in the application's) with an extra free-text `notes` column, where
/// about a third of the rows are awkward: quoted notes with line breaks (`\n`, `\r\n`),
/// `""` escapes and delimiters; rows rejected for a bad number, a missing id, too few
/// fields or a repeated header; rows skipped as empty; repeated ids (also spelled with
/// spaces); unseen, aliased and respelled values; blank lines; a quote never closed; and,
/// past the encoding sample, windows-1252 bytes in ids. Line ends mix `\n` and `\r\n`;
/// `bom` starts the file with a UTF-8 byte-order mark; `unclosed` allows quotes never
/// closed.
pub fn awkward_file(seed: u64, rows: usize, bom: bool, unclosed: bool) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend_from_slice(HEADER.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut ids: Vec<String> = Vec::new();
    for i in 0..rows {
        let eol: &[u8] = if rng.below(3) == 0 { b"\r\n" } else { b"\n" };
        let kind = rng.below(30);
        let mut id = format!("{:04}-C{}", i, rng.below(1000));
        if kind == 1 && !ids.is_empty() {
            id = ids[rng.below(ids.len() as u64) as usize].clone();
        } else if kind == 2 && !ids.is_empty() {
            id = format!(" {} ", ids[rng.below(ids.len() as u64) as usize]);
        }
        ids.push(id.trim().to_owned());
        let tenure = match kind {
            3 => "abc".to_owned(),
            4 => String::new(),
            _ => rng.below(72).to_string(),
        };
        let monthly = match kind {
            5 => "$85.50".to_owned(),
            _ => format!("{}.{:02}", 18 + rng.below(100), rng.below(100)),
        };
        let contract = match kind {
            6 => "Weekly",
            _ => rng.pick(&["Month-to-month", "One year", "Two year"]),
        };
        let internet = match kind {
            7 => "Fiber",
            _ => rng.pick(&["DSL", "Fiber optic", "No"]),
        };
        let notes = match rng.below(8) {
            0 => "\"called twice,\nthen \"\"cancelled\"\"\"".to_owned(),
            1 => "\"line one\r\nline two\r\n\"".to_owned(),
            2 => "\"a, b; c\"".to_owned(),
            3 => "plain".to_owned(),
            _ => String::new(),
        };
        let mut fields: Vec<String> = vec![
            id,
            rng.pick(&["Male", "Female"]).into(),
            rng.below(2).to_string(),
            rng.pick(&["Yes", "No"]).into(),
            rng.pick(&["Yes", "No"]).into(),
            tenure,
            "Yes".into(),
            rng.pick(&["Yes", "No"]).into(),
            internet.into(),
            rng.pick(&["Yes", "No"]).into(),
            "No".into(),
            "No".into(),
            rng.pick(&["Yes", "No"]).into(),
            "No".into(),
            "Yes".into(),
            contract.into(),
            "Yes".into(),
            rng.pick(&["Electronic check", "Mailed check"]).into(),
            monthly,
            format!("{}.5", rng.below(5000)),
            notes,
        ];
        match kind {
            8 => fields.truncate(5),
            9 => fields[0] = String::new(),
            _ => {}
        }
        let mut line = fields.join(",").into_bytes();
        match kind {
            10 => line = b",,,,,".to_vec(),
            11 => line = HEADER.as_bytes().to_vec(),
            12 if unclosed => line.extend_from_slice(b",\"never closed"),
            13 => out.extend_from_slice(eol),
            _ => {}
        }
        if kind == 14 && out.len() > 70_000 {
            // A windows-1252 "é" in the id, past the encoding sample: the file stays UTF-8.
            line.splice(0..0, [b'X', 0xE9]);
        }
        out.extend_from_slice(&line);
        out.extend_from_slice(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score_csv;

    fn opts() -> ScoreOptions {
        ScoreOptions {
            max_issues: 40,
            limits: crate::InputLimits {
                max_listed_rejections: 60,
                ..Default::default()
            },
            ..ScoreOptions::default()
        }
    }

    /// Scores `file` in pieces of `n` rows as the worker does: cut, each piece from its own
    /// start, merged in order. Returns the concatenated output and the merged report.
    fn in_pieces(
        model: &Model,
        file: &[u8],
        n: u64,
        opts: &ScoreOptions,
    ) -> (Vec<u8>, ScoreReport) {
        let Split::Pieces { pieces, head_bytes } = split(model, file, opts, n).unwrap() else {
            panic!("cut in pieces");
        };
        let mut out = Vec::new();
        let mut merger = Merger::new(opts);
        for piece in &pieces {
            let head = &file[..(head_bytes as usize).min(file.len())];
            let body = &file[piece.start as usize..];
            let mut ids = Vec::new();
            let gathered = score_piece(
                model,
                head,
                body,
                piece,
                opts,
                &mut out,
                &mut |row, id| ids.push((row, id.to_owned())),
                &mut |_| {},
            )
            .unwrap();
            // What the worker stores and the merge reads back.
            let stored = serde_json::to_vec(&gathered).unwrap();
            merger.add(serde_json::from_slice(&stored).unwrap(), &ids);
        }
        (out, merger.finish(model).unwrap())
    }

    #[test]
    fn pieces_give_the_bytes_and_the_report_of_one_pass() {
        let model = Model::embedded_default();
        let opts = opts();
        for seed in 1..=4 {
            let file = awkward_file(seed, 900, seed % 2 == 0, true);
            assert!(file.len() > 80_000, "past the encoding sample");
            let mut whole = Vec::new();
            let one = score_csv(model, &file[..], &mut whole, &opts, &mut |_| {}).unwrap();
            assert!(one.validation.duplicate_ids > 0, "seed {seed}: repeats");
            assert!(one.validation.cells_read_as_windows_1252 > 0, "seed {seed}");
            assert!(one.rows_rejected > 0 && one.rows_skipped_empty > 0);
            // Pieces of one row only for the first file: every row is at a boundary.
            let sizes: &[u64] = if seed == 1 { &[1, 7, 333] } else { &[2, 64] };
            for &n in sizes {
                let (bytes, report) = in_pieces(model, &file, n, &opts);
                assert!(
                    bytes == whole,
                    "seed {seed}, pieces of {n}: scored bytes differ"
                );
                assert_eq!(report, one, "seed {seed}, pieces of {n}");
            }
        }
    }

    #[test]
    fn an_excel_sep_line_and_a_mark_before_it_are_counted_in_the_offsets() {
        let model = Model::embedded_default();
        let opts = opts();
        let plain = awkward_file(21, 900, false, true);
        let mut file = b"\xEF\xBB\xBFsep=,\r\n".to_vec();
        file.extend_from_slice(&plain);
        let mut whole = Vec::new();
        let one = score_csv(model, &file[..], &mut whole, &opts, &mut |_| {}).unwrap();
        for n in [5, 97] {
            let (bytes, report) = in_pieces(model, &file, n, &opts);
            assert!(bytes == whole, "pieces of {n}: scored bytes differ");
            assert_eq!(report, one, "pieces of {n}");
        }
    }

    #[test]
    fn record_starts_are_the_csv_crates_record_positions() {
        let model = Model::embedded_default();
        for seed in 1..=20 {
            let bom = seed % 3 == 0;
            // The csv crate knows no unclosed-quote recovery: compared on files without one.
            let file = awkward_file(seed, 200, bom, false);
            let Split::Pieces { pieces, .. } = split(model, &file[..], &opts(), 1).unwrap() else {
                panic!("cut in pieces");
            };
            let skip = if bom { 3 } else { 0 };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&file[skip..]);
            let mut record = csv::ByteRecord::new();
            let mut starts = Vec::new();
            while reader.read_byte_record(&mut record).unwrap() {
                // The csv crate's position is where its parser resumed: after a `\r` ending
                // the record before, on the `\n` completing it. The record's first byte is
                // after it (the csv crate counts lines at `\n`).
                let p = record.position().unwrap();
                let (mut at, mut line) = (p.byte() as usize + skip, p.line());
                while matches!(file[at], b'\r' | b'\n') {
                    line += u64::from(file[at] == b'\n');
                    at += 1;
                }
                starts.push((at as u64, line));
            }
            // The csv crate's first record is the header.
            let ours: Vec<(u64, u64)> = pieces.iter().map(|p| (p.start, p.first_line)).collect();
            assert_eq!(ours, starts[1..], "seed {seed}");
            assert!(pieces.iter().all(|p| p.rows == 1));
        }
    }

    /// The coordinator's one pass finds the reference date `plan::plan` finds in a pass of its
    /// own (a file with `signup_date` for tenure, one date standing apart), and cuts the file
    /// where [`split`] cuts it.
    #[test]
    fn the_cutting_pass_finds_the_reference_date_of_the_plan() {
        let model = Model::embedded_default();
        let header = HEADER.replace(",tenure,", ",signup_date,");
        let mut file = format!("{header}\r\n");
        for i in 0..300u32 {
            let day = if i == 150 {
                "2026-11-30".to_owned()
            } else {
                format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28)
            };
            let notes = if i % 5 == 0 { "\"two\nlines\"" } else { "" };
            file.push_str(&format!(
                "{i:04}-D,Male,0,Yes,No,{day},Yes,No,DSL,No,No,No,No,No,No,Month-to-month,Yes,\
                 Electronic check,50.5,500,{notes}\n"
            ));
        }
        let planned = crate::plan::plan(
            model,
            None,
            None,
            &mut std::io::Cursor::new(file.as_bytes()),
            &opts().limits,
            &opts().mapping,
        )
        .unwrap();
        assert!(planned.reference_date.is_some());
        assert!(
            planned
                .reference_source
                .as_deref()
                .unwrap()
                .contains("passed over"),
            "{:?}",
            planned.reference_source
        );
        for n in [1, 7, 100] {
            let (cut, (date, source)) =
                split_finding_date(model, file.as_bytes(), &opts(), n).unwrap();
            assert_eq!(cut, split(model, file.as_bytes(), &opts(), n).unwrap());
            assert!(matches!(cut, Split::Pieces { .. }));
            assert_eq!(date, planned.reference_date, "pieces of {n}");
            assert_eq!(source, planned.reference_source, "pieces of {n}");
        }
    }

    #[test]
    fn transcoded_files_and_one_piece_files_are_scored_whole() {
        let model = Model::embedded_default();
        let file = awkward_file(3, 50, false, true);
        let text = String::from_utf8_lossy(&file).into_owned();
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert!(matches!(
            split(model, &utf16[..], &opts(), 10).unwrap(),
            Split::Whole { reason } if reason.contains("UTF-16LE")
        ));
        let mut latin = file.clone();
        latin.splice(HEADER.len() + 2..HEADER.len() + 2, [b'X', 0xE9]);
        assert!(matches!(
            split(model, &latin[..], &opts(), 10).unwrap(),
            Split::Whole { reason } if reason.contains("windows-1252")
        ));
        assert!(matches!(
            split(model, &file[..], &opts(), 1000).unwrap(),
            Split::Whole { .. }
        ));
    }
}
