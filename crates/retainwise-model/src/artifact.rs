//! The model artifact: a versioned JSON document holding the feature schema, the trees and the
//! model card, and the validated, ready-to-score [`Model`] loaded from it.
//!
//! Layout (format version 2):
//! ```json
//! { "format_version": 2, "model_id": "telco-gbdt-v2-3f9a2c1d",
//!   "schema": { "label": …, "id_column": …, "columns": [ {"name": …, "type": …}, … ] },
//!   "forest": { "n_features": …, "base_score": …, "trees": [ {"feature": […], …}, … ] },
//!   "linear": { "intercept": …, "coef": […], "center": […] },
//!   "blend": { "intercept": …, "tree_weight": …, "linear_weight": … },
//!   "calibration": { "method": "sigmoid" },
//!   "card": { … } }
//! ```
//! Format 1 is format 2 without `linear`, `blend` and `calibration` (the forest alone with the
//! logistic link); this build reads both and writes 2. `linear` is omitted when there is none,
//! `blend` when it is the identity, `calibration` when it is the sigmoid.
//!
//! The last part of `model_id` is the first 8 hex digits of the SHA-256 of the compact JSON of
//! `{format_version, schema, forest, linear, blend, calibration}` (absent parts omitted, so a
//! format-1 model keeps its id): it names exactly what determines the predictions (not the
//! card, so a retrain that gives the same model gives the same id) and is checked on load, so a
//! model id written in a scored file always stands for the model that produced it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io;
use std::sync::OnceLock;

use crate::blend::{Blend, Predictor};
use crate::calibration::Calibration;
use crate::card::ModelCard;
use crate::encode::Encoder;
use crate::explain::Explainer;
use crate::forest::Forest;
use crate::linear::LinearModel;
use crate::schema::FeatureSchema;

/// The artifact format this crate writes; it also reads format 1 (see the module doc).
pub const FORMAT_VERSION: u32 = 2;

/// Why an artifact could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The bytes are not JSON of the artifact's shape.
    #[error("the model file is not a valid model artifact: {0}")]
    Json(#[from] serde_json::Error),
    /// The artifact was written in a format this version cannot read.
    #[error(
        "the model file has format version {found:?}; this build reads versions 1 to {supported}"
    )]
    UnsupportedVersion {
        /// The version found (`None` when the field is absent).
        found: Option<u64>,
        /// The version this build reads.
        supported: u32,
    },
    /// The feature schema is inconsistent.
    #[error("the model's feature schema is invalid: {0}")]
    InvalidSchema(String),
    /// The trees, the linear part, the blend or the calibration are inconsistent (bad links,
    /// features out of range, non-finite numbers, a format-1 file with format-2 parts).
    #[error("the model's trees are invalid: {0}")]
    InvalidForest(String),
    /// The trees index a different number of features than the schema encodes.
    #[error("the schema encodes {schema} features but the trees expect {forest}")]
    FeatureCountMismatch {
        /// Features the schema encodes.
        schema: usize,
        /// Features the forest was built for.
        forest: usize,
    },
    /// The model id does not match the content (the file was edited or corrupted).
    #[error("the model id {stated:?} does not match the model's content (expected it to end in -{computed})")]
    IdMismatch {
        /// The id in the file.
        stated: String,
        /// The content hash (8 hex digits) computed from the file.
        computed: String,
    },
}

fn is_sigmoid(c: &Calibration) -> bool {
    *c == Calibration::Sigmoid
}

#[derive(Serialize, Deserialize)]
struct Artifact {
    format_version: u32,
    model_id: String,
    schema: FeatureSchema,
    forest: Forest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    linear: Option<LinearModel>,
    #[serde(default, skip_serializing_if = "Blend::is_identity")]
    blend: Blend,
    #[serde(default, skip_serializing_if = "is_sigmoid")]
    calibration: Calibration,
    card: ModelCard,
}

/// The part of an artifact the model id hashes.
#[derive(Serialize)]
struct Hashed<'a> {
    format_version: u32,
    schema: &'a FeatureSchema,
    forest: &'a Forest,
    #[serde(skip_serializing_if = "Option::is_none")]
    linear: &'a Option<LinearModel>,
    #[serde(skip_serializing_if = "Blend::is_identity")]
    blend: &'a Blend,
    #[serde(skip_serializing_if = "is_sigmoid")]
    calibration: &'a Calibration,
    /// The card's owner tag: the same trees trained for two owners get two ids. Absent (and so
    /// not changing any existing id) when the model has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<serde_json::Value>,
}

/// A loaded, validated churn model: schema, predictor (trees, linear part, blend, calibration)
/// and card. Cheap to share (`Send + Sync`); scoring takes `&Model`.
#[derive(Clone, Debug)]
pub struct Model {
    id: String,
    format_version: u32,
    schema: FeatureSchema,
    predictor: Predictor,
    card: ModelCard,
    encoder: Encoder,
    /// Built with the model (TreeSHAP tables); shared so that cloning a model stays cheap.
    explainer: std::sync::Arc<Explainer>,
}

static EMBEDDED: &[u8] = include_bytes!("../models/telco-default.json");

impl Model {
    /// The default churn model, trained by this crate on the IBM Telco Customer Churn data
    /// (`retainwise train … --name telco`, see the README) and embedded in the binary. Parsed and validated once.
    ///
    /// # Panics
    /// If the embedded artifact is invalid, which the crate's tests rule out.
    pub fn embedded_default() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            Model::from_json_slice(EMBEDDED).expect("the embedded default model is valid")
        })
    }

    /// Loads an artifact: checks the format version, the schema, the trees against the schema's
    /// feature count, and the model id against the content hash.
    ///
    /// # Errors
    /// [`ModelError`] naming the first problem found.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Model, ModelError> {
        let probe: VersionProbe = serde_json::from_slice(bytes)?;
        let version = probe.format_version.as_ref().and_then(|v| v.as_u64());
        if !matches!(version, Some(v) if (1..=FORMAT_VERSION as u64).contains(&v)) {
            return Err(ModelError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let a: Artifact = serde_json::from_slice(bytes)?;
        let predictor = Predictor {
            forest: a.forest,
            linear: a.linear,
            blend: a.blend,
            calibration: a.calibration,
        };
        if a.format_version == 1 && predictor != Predictor::forest_only(predictor.forest.clone()) {
            return Err(ModelError::InvalidForest(
                "a format-1 model file cannot hold a linear part, a blend or a calibration".into(),
            ));
        }
        let model = Model::checked(
            a.model_id.clone(),
            a.format_version,
            a.schema,
            predictor,
            a.card,
        )?;
        let computed = model.content_hash();
        if !a.model_id.ends_with(&format!("-{computed}")) {
            return Err(ModelError::IdMismatch {
                stated: a.model_id,
                computed,
            });
        }
        Ok(model)
    }

    /// Builds a model from its parts, naming it `{name}-gbdt-v{FORMAT_VERSION}-{hash}`; `name`
    /// is reduced to lower-case ASCII letters, digits and `-` (`"model"` if nothing is left).
    ///
    /// # Errors
    /// [`ModelError`] when the parts are inconsistent.
    pub fn from_parts(
        name: &str,
        schema: FeatureSchema,
        predictor: Predictor,
        card: ModelCard,
    ) -> Result<Model, ModelError> {
        let mut model = Model::checked(String::new(), FORMAT_VERSION, schema, predictor, card)?;
        model.id = format!(
            "{}-gbdt-v{FORMAT_VERSION}-{}",
            sanitize_name(name),
            model.content_hash()
        );
        Ok(model)
    }

    /// Builds a hand-written (not trained) model from its parts, naming it
    /// `{name}-rules-v{FORMAT_VERSION}-{hash}` so every scored row says it is rule-based.
    ///
    /// # Errors
    /// [`ModelError`] when the parts are inconsistent.
    pub fn rule_based(
        name: &str,
        schema: FeatureSchema,
        forest: crate::forest::Forest,
        card: ModelCard,
    ) -> Result<Model, ModelError> {
        let predictor = Predictor::forest_only(forest);
        let mut model = Model::checked(String::new(), FORMAT_VERSION, schema, predictor, card)?;
        model.id = format!(
            "{}-rules-v{FORMAT_VERSION}-{}",
            sanitize_name(name),
            model.content_hash()
        );
        Ok(model)
    }

    fn checked(
        id: String,
        format_version: u32,
        schema: FeatureSchema,
        predictor: Predictor,
        card: ModelCard,
    ) -> Result<Model, ModelError> {
        schema.validate().map_err(ModelError::InvalidSchema)?;
        predictor.validate().map_err(ModelError::InvalidForest)?;
        if schema.n_features() != predictor.forest.n_features {
            return Err(ModelError::FeatureCountMismatch {
                schema: schema.n_features(),
                forest: predictor.forest.n_features,
            });
        }
        let encoder = Encoder::new(&schema);
        let explainer = std::sync::Arc::new(Explainer::new(&schema, &predictor));
        Ok(Model {
            id,
            format_version,
            schema,
            predictor,
            card,
            encoder,
            explainer,
        })
    }

    fn content_hash(&self) -> String {
        let bytes = serde_json::to_vec(&Hashed {
            format_version: self.format_version,
            schema: &self.schema,
            forest: &self.predictor.forest,
            linear: &self.predictor.linear,
            blend: &self.predictor.blend,
            calibration: &self.predictor.calibration,
            namespace: self.card.namespace.as_deref(),
        })
        .expect("serialising plain structs cannot fail");
        hex(&Sha256::digest(&bytes)[..4])
    }

    /// The artifact as pretty JSON (nested number arrays kept on one line so the file stays
    /// small and diffable). [`Model::from_json_slice`] reads it back to an identical model.
    pub fn to_json_vec(&self) -> Vec<u8> {
        let a = Artifact {
            format_version: self.format_version,
            model_id: self.id.clone(),
            schema: self.schema.clone(),
            forest: self.predictor.forest.clone(),
            linear: self.predictor.linear.clone(),
            blend: self.predictor.blend.clone(),
            calibration: self.predictor.calibration.clone(),
            card: self.card.clone(),
        };
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, ShallowPretty::new(4));
        a.serialize(&mut ser)
            .expect("serialising plain structs cannot fail");
        out.push(b'\n');
        out
    }

    /// The model version written in every scored row, e.g. `telco-gbdt-v2-3f9a2c1d`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The customer id column the model copies to its output, if any.
    pub fn id_column(&self) -> Option<&str> {
        self.schema.id_column.as_deref()
    }

    /// The feature schema (input contract).
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// The trees.
    pub fn forest(&self) -> &Forest {
        &self.predictor.forest
    }

    /// Trees, linear part, blend and calibration: everything that determines the predictions.
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    /// The artifact format the model was read from (or [`FORMAT_VERSION`] for a new model).
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// The cell encoder of this model's schema.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The per-customer explainer (exact TreeSHAP per source column, see [`crate::explain`]).
    pub fn explainer(&self) -> &Explainer {
        &self.explainer
    }

    /// The model output for one encoded feature vector, in log-odds (before an isotonic
    /// calibration, if the model has one): what the explanations add up to.
    pub fn log_odds(&self, features: &[f64]) -> f64 {
        self.predictor.log_odds(features)
    }

    /// Churn probability for one encoded feature vector (see [`crate::schema`] for the layout).
    pub fn predict_probability(&self, features: &[f64]) -> f64 {
        self.predictor.probability(features)
    }
}

fn sanitize_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "model".into()
    } else {
        s
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// serde_json's pretty layout down to `max_depth` nesting levels, compact below, so that each
/// per-node array of a tree (and each list of levels) sits on one line.
struct ShallowPretty {
    depth: usize,
    max_depth: usize,
    has_value: bool,
}

impl ShallowPretty {
    fn new(max_depth: usize) -> Self {
        ShallowPretty {
            depth: 0,
            max_depth,
            has_value: false,
        }
    }

    /// Whether the container currently open (at `self.depth`) is laid out over lines.
    fn pretty(&self) -> bool {
        self.depth <= self.max_depth
    }

    fn newline_indent<W: ?Sized + io::Write>(&self, w: &mut W, depth: usize) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn begin<W: ?Sized + io::Write>(&mut self, w: &mut W, open: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(open)
    }

    fn end<W: ?Sized + io::Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        let was_pretty = self.pretty();
        self.depth -= 1;
        if self.has_value && was_pretty {
            self.newline_indent(w, self.depth)?;
        }
        w.write_all(close)
    }

    fn item<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.pretty() {
            self.newline_indent(w, self.depth)?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for ShallowPretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.pretty() { b": " } else { b":" })
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_pretty_layout() {
        let v = serde_json::json!({"a": {"b": [1, 2, {"c": [3, 4]}]}});
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, ShallowPretty::new(2));
        v.serialize(&mut ser).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "{\n  \"a\": {\n    \"b\": [1,2,{\"c\":[3,4]}]\n  }\n}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    /// A format-1 artifact (the forest alone) still loads, keeps its id and scores as the
    /// forest; a format-1 file that claims format-2 parts is refused.
    #[test]
    fn reads_format_1() {
        let d = Model::embedded_default();
        let mut v1 = Model::checked(
            String::new(),
            1,
            d.schema().clone(),
            Predictor::forest_only(d.forest().clone()),
            d.card().clone(),
        )
        .unwrap();
        v1.id = format!("telco-gbdt-v1-{}", v1.content_hash());
        let bytes = v1.to_json_vec();
        let top: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(top["format_version"], 1);
        for part in ["linear", "blend", "calibration"] {
            assert!(top.get(part).is_none(), "{part}");
        }
        let back = Model::from_json_slice(&bytes).unwrap();
        assert_eq!(back.id(), v1.id());
        assert_eq!(back.format_version(), 1);
        let x = vec![0.0; d.forest().n_features];
        assert_eq!(back.log_odds(&x), d.forest().log_odds(&x));

        let mut v: serde_json::Value = serde_json::from_slice(&d.to_json_vec()).unwrap();
        v["format_version"] = serde_json::json!(1);
        let e = Model::from_json_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains("format-1"), "{e}");
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("Telco Default"), "telco-default");
        assert_eq!(sanitize_name("=evil"), "evil");
        assert_eq!(sanitize_name("@@"), "model");
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        assert!(matches!(
            Model::from_json_slice(b"{\"format_version\": 3}"),
            Err(ModelError::UnsupportedVersion { found: Some(3), .. })
        ));
        assert!(matches!(
            Model::from_json_slice(b"{}"),
            Err(ModelError::UnsupportedVersion { found: None, .. })
        ));
        assert!(matches!(
            Model::from_json_slice(b"not json"),
            Err(ModelError::Json(_))
        ));
    }
}
