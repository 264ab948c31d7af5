//! Models as data: which model scores a user's next upload, and loading any registered model by
//! its id.
//!
//! The model the process was started with (the embedded Telco model, or `--model FILE`) is
//! always available and is active until someone activates another. Every other model is an
//! artifact in object storage at `models/{id}.json`, listed in the `models` table.
//! Loaded artifacts are kept in a small cache: a model is immutable (its id is a hash of its
//! content), so a cached copy can never be stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use retainwise_model::{ManualMapping, Model, Preview, ScoreError};

use crate::db::Db;
use crate::domain::{ModelId, ObjectKey, OrgId};
use crate::storage::{Storage, StorageError};

/// Bytes read from the start of a file to decide which model reads it and to check it before
/// it is queued (the header and the first rows): the one head size of the upload's checks, the
/// preview and the worker's choice of model ([`Registry::inspect`], [`Registry::for_file`],
/// [`retainwise_model::plan::plan`]).
pub const HEAD_BYTES: usize = retainwise_model::plan::HEAD_BYTES;

/// Loaded artifacts kept in memory at most (a Telco-sized model is about 1 MB).
const CACHE_CAPACITY: usize = 8;

/// Why a model could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No such model, or not one this user may use.
    #[error("model {0} is not registered (see GET /api/models or `retainwise model list`)")]
    Unknown(String),
    /// Registered, but its artifact is missing from storage.
    #[error("model {0} is registered but its artifact is missing from storage; register it again with `retainwise model add`")]
    ArtifactMissing(String),
    /// The artifact does not load (corrupt, or written by an incompatible version).
    #[error("model {id} does not load: {reason}")]
    Invalid {
        /// The model id.
        id: String,
        /// What the loader said.
        reason: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Object storage failed.
    #[error("{0}")]
    Storage(StorageError),
}

impl RegistryError {
    /// True when retrying later cannot help (the model is unknown, missing or broken).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Unknown(_) | Self::ArtifactMissing(_) | Self::Invalid { .. }
        )
    }
}

/// The registry: the process's own model plus a cache of loaded artifacts. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    builtin: Arc<Model>,
    baseline: Arc<Model>,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Default)]
struct Cache {
    models: HashMap<String, Arc<Model>>,
    /// Ids, least recently used first.
    order: Vec<String>,
}

impl Cache {
    fn get(&mut self, id: &str) -> Option<Arc<Model>> {
        let model = self.models.get(id)?.clone();
        self.order.retain(|x| x != id);
        self.order.push(id.to_owned());
        Some(model)
    }

    fn put(&mut self, model: Arc<Model>) {
        let id = model.id().to_owned();
        self.order.retain(|x| *x != id);
        self.order.push(id.clone());
        self.models.insert(id, model);
        while self.order.len() > CACHE_CAPACITY {
            let evicted = self.order.remove(0);
            self.models.remove(&evicted);
        }
    }
}

impl Registry {
    /// A registry whose fallback is `builtin`, the model the process was started with.
    pub fn new(builtin: Arc<Model>) -> Self {
        Self {
            builtin,
            baseline: Arc::new(retainwise_model::baseline::saas_baseline().clone()),
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    /// The model the process was started with.
    pub fn builtin(&self) -> &Arc<Model> {
        &self.builtin
    }

    /// The rule-based SaaS baseline ([`retainwise_model::baseline`]).
    pub fn baseline(&self) -> &Arc<Model> {
        &self.baseline
    }

    /// `model`, or the SaaS baseline when the file whose first bytes are `head` fits the
    /// baseline but not `model`, or when `manual` (a person's column choices) names the
    /// baseline's inputs (see [`retainwise_model::plan::model_for`]).
    pub fn for_file(&self, model: Arc<Model>, head: &[u8], manual: &ManualMapping) -> Arc<Model> {
        let chosen = retainwise_model::plan::model_for(&model, Some(&self.baseline), head, manual);
        if std::ptr::eq(chosen, &*model) {
            model
        } else {
            self.baseline.clone()
        }
    }

    /// How a file whose first [`HEAD_BYTES`] are `head` will be read: the model that scores it
    /// ([`Registry::for_file`]) and the preview of its first `rows` rows with `manual` applied,
    /// or the whole-file error scoring would end with. The one look at a file before scoring:
    /// the preview page, the upload's checks ([`Preview::refusal`]) and the worker all go
    /// through it or its parts, so they never disagree. CPU work: call on a blocking thread.
    pub fn inspect(
        &self,
        model: Arc<Model>,
        head: &[u8],
        manual: &ManualMapping,
        rows: usize,
    ) -> (Arc<Model>, Result<Preview, ScoreError>) {
        let head = &head[..head.len().min(HEAD_BYTES)];
        let model = self.for_file(model, head, manual);
        let preview = retainwise_model::preview_mapped(
            &model,
            head,
            rows,
            &retainwise_model::InputLimits::default(),
            manual,
        );
        (model, preview)
    }

    /// The id of the model that scores `user`'s next upload: their own activation, else the
    /// installation-wide one, else the built-in model.
    ///
    /// Errors: the database failed.
    pub async fn active_id(&self, db: &Db, user: &OrgId) -> Result<String, sqlx::Error> {
        Ok(db
            .active_model(user)
            .await?
            .unwrap_or_else(|| self.builtin.id().to_owned()))
    }

    /// Loads model `id`: the built-in one, a cached copy, or the artifact from storage (checked:
    /// its content hash must match `id`).
    ///
    /// Errors: [`RegistryError`]; [`RegistryError::is_permanent`] tells a missing or broken model
    /// from an outage.
    pub async fn load(
        &self,
        db: &Db,
        storage: &Storage,
        id: &str,
    ) -> Result<Arc<Model>, RegistryError> {
        if id == self.builtin.id() {
            return Ok(self.builtin.clone());
        }
        if id == self.baseline.id() {
            return Ok(self.baseline.clone());
        }
        if let Some(model) = self.cache.lock().expect("cache lock").get(id) {
            return Ok(model);
        }
        let model_id: ModelId = id
            .parse()
            .map_err(|_| RegistryError::Unknown(id.to_owned()))?;
        let row = db
            .model(None, &model_id)
            .await?
            .ok_or_else(|| RegistryError::Unknown(id.to_owned()))?;
        if row.artifact_key.is_none() {
            // The model some other process was started with (its --model file): not in storage.
            return Err(RegistryError::ArtifactMissing(id.to_owned()));
        }
        let bytes = match storage.get_bytes(&ObjectKey::model(&model_id)).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound(_)) => {
                return Err(RegistryError::ArtifactMissing(id.to_owned()))
            }
            Err(e) => return Err(RegistryError::Storage(e)),
        };
        let model = Model::from_json_slice(&bytes).map_err(|e| RegistryError::Invalid {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        if model.id() != id {
            return Err(RegistryError::Invalid {
                id: id.to_owned(),
                reason: format!("the artifact holds model {}", model.id()),
            });
        }
        let model = Arc::new(model);
        self.cache.lock().expect("cache lock").put(model.clone());
        Ok(model)
    }

    /// Stores `model`'s artifact at `models/{id}.json` and lists it, owned by `owner` (`None`
    /// for the operator). Storing again is harmless: the id is a hash of the content.
    ///
    /// Errors: storage or database failures.
    pub async fn register(
        &self,
        db: &Db,
        storage: &Storage,
        model: &Model,
        owner: Option<&OrgId>,
    ) -> Result<ModelId, RegistryError> {
        let id: ModelId = model
            .id()
            .parse()
            .map_err(|e: crate::domain::DomainError| RegistryError::Invalid {
                id: model.id().to_owned(),
                reason: e.0,
            })?;
        let key = ObjectKey::model(&id);
        storage
            .put_bytes(&key, model.to_json_vec())
            .await
            .map_err(RegistryError::Storage)?;
        let card = serde_json::to_string(model.card()).map_err(|e| RegistryError::Invalid {
            id: id.to_string(),
            reason: e.to_string(),
        })?;
        db.register_model(&id, &card, owner, Some(&key)).await?;
        Ok(id)
    }
}

/// The longest default name: the limit `POST /api/models` puts on a name given by hand.
pub const DEFAULT_NAME_MAX: usize = 40;

/// `telco-customer-churn` for `telco-customer-churn.csv`: the whole stem of a file name (a name
/// cut at its first `_` or `-` hid which file a model came from: `q_unclosed_mid.csv` gave `q`),
/// reduced to what a model id allows. Accents are dropped (`événements` → `evenements`, by
/// Unicode canonical decomposition, UAX #15), every run of other characters becomes one `-`,
/// and the result is cut to [`DEFAULT_NAME_MAX`] characters; `churn` if nothing is left.
pub fn default_model_name(file_name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let stem = std::path::Path::new(file_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let mut name = String::new();
    for c in stem.nfd() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if unicode_normalization::char::is_combining_mark(c) {
            // The accent of a decomposed letter: the letter itself stays.
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    name.truncate(DEFAULT_NAME_MAX);
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "churn".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(
            default_model_name("telco-customer-churn.csv"),
            "telco-customer-churn"
        );
        assert_eq!(default_model_name("Acme_2026.csv"), "acme-2026");
        assert_eq!(default_model_name("q_unclosed_mid.csv"), "q-unclosed-mid");
        assert_eq!(default_model_name("événements.csv"), "evenements");
        assert_eq!(default_model_name("__Two  words__.csv"), "two-words");
        assert_eq!(default_model_name("日本.csv"), "churn");
        assert_eq!(default_model_name(""), "churn");
        let long = default_model_name(&format!("{}-x.csv", "a".repeat(39)));
        assert_eq!(long, "a".repeat(39), "cut at 40, the dangling '-' dropped");
        assert!(default_model_name(&"ab_".repeat(50)).len() <= DEFAULT_NAME_MAX);
    }

    #[test]
    fn cache_keeps_the_most_recently_used() {
        let base = Model::embedded_default();
        let mut cache = Cache::default();
        // Same model under one id: the cache never grows past one entry for it.
        for _ in 0..3 {
            cache.put(Arc::new(base.clone()));
        }
        assert_eq!(cache.order.len(), 1);
        assert!(cache.get(base.id()).is_some());
        assert!(cache.get("other-gbdt-v1-00000000").is_none());
    }
}
