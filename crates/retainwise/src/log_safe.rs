//! Keeping what a client sends from flooding or forging the log: a 40 KB JWT
//! `alg` logged whole on every request grew the log by 431 MB in 5 s.
//!
//! Three layers, following the OWASP Logging Cheat Sheet ("event data sanitization"):
//! - [`Clip`]: a value from a request (a header, a path, a token's `alg` or `kid`, an error
//!   text quoting one) goes into a log line through it: at most [`MAX_VALUE_CHARS`] characters,
//!   control characters escaped, and the original length said when cut.
//! - [`Throttle`] / [`KeyedThrottle`]: a warning that a client can cause is written at most once
//!   per window per kind (and client), with the number left out in the next one.
//! - [`CappedWriter`]: whatever slips through, no log record is longer than [`MAX_RECORD_BYTES`]
//!   and none contains a raw line break or other control character but its final newline, so
//!   one request cannot forge or bloat records.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest client-supplied value kept in a log line, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// Longest log record, in bytes (the end is cut, with a note).
pub const MAX_RECORD_BYTES: usize = 8 * 1024;

/// A value to log that came from a client: displays at most [`MAX_VALUE_CHARS`] characters,
/// with control characters escaped (`\n`, `\u{1b}`) and `…(N bytes)` when cut.
pub struct Clip<'a>(pub &'a str);

impl fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == MAX_VALUE_CHARS {
                return write!(f, "…({} bytes)", self.0.len());
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Clip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// `s` clipped for a log line (see [`Clip`]).
pub fn clip(s: &str) -> String {
    Clip(s).to_string()
}

/// Lets one event through per `window`; the events held back in between are counted.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// One event per `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this event may be logged, `n` being how many were held back since the
    /// last one; `None` to stay quiet.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.window => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// [`Throttle`]s by key (an event name with a client address, say), shared between requests.
/// Holds at most [`KeyedThrottle::MAX_KEYS`] keys: when full, it forgets them all, so an
/// attacker with many addresses cannot grow it without bound (the cost: a few extra lines).
pub struct KeyedThrottle {
    window: Duration,
    keys: Mutex<HashMap<String, Throttle>>,
}

impl KeyedThrottle {
    /// Keys remembered at most.
    pub const MAX_KEYS: usize = 10_000;

    /// One event per key and `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// As [`Throttle::allow`], for `key`.
    pub fn allow(&self, key: &str) -> Option<u64> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.contains_key(key) && keys.len() >= Self::MAX_KEYS {
            keys.clear();
        }
        keys.entry(key.to_owned())
            .or_insert_with(|| Throttle::new(self.window))
            .allow()
    }
}

/// The warnings a client can cause: one line per minute per kind and client address.
pub fn client_warnings() -> &'static KeyedThrottle {
    static THROTTLE: std::sync::OnceLock<KeyedThrottle> = std::sync::OnceLock::new();
    THROTTLE.get_or_init(|| KeyedThrottle::new(Duration::from_secs(60)))
}

/// A `tracing_subscriber` writer maker around another (standard error, say) that caps every
/// record (see the module's text). tracing-subscriber formats a whole record and writes it with
/// one `write_all`, so each `write` call here is one record.
pub struct CappedWriter<M> {
    /// Where the records go.
    pub inner: M,
    /// Whether the records carry the terminal's colour codes (their ESC is kept).
    pub ansi: bool,
}

impl<'a, M> tracing_subscriber::fmt::MakeWriter<'a> for CappedWriter<M>
where
    M: tracing_subscriber::fmt::MakeWriter<'a>,
{
    type Writer = CappedRecord<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        CappedRecord(self.inner.make_writer(), self.ansi)
    }
}

/// One record's writer of [`CappedWriter`].
pub struct CappedRecord<W>(W, bool);

impl<W: Write> Write for CappedRecord<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&cap_record(buf, self.1))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `record` with control characters escaped (its one final newline kept) and cut to
/// [`MAX_RECORD_BYTES`]; with `ansi`, ESC (the colour codes) is kept.
pub fn cap_record(record: &[u8], ansi: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(record);
    let (body, newline) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (&*text, ""),
    };
    let mut out = String::with_capacity(body.len().min(MAX_RECORD_BYTES) + 64);
    for c in body.chars() {
        if out.len() >= MAX_RECORD_BYTES {
            out.push_str(&format!(" …(record cut: {} bytes)", record.len()));
            break;
        }
        if c.is_control() && c != '\t' && !(ansi && c == '\u{1b}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push_str(newline);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_and_escapes() {
        assert_eq!(clip("HS256"), "HS256");
        assert_eq!(clip("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let long = "A".repeat(40_000);
        let c = clip(&long);
        assert!(c.len() < MAX_VALUE_CHARS + 32, "{}", c.len());
        assert!(c.ends_with("…(40000 bytes)"));
    }

    #[test]
    fn records_are_capped_and_single_line() {
        let record = format!("WARN x=1 y={}\nforged line\n", "B".repeat(50_000));
        let out = String::from_utf8(cap_record(record.as_bytes(), false)).unwrap();
        assert!(out.len() < MAX_RECORD_BYTES + 100);
        assert_eq!(out.matches('\n').count(), 1);
        assert!(out.ends_with("bytes)\n"));
    }

    #[test]
    fn throttles_per_key() {
        let t = KeyedThrottle::new(Duration::from_secs(3600));
        assert_eq!(t.allow("a"), Some(0));
        assert_eq!(t.allow("a"), None);
        assert_eq!(t.allow("a"), None);
        assert_eq!(t.allow("b"), Some(0));
    }
}
