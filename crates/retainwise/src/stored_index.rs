//! The customers index stored beside a result, for a file scored in pieces: each piece writes
//! its own part of the index (its scored rows sorted as the index sorts them, a *run*), and
//! the merge joins the runs into one stored index by a k-way merge, streaming, so no process
//! reads the whole result to index it ([`crate::customer_index`] builds the same index from
//! the result when none is stored).
//!
//! Format (little-endian): the magic `RWCIDX01`; the results' header line (u32 length, bytes);
//! the row count (u64) and the customers per level, high, medium, low (3 × u64); then one
//! record per row in the index's order (churn probability highest first, then by row):
//! millionths (u32), row (u64), byte offset in the result (u64), byte length (u32), level (u8:
//! 0 high, 1 medium, 2 low), the id's length (u16) and its bytes. A run has the same format
//! with rows and offsets counted from the piece's own first line.
//!
//! Memory: writing a run holds the piece's index (its rows, bounded by
//! `RETAINWISE_CHUNK_ROWS`); [`merge_runs`] holds one buffered reader of [`READ_BUFFER`]
//! bytes and one record per run, and writes through one buffer: about `pieces × 64 KiB`,
//! whatever the rows (3.2 MB for 50 pieces).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, Read, Write};

use crate::customer_index::Level;

const MAGIC: &[u8; 8] = b"RWCIDX01";

/// Each run's read buffer in [`merge_runs`], in bytes.
pub const READ_BUFFER: usize = 64 << 10;

/// One customer of a stored index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Churn probability in millionths.
    pub millionths: u32,
    /// Data row (1-based) in the result (in a run: in the piece's lines).
    pub row: u64,
    /// Byte offset of the row in the result (in a run: in the piece's lines).
    pub offset: u64,
    /// Length of the row in bytes, line ending included.
    pub len: u32,
    /// Its risk level.
    pub level: Level,
    /// The customer id as written in the results (at most 65,535 bytes).
    pub id: String,
}

/// What a stored index holds before its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The results' header line, without its line ending.
    pub header_line: String,
    /// Records that follow.
    pub rows: u64,
    /// Customers per level: high, medium, low.
    pub counts: [u64; 3],
}

/// Writes `head`.
///
/// # Errors
/// The writer's; a header line over 4 GiB.
pub fn write_head(out: &mut impl Write, head: &Head) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    let line = head.header_line.as_bytes();
    let len = u32::try_from(line.len()).map_err(|_| std::io::Error::other("header too long"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(line)?;
    out.write_all(&head.rows.to_le_bytes())?;
    for c in head.counts {
        out.write_all(&c.to_le_bytes())?;
    }
    Ok(())
}

/// Writes one record.
///
/// # Errors
/// The writer's; an id over 65,535 bytes.
pub fn write_record(out: &mut impl Write, r: &Record) -> std::io::Result<()> {
    let id_len = u16::try_from(r.id.len()).map_err(|_| std::io::Error::other("id too long"))?;
    out.write_all(&r.millionths.to_le_bytes())?;
    out.write_all(&r.row.to_le_bytes())?;
    out.write_all(&r.offset.to_le_bytes())?;
    out.write_all(&r.len.to_le_bytes())?;
    out.write_all(&[r.level as u8])?;
    out.write_all(&id_len.to_le_bytes())?;
    out.write_all(r.id.as_bytes())
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("stored customers index: {what}"),
    )
}

fn array<const N: usize>(input: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    input.read_exact(&mut b)?;
    Ok(b)
}

/// Reads a stored index's head.
///
/// # Errors
/// Reading, or bytes that are not a stored index.
pub fn read_head(input: &mut impl Read) -> std::io::Result<Head> {
    if &array::<8>(input)? != MAGIC {
        return Err(bad("not a stored index"));
    }
    let len = u32::from_le_bytes(array(input)?) as usize;
    let mut line = vec![0u8; len];
    input.read_exact(&mut line)?;
    let header_line = String::from_utf8(line).map_err(|_| bad("header is not UTF-8"))?;
    let rows = u64::from_le_bytes(array(input)?);
    let mut counts = [0u64; 3];
    for c in &mut counts {
        *c = u64::from_le_bytes(array(input)?);
    }
    Ok(Head {
        header_line,
        rows,
        counts,
    })
}

/// Reads the next record.
///
/// # Errors
/// Reading, or bytes that are not a record.
pub fn read_record(input: &mut impl Read) -> std::io::Result<Record> {
    let millionths = u32::from_le_bytes(array(input)?);
    let row = u64::from_le_bytes(array(input)?);
    let offset = u64::from_le_bytes(array(input)?);
    let len = u32::from_le_bytes(array(input)?);
    let level = match array::<1>(input)?[0] {
        0 => Level::High,
        1 => Level::Medium,
        2 => Level::Low,
        _ => return Err(bad("unknown level")),
    };
    let id_len = u16::from_le_bytes(array(input)?) as usize;
    let mut id = vec![0u8; id_len];
    input.read_exact(&mut id)?;
    let id = String::from_utf8(id).map_err(|_| bad("id is not UTF-8"))?;
    Ok(Record {
        millionths,
        row,
        offset,
        len,
        level,
        id,
    })
}

/// One run to merge: where it is read from, and the rows and bytes of the result before its
/// piece's lines.
pub struct Run<R> {
    /// The run's bytes.
    pub input: R,
    /// Data rows before the piece's first row.
    pub rows_before: u64,
    /// Bytes of the result before the piece's first line.
    pub bytes_before: u64,
}

/// Joins `runs` (in file order) into one stored index written to `out`: a k-way merge on
/// (churn probability highest first, row), each run read through a [`READ_BUFFER`] buffer.
/// Returns the rows written.
///
/// # Errors
/// Reading a run or writing.
pub fn merge_runs<R: Read>(runs: Vec<Run<R>>, out: impl Write) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(READ_BUFFER, out);
    let mut readers = Vec::with_capacity(runs.len());
    let mut head: Option<Head> = None;
    let mut lefts = Vec::with_capacity(runs.len());
    for run in runs {
        let mut reader = std::io::BufReader::with_capacity(READ_BUFFER, run.input);
        let h = read_head(&mut reader)?;
        lefts.push(h.rows);
        match &mut head {
            None => head = Some(h),
            Some(all) => {
                all.rows += h.rows;
                for (a, b) in all.counts.iter_mut().zip(h.counts) {
                    *a += b;
                }
            }
        }
        readers.push((reader, run.rows_before, run.bytes_before));
    }
    let Some(head) = head else {
        return Err(bad("no runs to merge"));
    };
    write_head(&mut out, &head)?;
    let next = |k: usize,
                readers: &mut Vec<(std::io::BufReader<R>, u64, u64)>,
                lefts: &mut Vec<u64>|
     -> std::io::Result<Option<Record>> {
        if lefts[k] == 0 {
            return Ok(None);
        }
        lefts[k] -= 1;
        let (reader, rows_before, bytes_before) = &mut readers[k];
        let mut r = read_record(reader)?;
        r.row += *rows_before;
        r.offset += *bytes_before;
        Ok(Some(r))
    };
    let mut heads: Vec<Option<Record>> = Vec::with_capacity(readers.len());
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for k in 0..readers.len() {
        let r = next(k, &mut readers, &mut lefts)?;
        if let Some(r) = &r {
            heap.push((r.millionths, Reverse(r.row), k));
        }
        heads.push(r);
    }
    let mut written = 0u64;
    while let Some((_, _, k)) = heap.pop() {
        let r = heads[k].take().expect("a run in the heap has a head");
        write_record(&mut out, &r)?;
        written += 1;
        if let Some(n) = next(k, &mut readers, &mut lefts)? {
            heap.push((n.millionths, Reverse(n.row), k));
            heads[k] = Some(n);
        }
    }
    if written != head.rows {
        return Err(bad("the runs hold fewer records than their heads say"));
    }
    out.flush()?;
    Ok(written)
}

/// Reads a whole stored index: its head and its records in order (a [`BufRead`] so each
/// record is not a read call).
///
/// # Errors
/// Reading, or bytes that are not a stored index.
pub fn read_all(
    mut input: impl BufRead,
    mut each: impl FnMut(Record) -> std::io::Result<()>,
) -> std::io::Result<Head> {
    let head = read_head(&mut input)?;
    for _ in 0..head.rows {
        each(read_record(&mut input)?)?;
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/self/status` figure in KiB (Linux).
    fn status_kib(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The memory of the merge, measured (not a timed test; run alone, as other tests in the
    /// process would count): 1,000,000 rows in 20 runs written to disk, the peak resident
    /// set reset (`/proc/self/clear_refs`), merged, the new peak read; then the same for
    /// loading the merged index, for comparison.
    /// `cargo test --workspace --lib stored_index::tests::merge_memory -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn merge_memory_of_a_million_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (pieces, per) = (20u64, 50_000u64);
        let mut runs = Vec::new();
        for k in 0..pieces {
            let path = dir.path().join(format!("{k}.index"));
            let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let head = Head {
                header_line: "customer_id,churn_probability,risk_level".to_owned(),
                rows: per,
                counts: [0, 0, per],
            };
            write_head(&mut w, &head).unwrap();
            for i in 0..per {
                let record = Record {
                    millionths: ((per - i) * 1_000_000 / per) as u32,
                    row: i + 1,
                    offset: i * 120,
                    len: 120,
                    level: Level::Low,
                    id: format!("{k:02}{i:07}-CUST"),
                };
                write_record(&mut w, &record).unwrap();
            }
            w.flush().unwrap();
            runs.push((path, k * per, k * per * 120));
        }
        let out = dir.path().join("merged.index");
        let runs: Vec<_> = runs
            .into_iter()
            .map(|(path, rows_before, bytes_before)| Run {
                input: std::fs::File::open(path).unwrap(),
                rows_before,
                bytes_before,
            })
            .collect();
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let before = status_kib("VmRSS:");
        let written = merge_runs(runs, std::fs::File::create(&out).unwrap()).unwrap();
        let merged = status_kib("VmHWM:");
        assert_eq!(written, pieces * per);
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let index = crate::customer_index::CustomerIndex::from_stored(std::io::BufReader::new(
            std::fs::File::open(&out).unwrap(),
        ))
        .unwrap();
        let loaded = status_kib("VmHWM:");
        assert_eq!(index.len() as u64, written);
        eprintln!(
            "merge of {written} rows in {pieces} runs: resident {before} KiB before, peak {merged} KiB \
             during (+{} KiB); loading the merged index: peak {loaded} KiB (+{} KiB)",
            merged.saturating_sub(before),
            loaded.saturating_sub(before)
        );
    }
}
