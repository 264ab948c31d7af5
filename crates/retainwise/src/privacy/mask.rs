//! Masked exports: the personal columns of a results download or an Excel export shown in
//! full, partly, or as a stable pseudonym (`mask=none|partial|full`, the choices of the
//! original's Excel export).
//!
//! The personal column of a scored file is `customer_id`: the scorer writes only the id and the
//! model's figures (`retainwise_model::score::OUTPUT_HEADER`, plus `shap_<input>` numbers), and a
//! name, e-mail or phone column of the upload is never a model input (training drops text
//! columns with nearly one value per row as identifiers), so no other column of an export can
//! carry one. [`PERSONAL_COLUMNS`] lists what is masked wherever it appears, so an export whose
//! columns grow one of them is masked too.
//!
//! Who gets what ([`Mask::for_role`]): analysts and above download what they ask for (none by
//! default); a viewer only a masked export (full by default), and asking for `none` is refused.

use std::io::{Read, Write};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use super::Salt;
use crate::domain::Role;
use crate::http::ApiError;
use crate::storage::StorageError;

/// Column names masked in an export, compared after lower-casing and dropping `_`, `-` and
/// spaces (`customer_id`, `Customer ID`, `email`, `phone_number`, …).
pub const PERSONAL_COLUMNS: &[&str] = &[
    "customerid",
    "customer",
    "name",
    "customername",
    "fullname",
    "firstname",
    "lastname",
    "email",
    "emailaddress",
    "mail",
    "phone",
    "phonenumber",
    "mobile",
    "telephone",
];

/// How an export shows the personal columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// As stored.
    None,
    /// A few characters kept, the rest starred: `7590-VHVEG` → `75**-VH**`.
    Partial,
    /// A stable pseudonym per customer (10 hex digits of the organisation's keyed hash).
    Full,
}

impl Mask {
    /// The query value and the audit log's text: `none`, `partial`, `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mask::None => "none",
            Mask::Partial => "partial",
            Mask::Full => "full",
        }
    }

    /// The mask `raw` names. Errors: a 400 naming the value and the choices.
    pub fn parse(raw: &str) -> Result<Mask, ApiError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Mask::None),
            "partial" => Ok(Mask::Partial),
            "full" => Ok(Mask::Full),
            _ => Err(ApiError::BadRequest(format!(
                "mask={raw:?} is not a mask: use none, partial or full"
            ))),
        }
    }

    /// The mask an export by a member with `role` uses, given the `mask` query value
    /// (`None` when absent): analysts and above get what they ask for, `none` by default;
    /// viewers `full` by default.
    ///
    /// Errors: 400 for an unknown value; 403 for a viewer asking for `none`, naming what to ask
    /// for instead.
    pub fn for_role(role: Role, requested: Option<&str>) -> Result<Mask, ApiError> {
        let requested = requested.map(Mask::parse).transpose()?;
        match (role >= Role::Analyst, requested) {
            (true, asked) => Ok(asked.unwrap_or(Mask::None)),
            (false, None) => Ok(Mask::Full),
            (false, Some(Mask::None)) => Err(ApiError::Forbidden(
                "a viewer downloads customer rows masked only: use mask=partial or mask=full \
                 (an analyst or above may download them unmasked)"
                    .to_owned(),
            )),
            (false, Some(asked)) => Ok(asked),
        }
    }
}

/// The `mask` query parameter of an export of customer rows (`?mask=none|partial|full`);
/// absent, the caller's role decides.
#[derive(Debug, Default, serde::Deserialize)]
pub struct MaskQuery {
    /// The value as given.
    pub mask: Option<String>,
}

impl MaskQuery {
    /// The mask a member with `role` exports with ([`Mask::for_role`]).
    ///
    /// Errors: 400 for a query that does not read or an unknown mask, 403 for a viewer asking
    /// for `none`.
    pub fn decide(
        query: Result<axum::extract::Query<MaskQuery>, axum::extract::rejection::QueryRejection>,
        role: Role,
    ) -> Result<Mask, ApiError> {
        let axum::extract::Query(query) = query.map_err(|e| {
            ApiError::BadRequest(format!("{}; mask is none, partial or full", e.body_text()))
        })?;
        Mask::for_role(role, query.mask.as_deref())
    }

    /// [`MaskQuery::decide`], a refusal by role written to the audit log as `access.refused`
    /// on `route` (`GET /api/predictions/{id}/results`), like a route the role may not use.
    ///
    /// Errors: those of [`MaskQuery::decide`]; the database's.
    pub async fn decide_audited(
        query: Result<axum::extract::Query<MaskQuery>, axum::extract::rejection::QueryRejection>,
        role: Role,
        pool: &sqlx::AnyPool,
        actor: &crate::audit::Actor,
        route: &str,
    ) -> Result<Mask, ApiError> {
        match Self::decide(query, role) {
            Err(ApiError::Forbidden(why)) => {
                let outcome = crate::audit::Outcome::Refused(why.clone());
                let action = crate::audit::Action::AccessRefused;
                crate::audit::record(pool, actor, action, Some(("route", route)), &outcome).await?;
                Err(ApiError::Forbidden(why))
            }
            other => other,
        }
    }
}

/// A mask with the organisation's salt: what an export applies to each personal cell.
#[derive(Debug, Clone)]
pub struct Masker {
    mask: Mask,
    salt: Salt,
}

impl Masker {
    /// `mask` with `salt` (the organisation's, [`Salt::of`]).
    pub fn new(mask: Mask, salt: Salt) -> Masker {
        Masker { mask, salt }
    }

    /// The mask applied.
    pub fn mask(&self) -> Mask {
        self.mask
    }

    /// `value` as this mask shows it; an empty cell stays empty.
    pub fn apply(&self, value: &str) -> String {
        if value.trim().is_empty() {
            return value.to_owned();
        }
        match self.mask {
            Mask::None => value.to_owned(),
            Mask::Partial => partial(value),
            Mask::Full => self.salt.pseudonym(value),
        }
    }

    /// Masks the customer ids of a JSON document (a validation report) in place: every string
    /// under a `customer_id` or `customer_ids` key, the `value` of an object whose `column` is
    /// a personal column (a row issue about the id itself), and an object's id where its other
    /// texts quote it (a reason such as `customer id "0004-SYNT" is also on row 5`; ids of at
    /// least three characters, so a short id does not garble the words). Everything else is
    /// kept: a report names columns and models, which are not personal.
    pub fn mask_json(&self, doc: &mut serde_json::Value) {
        use serde_json::Value;
        match doc {
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_json(v)),
            Value::Object(map) => {
                let about_personal = map
                    .get("column")
                    .and_then(Value::as_str)
                    .is_some_and(is_personal);
                let quoted = map
                    .get("customer_id")
                    .and_then(Value::as_str)
                    .filter(|id| id.trim().chars().count() >= 3)
                    .map(|id| (id.to_owned(), self.apply(id)));
                for (key, v) in map.iter_mut() {
                    let personal = key == "customer_id"
                        || key == "customer_ids"
                        || (about_personal && key == "value");
                    match v {
                        Value::String(s) if personal => *s = self.apply(s),
                        Value::String(s) => {
                            if let Some((id, masked)) = &quoted {
                                if s.contains(id.as_str()) {
                                    *s = s.replace(id.as_str(), masked);
                                }
                            }
                        }
                        Value::Array(ids) if personal => {
                            for id in ids.iter_mut() {
                                if let Value::String(s) = id {
                                    *s = self.apply(s);
                                }
                            }
                        }
                        _ => self.mask_json(v),
                    }
                }
            }
            _ => {}
        }
    }

    /// The positions of `header`'s personal columns ([`PERSONAL_COLUMNS`]).
    pub fn columns<'a>(&self, header: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
        header
            .into_iter()
            .enumerate()
            .filter(|(_, h)| is_personal(h))
            .map(|(i, _)| i)
            .collect()
    }

    /// Copies the CSV `input` to `output` with the personal columns masked (every other cell as
    /// the `csv` writer quotes it). Blocking; constant memory.
    ///
    /// Errors: reading or writing; a malformed CSV.
    pub fn copy_csv(&self, input: impl Read, output: impl Write) -> std::io::Result<()> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(output);
        let mut record = csv::StringRecord::new();
        let mut columns: Option<Vec<usize>> = None;
        while reader
            .read_record(&mut record)
            .map_err(std::io::Error::other)?
        {
            match &columns {
                None => {
                    columns = Some(self.columns(record.iter()));
                    writer.write_record(&record)?;
                }
                Some(at) => {
                    let masked: Vec<String> = record
                        .iter()
                        .enumerate()
                        .map(|(i, cell)| {
                            if at.contains(&i) {
                                self.apply(cell)
                            } else {
                                cell.to_owned()
                            }
                        })
                        .collect();
                    writer.write_record(&masked)?;
                }
            }
        }
        writer.flush()
    }

    /// The stored CSV `stream` with the personal columns masked, as a stream of chunks (the CSV
    /// is rewritten on a blocking thread while it streams: constant memory).
    pub fn stream(
        self,
        stream: BoxStream<'static, Result<Bytes, StorageError>>,
    ) -> BoxStream<'static, Result<Bytes, StorageError>> {
        if self.mask == Mask::None {
            return stream;
        }
        let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes, StorageError>>(16);
        let feeder_out = out_tx.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        if in_tx.send(chunk).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = feeder_out.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        tokio::task::spawn_blocking(move || {
            let input = crate::customer_index::ChannelReader {
                rx: in_rx,
                current: Bytes::new(),
            };
            let output = ChunkWriter {
                tx: out_tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = self.copy_csv(input, output) {
                let _ = out_tx.blocking_send(Err(StorageError::Io(e)));
            }
        });
        tokio_stream_from(out_rx)
    }
}

/// Bytes per chunk sent on by [`Masker::stream`].
const CHUNK: usize = 64 * 1024;

/// A blocking writer sending full chunks to the async side.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, StorageError>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the download was closed"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> BoxStream<'static, T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

fn is_personal(header: &str) -> bool {
    let name: String = header
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    PERSONAL_COLUMNS.contains(&name.as_str())
}

/// `value` partly masked: in each run of letters and digits, the first two characters kept
/// (one in a run of two or three, none in a single character) and the rest replaced by `**`
/// whatever its length (so the length is not told); other characters (`-`, `@`, `.`, spaces)
/// kept. `7590-VHVEG` → `75**-VH**`, `jane.doe@example.com` → `ja**.d**@ex**.c**`.
pub fn partial(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let n = run.chars().count();
        let keep = match n {
            0 => return,
            1 => 0,
            2 | 3 => 1,
            _ => 2,
        };
        out.extend(run.chars().take(keep));
        out.push_str(if n == 1 { "*" } else { "**" });
        run.clear();
    };
    for c in value.chars() {
        if c.is_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_keeps_a_few_characters_per_run() {
        assert_eq!(partial("7590-VHVEG"), "75**-VH**");
        assert_eq!(partial("jane.doe@example.com"), "ja**.d**@ex**.c**");
        assert_eq!(partial("12"), "1**");
        assert_eq!(partial("7"), "*");
        assert_eq!(partial("Zoë Ångström"), "Z** Ån**");
    }

    #[test]
    fn viewers_get_masked_exports_only() {
        assert_eq!(Mask::for_role(Role::Viewer, None).unwrap(), Mask::Full);
        assert_eq!(
            Mask::for_role(Role::Viewer, Some("partial")).unwrap(),
            Mask::Partial
        );
        assert!(matches!(
            Mask::for_role(Role::Viewer, Some("none")),
            Err(ApiError::Forbidden(_))
        ));
        assert_eq!(Mask::for_role(Role::Analyst, None).unwrap(), Mask::None);
        assert_eq!(
            Mask::for_role(Role::Owner, Some("FULL")).unwrap(),
            Mask::Full
        );
        assert!(matches!(
            Mask::for_role(Role::Owner, Some("half")),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_csv_is_copied_with_its_personal_columns_masked() {
        let salt = Salt::from_bytes(vec![7; 32]);
        let masker = Masker::new(Mask::Partial, salt.clone());
        let input = "customer_id,churn_probability,summary\n7590-VHVEG,0.5,\"a, b\"\n,0.1,c\n";
        let mut out = Vec::new();
        masker.copy_csv(input.as_bytes(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "customer_id,churn_probability,summary\n75**-VH**,0.5,\"a, b\"\n,0.1,c\n"
        );
        let full = Masker::new(Mask::Full, salt.clone());
        let mut out = Vec::new();
        full.copy_csv(input.as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&salt.pseudonym("7590-VHVEG")), "{text}");
        assert!(!text.contains("7590"), "{text}");
    }
}
