//! The customers of a scored file, indexed for the customers table: 1,000,000 rows must page,
//! filter and sort fast without parsing the whole results CSV per request.
//!
//! On the first view of a prediction, its results object is streamed once (constant memory
//! besides the index) and each row's customer id, churn probability, risk level and byte range
//! in the object are kept, sorted once by probability. A page then filters the index in memory
//! and reads only its own rows from storage by byte range ([`Storage::get_ranges`]). Indexes of
//! the last few predictions viewed are kept in an LRU ([`IndexCache`]) by results object and
//! version: a completed prediction's results change only when an erasure removes a customer's
//! row, which counts up its version (`predictions.erased_customers`), so a page never reads
//! byte ranges of an older object; a row read back whose id is not the index's is refused.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::domain::ObjectKey;
use crate::storage::{Storage, StorageError};

/// A risk level as written in the results' `risk_level` column: the model's own type.
pub type Level = retainwise_model::RiskLevel;

/// One customer in the index: 32 bytes, plus the id's bytes in the shared arena.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Byte offset of the row in the results object.
    pub offset: u64,
    id_start: u32,
    /// Length of the row in bytes (line ending included).
    pub len: u32,
    /// Data row number in the results (1 = first row after the header).
    pub row: u32,
    /// Churn probability in millionths, as written (6 decimals).
    pub millionths: u32,
    id_len: u16,
    /// The row's risk level.
    pub level: Level,
}

/// Why an index could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the results object failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The results object is not what the scorer writes (a bug or a foreign object).
    #[error("the results file cannot be read: {0}")]
    Format(String),
}

/// Filters of the customers table.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this risk level.
    pub level: Option<Level>,
    /// Only customer ids containing this text (ASCII case ignored).
    pub search: Option<String>,
    /// Lowest probability first (default: highest first).
    pub ascending: bool,
}

/// The indexed customers of one results object.
pub struct CustomerIndex {
    /// Sorted by churn probability, highest first, then by row.
    entries: Vec<Entry>,
    /// `by_row[row - 1]` is the position of that row in `entries`.
    by_row: Vec<u32>,
    ids: String,
    /// Customers per level: high, medium, low.
    pub counts: [u64; 3],
    /// Positions of the columns read back from a row.
    columns: Columns,
}

#[derive(Clone, Copy, Debug)]
struct Columns {
    id: usize,
    probability: usize,
    retention: Option<usize>,
    level: usize,
    model: Option<usize>,
    risk: Option<usize>,
    protective: Option<usize>,
    summary: Option<usize>,
    recommendation: Option<usize>,
    quality: Option<usize>,
}

impl Columns {
    /// The scorer's columns in the results' `header`.
    fn of(header: &csv::StringRecord) -> Result<Columns, IndexError> {
        let find = |name: &str| header.iter().position(|h| h == name);
        let need =
            |name: &str| find(name).ok_or_else(|| IndexError::Format(format!("no {name} column")));
        Ok(Columns {
            // `customerID`: results imported from the original service keep its column name.
            id: find("customer_id")
                .or_else(|| find("customerID"))
                .ok_or_else(|| IndexError::Format("no customer_id column".to_owned()))?,
            probability: need("churn_probability")?,
            level: need("risk_level")?,
            retention: find("retention_probability"),
            model: find("model_version"),
            risk: find("risk_factors"),
            protective: find("protective_factors"),
            summary: find("summary"),
            recommendation: find("recommendation"),
            quality: find("data_quality"),
        })
    }
}

/// One customer read back from the results, for the table and the explanation page.
#[derive(Clone, Debug)]
pub struct Customer {
    /// Data row number in the results.
    pub row: u32,
    /// The customer id exactly as given in the uploaded file (results are stored raw).
    pub customer_id: String,
    /// Churn probability 0–1.
    pub churn_probability: f64,
    /// Retention probability 0–1.
    pub retention_probability: f64,
    /// The risk level.
    pub level: Level,
    /// The model that scored the row.
    pub model_version: String,
    /// Up to three columns that raise the risk, largest first.
    pub risk_factors: Vec<Factor>,
    /// Up to three columns that lower it.
    pub protective_factors: Vec<Factor>,
    /// The one-line summary.
    pub summary: String,
    /// The recommendation.
    pub recommendation: String,
    /// The row's flagged values (`"TotalCharges: missing"`), empty for a clean row (and for
    /// results written before the column existed).
    pub data_quality: String,
}

/// One explanation factor as written in the results (`{"feature","value","impact"}`).
#[derive(Clone, Debug, Deserialize)]
pub struct Factor {
    /// The column.
    pub feature: String,
    /// The customer's value of it.
    pub value: serde_json::Value,
    /// Effect on the churn probability in percentage points.
    pub impact: f64,
    /// Set when the value was not usable as given (`"missing"`, `"unknown category"`,
    /// `"outside training range"`): the effect is the model's rule for such a value, not a
    /// fact about the customer.
    #[serde(default)]
    pub quality: Option<String>,
    /// A correlated column whose effect is counted in this one's (total charges with tenure:
    /// [`retainwise_model::explain::GROUPS`]).
    #[serde(default)]
    pub with: Option<String>,
}

impl CustomerIndex {
    /// Streams the results object at `key` and indexes it.
    ///
    /// Errors: storage failures, or an object without the scorer's columns.
    pub async fn build(storage: &Storage, key: &ObjectKey) -> Result<CustomerIndex, IndexError> {
        let mut stream = storage.get_stream(key).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let parser = tokio::task::spawn_blocking(move || {
            Self::parse(ChannelReader {
                rx,
                current: Bytes::new(),
            })
        });
        while let Some(chunk) = stream.next().await {
            // On a failed read, returning drops `tx`; the parser ends at once and is discarded.
            let chunk = chunk?;
            if tx.send(chunk).await.is_err() {
                break; // the parser stopped early: its error is returned below
            }
        }
        drop(tx);
        parser
            .await
            .map_err(|e| IndexError::Format(format!("indexing stopped: {e}")))?
    }

    /// Indexes a results CSV read from `input` (blocking).
    pub fn parse(input: impl Read) -> Result<CustomerIndex, IndexError> {
        let mut reader = csv::ReaderBuilder::new().from_reader(input);
        let header = reader
            .headers()
            .map_err(|e| IndexError::Format(e.to_string()))?
            .clone();
        let columns = Columns::of(&header)?;
        let mut entries = Vec::new();
        let mut ids = String::new();
        let mut counts = [0u64; 3];
        let mut record = csv::ByteRecord::new();
        let mut row: u32 = 0;
        loop {
            let start = reader.position().byte();
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(IndexError::Format(e.to_string())),
            }
            let end = reader.position().byte();
            row = row
                .checked_add(1)
                .ok_or_else(|| IndexError::Format("more than 4 billion rows".to_owned()))?;
            let text = |i: usize| std::str::from_utf8(record.get(i).unwrap_or_default()).ok();
            let p: f64 = text(columns.probability)
                .and_then(|t| t.parse().ok())
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    IndexError::Format(format!("row {row}: churn_probability is not 0–1"))
                })?;
            let level = text(columns.level)
                .and_then(|t| t.parse::<Level>().ok())
                .ok_or_else(|| IndexError::Format(format!("row {row}: unknown risk_level")))?;
            counts[level as usize] += 1;
            let id = text(columns.id).unwrap_or("");
            let id = &id[..floor_char_boundary(id, u16::MAX as usize)];
            let id_start = u32::try_from(ids.len())
                .map_err(|_| IndexError::Format("customer ids too long to index".to_owned()))?;
            ids.push_str(id);
            entries.push(Entry {
                offset: start,
                id_start,
                len: u32::try_from(end - start)
                    .map_err(|_| IndexError::Format(format!("row {row} is too long")))?,
                row,
                millionths: (p * 1e6).round() as u32,
                id_len: id.len() as u16,
                level,
            });
        }
        entries.sort_unstable_by(|a, b| b.millionths.cmp(&a.millionths).then(a.row.cmp(&b.row)));
        let mut by_row = vec![0u32; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            by_row[e.row as usize - 1] = i as u32;
        }
        Ok(CustomerIndex {
            entries,
            by_row,
            ids,
            counts,
            columns,
        })
    }

    /// Writes this index as a run of a stored index ([`crate::stored_index`]): its entries in
    /// order, with `header_line` (the results' header, no line ending).
    ///
    /// # Errors
    /// The writer's.
    /// `shift` is taken off every offset (the bytes of a header line put before a piece's
    /// lines to parse them).
    pub fn write_run(
        &self,
        header_line: &str,
        shift: u64,
        mut out: impl std::io::Write,
    ) -> std::io::Result<()> {
        use crate::stored_index::{write_head, write_record, Head, Record};
        let head = Head {
            header_line: header_line.to_owned(),
            rows: self.entries.len() as u64,
            counts: self.counts,
        };
        write_head(&mut out, &head)?;
        for e in &self.entries {
            let record = Record {
                millionths: e.millionths,
                row: u64::from(e.row),
                offset: e.offset.checked_sub(shift).ok_or_else(|| {
                    std::io::Error::other("a row starts inside the header put before it")
                })?,
                len: e.len,
                level: e.level,
                id: self.id(e).to_owned(),
            };
            write_record(&mut out, &record)?;
        }
        out.flush()
    }

    /// Loads a stored index ([`crate::stored_index`], written by the merge of a file scored
    /// in pieces): its records are already in the index's order, so nothing is parsed or
    /// sorted.
    ///
    /// # Errors
    /// Bytes that are not a stored index, or one that does not fit (over 4 billion rows).
    pub fn from_stored(input: impl std::io::BufRead) -> Result<CustomerIndex, IndexError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut ids = String::new();
        let head = crate::stored_index::read_all(input, |r| {
            let too_big = || std::io::Error::other("more than 4 billion rows or bytes of ids");
            let id_start = u32::try_from(ids.len()).map_err(|_| too_big())?;
            ids.push_str(&r.id);
            entries.push(Entry {
                offset: r.offset,
                id_start,
                len: r.len,
                row: u32::try_from(r.row).map_err(|_| too_big())?,
                millionths: r.millionths,
                id_len: r.id.len() as u16,
                level: r.level,
            });
            Ok(())
        })
        .map_err(|e| IndexError::Format(e.to_string()))?;
        let mut header = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(head.header_line.as_bytes());
        let mut names = csv::StringRecord::new();
        header
            .read_record(&mut names)
            .map_err(|e| IndexError::Format(e.to_string()))?;
        let columns = Columns::of(&names)?;
        let mut by_row = vec![u32::MAX; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            let slot = (e.row as usize)
                .checked_sub(1)
                .and_then(|r| by_row.get_mut(r))
                .filter(|s| **s == u32::MAX)
                .ok_or_else(|| IndexError::Format(format!("row {} is out of place", e.row)))?;
            *slot = i as u32;
        }
        Ok(CustomerIndex {
            entries,
            by_row,
            ids,
            counts: head.counts,
            columns,
        })
    }

    /// Customers indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the results have no rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The customer id of `entry`.
    pub fn id(&self, entry: &Entry) -> &str {
        let start = entry.id_start as usize;
        &self.ids[start..start + entry.id_len as usize]
    }

    /// The entry of data row `row` (1-based), if any.
    pub fn by_row(&self, row: u32) -> Option<&Entry> {
        let i = *self.by_row.get((row as usize).checked_sub(1)?)?;
        self.entries.get(i as usize)
    }

    /// Page `page` (0-based) of `per_page` customers matching `filter`, in the filter's order,
    /// and how many match in all. One pass over the index: O(rows), no allocation per row.
    pub fn page(&self, filter: &Filter, page: usize, per_page: usize) -> (u64, Vec<Entry>) {
        let needle = filter
            .search
            .as_deref()
            .map(str::as_bytes)
            .filter(|n| !n.is_empty());
        let matches = |e: &&Entry| {
            filter.level.is_none_or(|l| e.level == l)
                && needle.is_none_or(|n| contains_ignore_ascii_case(self.id(e).as_bytes(), n))
        };
        let skip = page.saturating_mul(per_page);
        let mut total = 0u64;
        let mut out = Vec::with_capacity(per_page);
        let mut visit = |e: &Entry| {
            if matches(&e) {
                if total as usize >= skip && out.len() < per_page {
                    out.push(*e);
                }
                total += 1;
            }
        };
        if filter.ascending {
            self.entries.iter().rev().for_each(&mut visit);
        } else {
            self.entries.iter().for_each(&mut visit);
        }
        (total, out)
    }

    /// Reads the rows of `entries` from the results object at `key`, in the same order.
    ///
    /// Errors: storage failures, or a row that no longer parses (the object changed).
    pub async fn read(
        &self,
        storage: &Storage,
        key: &ObjectKey,
        entries: &[Entry],
    ) -> Result<Vec<Customer>, IndexError> {
        let ranges: Vec<_> = entries
            .iter()
            .map(|e| e.offset..e.offset + u64::from(e.len))
            .collect();
        let parts = storage.get_ranges(key, &ranges).await?;
        entries
            .iter()
            .zip(parts)
            .map(|(e, bytes)| self.customer(e, &bytes))
            .collect()
    }

    fn customer(&self, entry: &Entry, bytes: &[u8]) -> Result<Customer, IndexError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes);
        let mut record = csv::StringRecord::new();
        if !reader
            .read_record(&mut record)
            .map_err(|e| IndexError::Format(e.to_string()))?
        {
            return Err(IndexError::Format(format!("row {} is empty", entry.row)));
        }
        let c = self.columns;
        let text = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").to_owned();
        let factors = |i: Option<usize>| -> Vec<Factor> {
            i.and_then(|i| record.get(i))
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default()
        };
        let p = f64::from(entry.millionths) / 1e6;
        if record.get(c.id) != Some(self.id(entry)) {
            return Err(IndexError::Format(format!(
                "row {} is not the one indexed (the results changed since): reload the page",
                entry.row
            )));
        }
        Ok(Customer {
            row: entry.row,
            customer_id: text(Some(c.id)),
            churn_probability: p,
            retention_probability: c
                .retention
                .and_then(|i| record.get(i))
                .and_then(|t| t.parse().ok())
                .unwrap_or(1.0 - p),
            level: entry.level,
            model_version: text(c.model),
            risk_factors: factors(c.risk),
            protective_factors: factors(c.protective),
            summary: text(c.summary),
            recommendation: text(c.recommendation),
            data_quality: text(c.quality),
        })
    }
}

/// The index stored beside the results object `key` (`….index` for `….csv`, written by the
/// merge of a file scored in pieces), if there is one.
async fn stored(storage: &Storage, key: &ObjectKey) -> Result<Option<CustomerIndex>, IndexError> {
    let Some(index_key) = ObjectKey::stored_index_of(key) else {
        return Ok(None);
    };
    let mut stream = match storage.get_stream(&index_key).await {
        Ok(stream) => stream,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let loader = tokio::task::spawn_blocking(move || {
        CustomerIndex::from_stored(std::io::BufReader::with_capacity(
            64 << 10,
            ChannelReader {
                rx,
                current: Bytes::new(),
            },
        ))
    });
    while let Some(chunk) = stream.next().await {
        if tx.send(chunk?).await.is_err() {
            break;
        }
    }
    drop(tx);
    loader
        .await
        .map_err(|e| IndexError::Format(format!("loading stopped: {e}")))?
        .map(Some)
}

/// The largest char boundary of `s` at or below `max`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A blocking reader over chunks sent from the async side.
pub(crate) struct ChannelReader {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Bytes>,
    pub(crate) current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The indexes of the last few predictions viewed, least recently used evicted first. Two
/// requests for the same prediction share one build.
pub struct IndexCache {
    capacity: usize,
    /// (results object key, its index once built), least recently used first.
    slots: Mutex<Vec<(String, Slot)>>,
}

/// One cached index: built once, shared by concurrent requests.
type Slot = Arc<OnceCell<Arc<CustomerIndex>>>;

impl IndexCache {
    /// An empty cache keeping at most `capacity` indexes.
    pub fn new(capacity: usize) -> IndexCache {
        IndexCache {
            capacity: capacity.max(1),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The index of version `version` of the results object `key` (its prediction's
    /// `erased_customers`), built on first use. A failed build is not cached: the next
    /// request tries again.
    ///
    /// Errors: those of [`CustomerIndex::build`].
    pub async fn get(
        &self,
        storage: &Storage,
        key: &ObjectKey,
        version: i64,
    ) -> Result<Arc<CustomerIndex>, IndexError> {
        let slot = format!("{}#{version}", key.as_str());
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // An older version of the same object is of no more use.
            let prefix = format!("{}#", key.as_str());
            slots.retain(|(k, _)| k == &slot || !k.starts_with(&prefix));
            let cell = match slots.iter().position(|(k, _)| k == &slot) {
                Some(i) => slots.remove(i).1,
                None => Arc::new(OnceCell::new()),
            };
            slots.push((slot.clone(), cell.clone()));
            if slots.len() > self.capacity {
                slots.remove(0);
            }
            cell
        };
        let index = cell
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let index = match stored(storage, key).await? {
                    Some(index) => index,
                    None => CustomerIndex::build(storage, key).await?,
                };
                tracing::info!(
                    object = key.as_str(),
                    rows = index.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "customer_index_built"
                );
                Ok::<_, IndexError>(Arc::new(index))
            })
            .await?;
        Ok(index.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESULTS: &str = "customer_id,churn_probability,retention_probability,risk_level,model_version,risk_factors,protective_factors,summary,recommendation\n\
        A-1,0.100000,0.900000,low,m,[],[],\"s, one\",r\n\
        b-2,0.900000,0.100000,high,m,\"[{\"\"feature\"\":\"\"tenure\"\",\"\"value\"\":\"\"2\"\",\"\"impact\"\":12.5}]\",[],s,r\n\
        C-3,0.500000,0.500000,medium,m,[],[],\"multi\nline\",r\n\
        a-4,0.900000,0.100000,high,m,[],[],s,r\n";

    #[test]
    fn sorts_filters_and_pages() {
        let index = CustomerIndex::parse(RESULTS.as_bytes()).unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(index.counts, [2, 1, 1]);
        let (total, page) = index.page(&Filter::default(), 0, 10);
        assert_eq!(total, 4);
        let rows: Vec<u32> = page.iter().map(|e| e.row).collect();
        assert_eq!(rows, [2, 4, 3, 1], "highest first, ties by row");
        let asc = Filter {
            ascending: true,
            ..Filter::default()
        };
        assert_eq!(index.page(&asc, 0, 1).1[0].row, 1);
        let high = Filter {
            level: Some(Level::High),
            ..Filter::default()
        };
        let (total, page) = index.page(&high, 1, 1);
        assert_eq!((total, page.len(), page[0].row), (2, 1, 4));
        let search = Filter {
            search: Some("A-".to_owned()),
            ..Filter::default()
        };
        let (total, page) = index.page(&search, 0, 10);
        assert_eq!(total, 2, "A-1 and a-4, case ignored");
        assert_eq!(index.id(&page[0]), "a-4");
        assert_eq!(index.by_row(3).unwrap().millionths, 500_000);
        assert!(index.by_row(5).is_none() && index.by_row(0).is_none());
    }

    #[test]
    fn byte_ranges_hold_exactly_one_row() {
        let index = CustomerIndex::parse(RESULTS.as_bytes()).unwrap();
        for row in 1..=4 {
            let e = *index.by_row(row).unwrap();
            let bytes =
                &RESULTS.as_bytes()[e.offset as usize..(e.offset + u64::from(e.len)) as usize];
            let c = index.customer(&e, bytes).unwrap();
            assert_eq!(c.row, row);
            assert_eq!(c.customer_id, index.id(&e));
        }
        let b2 = index.by_row(2).unwrap();
        let bytes =
            &RESULTS.as_bytes()[b2.offset as usize..(b2.offset + u64::from(b2.len)) as usize];
        let c = index.customer(b2, bytes).unwrap();
        assert_eq!(c.risk_factors[0].feature, "tenure");
        assert_eq!(c.risk_factors[0].impact, 12.5);
        let c3 = index.by_row(3).unwrap();
        let bytes =
            &RESULTS.as_bytes()[c3.offset as usize..(c3.offset + u64::from(c3.len)) as usize];
        assert_eq!(index.customer(c3, bytes).unwrap().summary, "multi\nline");
    }

    /// An entry as compared: offset, length, row, millionths, level, id.
    type Shown = (u64, u32, u32, u32, Level, String);

    /// What two indexes must agree on: every entry in order, with its id, and the counts.
    fn shown(index: &CustomerIndex) -> (Vec<Shown>, [u64; 3]) {
        let entries = index
            .entries
            .iter()
            .map(|e| {
                (
                    e.offset,
                    e.len,
                    e.row,
                    e.millionths,
                    e.level,
                    index.id(e).to_owned(),
                )
            })
            .collect();
        (entries, index.counts)
    }

    /// A results file cut into pieces at any rows, each piece's index written as a run and
    /// the runs merged, loads as the index built from the whole file: the same entries in the
    /// same order (ties in probability across pieces by row), the same rows by number.
    #[test]
    fn runs_of_pieces_merge_into_the_index_of_the_whole_file() {
        let header =
            "customer_id,churn_probability,retention_probability,risk_level,model_version,summary";
        let mut lines = Vec::new();
        for i in 0..500u32 {
            // Few distinct probabilities: many ties, across every piece.
            let p = f64::from((i * 37) % 11) / 10.0;
            let level = if p >= 0.7 {
                "high"
            } else if p >= 0.4 {
                "medium"
            } else {
                "low"
            };
            let summary = if i % 9 == 0 {
                "\"two\nlines, quoted\""
            } else {
                "s"
            };
            lines.push(format!("C-{i},{p:.6},{:.6},{level},m,{summary}\n", 1.0 - p));
        }
        let whole = format!("{header}\n{}", lines.concat());
        let expected = CustomerIndex::parse(whole.as_bytes()).unwrap();
        for cuts in [vec![1, 2, 250, 499], vec![100, 200, 300, 400], vec![]] {
            let mut bounds = vec![0];
            bounds.extend(&cuts);
            bounds.push(lines.len());
            let mut runs = Vec::new();
            let (mut rows_before, mut bytes_before) = (0u64, 0u64);
            for (seq, w) in bounds.windows(2).enumerate() {
                let mut piece = lines[w[0]..w[1]].concat();
                if seq == 0 {
                    piece = format!("{header}\n{piece}");
                }
                let prefix = if seq == 0 {
                    String::new()
                } else {
                    format!("{header}\n")
                };
                let index = CustomerIndex::parse(format!("{prefix}{piece}").as_bytes()).unwrap();
                let mut run = Vec::new();
                index
                    .write_run(header, prefix.len() as u64, &mut run)
                    .unwrap();
                runs.push(crate::stored_index::Run {
                    input: std::io::Cursor::new(run),
                    rows_before,
                    bytes_before,
                });
                rows_before += (w[1] - w[0]) as u64;
                bytes_before += piece.len() as u64;
            }
            let mut stored = Vec::new();
            let written = crate::stored_index::merge_runs(runs, &mut stored).unwrap();
            assert_eq!(written, 500);
            let loaded = CustomerIndex::from_stored(&stored[..]).unwrap();
            assert_eq!(shown(&loaded), shown(&expected), "cut at {cuts:?}");
            for row in 1..=500 {
                let (a, b) = (loaded.by_row(row).unwrap(), expected.by_row(row).unwrap());
                assert_eq!((a.offset, a.len, a.row), (b.offset, b.len, b.row));
            }
            let search = Filter {
                search: Some("c-1".to_owned()),
                ascending: true,
                ..Filter::default()
            };
            let rows = |i: &CustomerIndex| -> Vec<u32> {
                i.page(&search, 1, 7).1.iter().map(|e| e.row).collect()
            };
            assert_eq!(rows(&loaded), rows(&expected));
        }
        assert!(CustomerIndex::from_stored(&b"RWCIDX0"[..]).is_err());
    }

    #[test]
    fn refuses_foreign_files() {
        assert!(CustomerIndex::parse("a,b\n1,2\n".as_bytes()).is_err());
        let bad = "customer_id,churn_probability,risk_level\nx,1.5,high\n";
        assert!(CustomerIndex::parse(bad.as_bytes()).is_err());
    }
}
