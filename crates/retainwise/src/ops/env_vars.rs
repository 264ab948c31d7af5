//! Every environment variable the `retainwise` binary reads: `retainwise env-vars` prints them,
//! `*_FILE` secrets ([`super::secret_files`]) are offered for each, and `deploy/`'s check
//! (`scripts/deploy-checks.sh`) refuses a task definition that sets any other.

use std::collections::BTreeSet;

/// Variables read outside clap's `env = …` attributes, with where each is read.
const READ_DIRECTLY: &[&str] = &[
    // config.rs: the original service's names, honoured as fallbacks (DESIGN §6).
    "DATABASE_URL",
    "S3_BUCKET",
    "PREDICTIONS_BUCKET",
    "ENABLE_SQS",
    "PREDICTIONS_QUEUE_URL",
    // cli.rs: logging (tracing-subscriber's EnvFilter falls back to RUST_LOG).
    "RETAINWISE_LOG",
    "RUST_LOG",
    "RETAINWISE_LOG_FORMAT",
    // storage.rs: the S3 endpoint, service-specific first.
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
];

/// The standard AWS variables the SDKs in the binary (aws-config for SQS, object_store's
/// `AmazonS3Builder::from_env` for S3) read: region, endpoint, static keys, and the credentials
/// endpoint the ECS agent sets for a task role. Source: AWS SDKs and Tools Reference Guide,
/// "Environment variables support" and "Container credential provider".
const AWS_STANDARD: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// The variables of `command`'s tree (clap `env = …`), sorted, without duplicates.
pub fn from_command(command: &clap::Command) -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(command, &mut out);
    out
}

/// Every variable the binary reads (`command` is the CLI's clap command), sorted; the `*_FILE`
/// form of each is read too (not listed).
pub fn all(command: &clap::Command) -> Vec<String> {
    let mut vars = from_command(command);
    vars.extend(
        READ_DIRECTLY
            .iter()
            .chain(AWS_STANDARD)
            .map(|s| (*s).to_owned()),
    );
    vars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is complete: every variable name the application's source reads
    /// (`env = "…"`, `env("…")`, `env::var("…")`, `var_os("…")`, `try_from_env("…")`) is in it.
    #[test]
    fn every_variable_the_source_reads_is_listed() {
        let listed: BTreeSet<String> = all(&<crate::cli::Cli as clap::CommandFactory>::command())
            .into_iter()
            .collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in [root.join("src"), root.join("../retainwise-queue/src")] {
            collect_rs(&dir, &mut files);
        }
        assert!(
            files.len() > 20,
            "source files not found under {}",
            root.display()
        );
        let patterns = [
            "env = \"",
            "env(\"",
            "env::var(\"",
            "var_os(\"",
            "try_from_env(\"",
        ];
        let mut unlisted = BTreeSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            // Unit tests set variables of their own; only the code above them counts.
            let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
            for pattern in patterns {
                for (i, _) in code.match_indices(pattern) {
                    let rest = &code[i + pattern.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if rest[name.len()..].starts_with('"')
                        && !name.is_empty()
                        && !listed.contains(&name)
                    {
                        unlisted.insert(format!("{name} ({})", file.display()));
                    }
                }
            }
        }
        assert!(unlisted.is_empty(), "read but not listed: {unlisted:?}");
        for expected in [
            "RETAINWISE_DATABASE_URL",
            "RETAINWISE_NO_MIGRATE",
            "DATABASE_URL",
        ] {
            assert!(listed.contains(expected), "{expected} missing");
        }
    }

    fn collect_rs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                collect_rs(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
