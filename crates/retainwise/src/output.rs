//! Where a CLI command writes what it produced (`predict -o`, `predict --report`, `train -o`).
//!
//! * `-`: standard output.
//! * A regular file, or no file yet: written to a temporary file beside it and renamed over it
//!   only on [`Output::commit`], so a failed run leaves the old file (or none) and never half a
//!   result. An existing file keeps its permission bits (and, when we may, its owner); a new one
//!   gets `0666` less the umask, as any program's new file does.
//! * A symbolic link stays a link: what it points to is written as above (a regular file
//!   target is replaced atomically, anything else written through).
//! * Anything else — a FIFO, a terminal, a character device such as a null device, a socket —
//!   is opened and written straight through, never replaced: renaming a regular file over
//!   `/dev/null` breaks every program on the machine.
//!
//! A directory is refused.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// An open destination; write to it, then [`Output::commit`]. Dropped without a commit, a
/// staged file is removed and the destination is left as it was.
pub struct Output {
    kind: Kind,
}

enum Kind {
    Stdout(io::Stdout),
    /// A regular file (or a new one) replaced at commit.
    Staged {
        temp: tempfile::NamedTempFile,
        path: PathBuf,
    },
    /// Written as it goes (FIFO, device, …).
    Direct(File),
}

impl Output {
    /// Standard output.
    pub fn stdout() -> Self {
        Self {
            kind: Kind::Stdout(io::stdout()),
        }
    }

    /// Opens `path` as described in the module documentation (`-` is standard output).
    ///
    /// Errors: `path` is a directory, its folder cannot hold a temporary file, or it cannot be
    /// opened for writing; each names the path.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self::stdout());
        }
        // The file a chain of links ends at; the link itself is never replaced.
        let target = match std::fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(path).is_ok() {
                    // A link to nothing yet: create what it points to, through the link.
                    return Ok(Self {
                        kind: Kind::Direct(
                            OpenOptions::new()
                                .write(true)
                                .create(true)
                                .truncate(true)
                                .open(path)
                                .with_context(|| format!("opening {}", path.display()))?,
                        ),
                    });
                }
                path.to_owned()
            }
            Err(e) => return Err(e).with_context(|| format!("resolving {}", path.display())),
        };
        match std::fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                bail!(
                    "{} is a directory; give a file name for the output",
                    path.display()
                )
            }
            Ok(meta) if meta.is_file() => Self::staged(target, Some(&meta)),
            Ok(_) => Ok(Self {
                // No create, no truncate: a device or a pipe is only written to.
                kind: Kind::Direct(
                    OpenOptions::new()
                        .write(true)
                        .open(&target)
                        .with_context(|| format!("opening {}", path.display()))?,
                ),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::staged(target, None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn staged(path: PathBuf, existing: Option<&std::fs::Metadata>) -> anyhow::Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let temp = tempfile::Builder::new()
            .prefix(".retainwise-")
            // Subject to the umask, as open(2) applies it, like any new file.
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        if let Some(meta) = existing {
            let file = temp.as_file();
            file.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
                .with_context(|| format!("keeping the mode of {}", path.display()))?;
            // Keeps the owner when we may (root, or our own file); otherwise the file becomes
            // ours, as it would with any editor's save.
            let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
        }
        Ok(Self {
            kind: Kind::Staged { temp, path },
        })
    }

    /// True when nothing reaches the destination before [`Output::commit`] (a staged file):
    /// dropping it then leaves the destination untouched.
    pub fn is_staged(&self) -> bool {
        matches!(self.kind, Kind::Staged { .. })
    }

    /// Finishes: flushes, and for a staged file syncs it and renames it over the destination.
    ///
    /// Errors: writing or renaming failed, or the destination stopped being a regular file
    /// since it was opened (then it is left alone).
    pub fn commit(self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Stdout(mut out) => out.flush().context("writing to standard output"),
            Kind::Direct(mut file) => file.flush().context("writing the output"),
            Kind::Staged { temp, path } => {
                temp.as_file()
                    .sync_all()
                    .with_context(|| format!("writing {}", path.display()))?;
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    if !meta.is_file() {
                        bail!(
                            "{} changed into something other than a regular file while it was \
                             written; left it alone",
                            path.display()
                        );
                    }
                }
                temp.persist(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(())
            }
        }
    }

    /// Refuses two command-line paths that name one file (`predict X -o X`, or results and
    /// report to one path): the output would replace the customer file it is read from, or one
    /// output the other. Compared by device and inode when both exist (so a symbolic link or a
    /// second spelling of the path is caught), else by the file each would create (a link to
    /// nothing yet creates its target). `-` (standard input or output) never clashes.
    ///
    /// # Errors
    /// Naming both uses of the path and what to do instead.
    pub fn refuse_same_file(a: &Path, a_is: &str, b: &Path, b_is: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::MetadataExt;
        if a.as_os_str() == "-" || b.as_os_str() == "-" {
            return Ok(());
        }
        let same = match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => destination(a) == destination(b),
        };
        if same {
            anyhow::bail!(
                "{} is both the {a_is} and the {b_is}: writing one would destroy the other; \
                 choose another path for the {b_is}",
                b.display()
            );
        }
        Ok(())
    }

    /// Writes `bytes` to `path` (see [`Output::open`]) and commits.
    pub fn write_all(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let mut out = Self::open(path)?;
        out.write_all(bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        out.commit()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::Stdout(out) => out.write(buf),
            Kind::Staged { temp, .. } => temp.write(buf),
            Kind::Direct(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            Kind::Stdout(out) => out.flush(),
            Kind::Staged { temp, .. } => temp.flush(),
            Kind::Direct(file) => file.flush(),
        }
    }
}

/// The file writing to `path` would create: symbolic links followed even when what they point
/// to does not exist yet (up to 40 hops, Linux's own limit), the folder resolved when it exists.
fn destination(path: &Path) -> PathBuf {
    let mut p = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(to) => {
                let base = p.parent().map(Path::to_owned).unwrap_or_default();
                p = base.join(to);
            }
            Err(_) => break,
        }
    }
    match (p.parent().map(std::fs::canonicalize), p.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => p,
    }
}
