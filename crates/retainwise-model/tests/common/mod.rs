//! Shared by the test binaries that use the real Telco data.

use std::io::Write;
use std::path::PathBuf;

/// The Telco file (`RETAINWISE_TELCO_CSV`, else `../shared/data/` beside the repository), or
/// `None` after a SKIPPED line written straight to stderr, so it shows even when the test
/// harness captures output.
pub fn telco_path() -> Option<PathBuf> {
    let p = std::env::var_os("RETAINWISE_TELCO_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco-customer-churn.csv")
        });
    if p.exists() {
        Some(p)
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: Telco data not found at {} (set RETAINWISE_TELCO_CSV) ***\n",
            p.display()
        );
        None
    }
}
