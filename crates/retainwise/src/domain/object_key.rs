use std::fmt;

use super::{DomainError, ModelId, OrgId, PredictionId, UploadId};

/// A key inside the configured object store, relative to its root, e.g.
/// `uploads/user_1/3f2b….csv`. Only `A–Z a–z 0–9 . _ - /` are allowed, segments are non-empty
/// and never `.` or `..`, so a key can neither climb out of the root nor carry shell
/// metacharacters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// `uploads/{user}/{upload}.csv`: where an upload's bytes live (`{user}` is
    /// [`OrgId::folder`]).
    pub fn upload(user: &OrgId, upload: UploadId) -> Self {
        Self(format!("uploads/{}/{upload}.csv", user.folder()))
    }

    /// `results/{user}/{prediction}.csv`: the scored CSV.
    pub fn result(user: &OrgId, prediction: PredictionId) -> Self {
        Self(format!("results/{}/{prediction}.csv", user.folder()))
    }

    /// `downloads/{user}/{prediction}.csv`: the scored CSV made spreadsheet-safe, stored once
    /// on S3 so a presigned link serves the same escaped bytes as the API's download.
    pub fn download(user: &OrgId, prediction: PredictionId) -> Self {
        Self(format!("downloads/{}/{prediction}.csv", user.folder()))
    }

    /// `results/{user}/{prediction}.index` for the results object `result`
    /// (`results/{user}/{prediction}.csv`): the customers index stored beside it by the merge of
    /// a file scored in pieces (`stored_index`). `None` for any other key.
    pub fn stored_index_of(result: &ObjectKey) -> Option<Self> {
        let stem = result.0.strip_prefix("results/")?.strip_suffix(".csv")?;
        Some(Self(format!("results/{stem}.index")))
    }

    /// `reports/{user}/{prediction}.json`: the validation report (counts and row issues).
    pub fn report(user: &OrgId, prediction: PredictionId) -> Self {
        Self(format!("reports/{}/{prediction}.json", user.folder()))
    }

    /// `pieces/{user}/{prediction}/{seq}.{what}`: what piece `seq` (0-based, six digits) of a
    /// prediction scored in pieces stored for the merge: `csv` its scored lines, `json` its
    /// report and sums, `ids.json` its scored rows' customer ids, `shadow.csv` and
    /// `shadow.json` the challenger's scored lines and their count, `index` its part of the
    /// customers index (`stored_index`).
    pub fn piece(user: &OrgId, prediction: PredictionId, seq: u64, what: &str) -> Self {
        debug_assert!(matches!(
            what,
            "csv" | "json" | "ids.json" | "shadow.csv" | "shadow.json" | "index"
        ));
        Self(format!(
            "pieces/{}/{prediction}/{seq:06}.{what}",
            user.folder()
        ))
    }

    /// `models/{model}.json`: a model artifact (DESIGN §4). Model ids are content hashes, so one
    /// key holds the same bytes whoever trained it.
    pub fn model(model: &ModelId) -> Self {
        Self(format!("models/{model}.json"))
    }

    /// Checks a key as it arrives in a queue message: it must be a CSV in `user`'s upload folder.
    /// `root_url` is the configured storage root (e.g. `file:///srv/objects`); a key given as a
    /// full URL is accepted only when it starts with that root, so another bucket or folder is
    /// refused.
    ///
    /// Errors name the rule broken: a different root or bucket, `..` or `.` segments, doubled
    /// or leading slashes, characters outside the allowed set, a folder other than
    /// `uploads/{user}/`, or a name not ending in `.csv`.
    pub fn parse_upload(raw: &str, root_url: &str, user: &OrgId) -> Result<Self, DomainError> {
        let err = |why: &str| Err(DomainError(format!("object path {raw:?} rejected: {why}")));
        let key = if raw.contains("://") {
            let root = root_url.trim_end_matches('/');
            match raw
                .strip_prefix(root)
                .and_then(|rest| rest.strip_prefix('/'))
            {
                Some(rest) => rest,
                None => return err(&format!("it is outside the configured storage root {root}")),
            }
        } else {
            raw
        };
        if let Err(why) = relative_key_rule(key) {
            return err(&why);
        }
        let folder = format!("uploads/{}/", user.folder());
        if !key.starts_with(&folder) || key[folder.len()..].contains('/') {
            return err(&format!(
                "uploads of user {:?} must be directly under {folder}",
                user.as_str()
            ));
        }
        if !key.ends_with(".csv") || key.len() == folder.len() + ".csv".len() {
            return err("it is not a .csv file");
        }
        Ok(Self(key.to_owned()))
    }

    /// A key of another system's objects (the original service's bucket, read by
    /// `retainwise import-original`): any folder, the same character and segment rules as
    /// [`ObjectKey::parse_upload`].
    ///
    /// Errors name the rule broken.
    pub fn parse_foreign(raw: &str) -> Result<Self, DomainError> {
        relative_key_rule(raw)
            .map(|()| Self(raw.to_owned()))
            .map_err(|why| DomainError(format!("object path {raw:?} rejected: {why}")))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key relative to the storage root that cannot leave it: not empty, only
/// `A–Z a–z 0–9 . _ - /`, no leading or doubled slash, no `.` or `..` segment.
fn relative_key_rule(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("it is empty".to_owned());
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(format!(
            "character {bad:?} is not allowed (only letters, digits, '.', '_', '-', '/')"
        ));
    }
    if key.starts_with('/') {
        return Err("it starts with '/'; keys are relative to the storage root".to_owned());
    }
    if key.contains("//") {
        return Err("it contains a doubled slash".to_owned());
    }
    if key.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err("it contains a '.' or '..' segment".to_owned());
    }
    Ok(())
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "file:///srv/objects";

    fn user() -> OrgId {
        "user_1".parse().unwrap()
    }

    #[test]
    fn accepts_own_uploads() {
        let id = UploadId::new();
        let key = ObjectKey::upload(&user(), id);
        assert_eq!(
            ObjectKey::parse_upload(key.as_str(), ROOT, &user()).unwrap(),
            key
        );
        let full = format!("{ROOT}/{key}");
        assert_eq!(ObjectKey::parse_upload(&full, ROOT, &user()).unwrap(), key);
    }

    #[test]
    fn any_subject_keeps_to_its_own_folder() {
        for subject in [
            "auth0|64f1",
            "ann@example.com",
            "../user_1",
            "a/../../b",
            "..",
        ] {
            let odd: OrgId = subject.parse().unwrap();
            let key = ObjectKey::upload(&odd, UploadId::new());
            let folder = format!("uploads/{}/", odd.folder());
            assert!(key.as_str().starts_with(&folder), "{key}");
            assert_eq!(key.as_str().matches('/').count(), 2, "{key}");
            assert_eq!(
                ObjectKey::parse_upload(key.as_str(), ROOT, &odd).unwrap(),
                key
            );
            // Another user's key is refused for it, and its key for another user.
            let other = ObjectKey::upload(&user(), UploadId::new());
            assert!(ObjectKey::parse_upload(other.as_str(), ROOT, &odd).is_err());
            assert!(ObjectKey::parse_upload(key.as_str(), ROOT, &user()).is_err());
        }
    }

    #[test]
    fn rejects_escapes_and_others() {
        for bad in [
            "uploads/user_1/../user_2/a.csv",
            "uploads/user_1/./a.csv",
            "uploads//user_1/a.csv",
            "/uploads/user_1/a.csv",
            "uploads/user_2/a.csv",
            "uploads/user_1/sub/a.csv",
            "uploads/user_1/a.txt",
            "uploads/user_1/.csv",
            "uploads/user_1/a;rm -rf.csv",
            "uploads/user_1/$(id).csv",
            "uploads/user_1/a`b`.csv",
            "s3://other-bucket/uploads/user_1/a.csv",
            "file:///srv/objects-evil/uploads/user_1/a.csv",
            "",
        ] {
            assert!(
                ObjectKey::parse_upload(bad, ROOT, &user()).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
