//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that owns the only write connection. It takes whatever jobs
//! are queued (up to [`MAX_BATCH`]) and runs them in one transaction, each inside its own
//! savepoint so one failing job does not undo the others, then commits once and only then
//! answers every job of the batch. Under load that turns many small commits into one fsync.
//! Reads use a small pool of read-only connections on the blocking thread pool; in WAL mode
//! they never wait for the writer.

mod config;
mod integrations;
mod messages;
mod migrations;
mod rooms;
mod teams;
mod uploads;
mod users;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use apogee_telemetry::metrics::metrics;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// Most jobs one transaction takes.
const MAX_BATCH: usize = 512;
/// Jobs that may wait for the writer; senders wait beyond this (backpressure, never unbounded).
const QUEUE_DEPTH: usize = 4096;
/// Read connections kept open.
const READ_POOL: usize = 8;

type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// The SQLite implementation of every store trait.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    /// Idle read connections. A std mutex: held only to push or pop, never across an await.
    readers: Mutex<Vec<Connection>>,
    /// Rows of the store's tables the writer has inserted, updated or deleted since the store
    /// opened (SQLite's update hook; the full-text index's own tables are left out, their
    /// upkeep is amortized by SQLite): what a test measures the cost of a write by.
    rows_written: Arc<AtomicU64>,
    /// Keeps the directory of a temporary store alive as long as the store.
    #[cfg(feature = "testsuite")]
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut writer = Connection::open(path).map_err(unavailable)?;
        configure(&writer)?;
        migrations::migrate(&mut writer)?;
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let rows_written = Arc::new(AtomicU64::new(0));
        let counter = rows_written.clone();
        writer.update_hook(Some(move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
            if !table.starts_with("messages_fts") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| StoreError::Unavailable(format!("spawn writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                jobs,
                readers: Mutex::new(Vec::new()),
                rows_written,
                #[cfg(feature = "testsuite")]
                _temp: None,
            }),
        })
    }

    /// Opens a store in a fresh temporary directory, removed when the store is dropped.
    #[cfg(feature = "testsuite")]
    pub fn open_temp() -> StoreResult<Self> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut store = Self::open(&dir.path().join("apogee.db"))?;
        let inner = Arc::get_mut(&mut store.inner).expect("a store just opened has one handle");
        inner._temp = Some(Arc::new(dir));
        Ok(store)
    }

    /// Rows of the store's tables written since the store opened (inserts, updates and
    /// deletes, full-text index upkeep left out): a write's cost is the difference across it.
    pub fn rows_written(&self) -> u64 {
        self.inner.rows_written.load(Ordering::Relaxed)
    }

    /// Runs `f` in the writer's transaction and returns once it is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |committed: StoreResult<()>| {
                // The caller may have gone away; the write stands either way.
                let _ = tx.send(result.and_then(|v| committed.map(|()| v)));
            })
        });
        self.inner.jobs.send(job).await.map_err(|_| writer_gone())?;
        let result = rx.await.map_err(|_| writer_gone())?;
        // Queueing included: this is the latency a caller sees.
        metrics().store_write_seconds.observe_duration(started.elapsed());
        result
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().map_err(|_| poisoned())?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path)?,
            };
            let result = f(&conn);
            let mut readers = inner.readers.lock().map_err(|_| poisoned())?;
            if readers.len() < READ_POOL {
                readers.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?;
        metrics().store_read_seconds.observe_duration(started.elapsed());
        result
    }
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(unavailable)
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(unavailable)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000;").map_err(unavailable)?;
    register_regexp(&conn)?;
    register_contains(&conn)?;
    Ok(conn)
}

/// `regexp_flags(pattern, flags, text)`: whether `text` matches `pattern` with MongoDB's
/// `$options` letters (`i`, `m`, `x`, `s`), for regular-expression message searches. A pattern
/// that does not compile matches nothing; the compiled one is kept for the statement's rows.
fn register_regexp(conn: &Connection) -> StoreResult<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "regexp_flags",
        3,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let regex =
                ctx.get_or_create_aux(0, |pattern| -> Result<Option<regex_lite::Regex>, rusqlite::Error> {
                    let flags: String = ctx.get(1)?;
                    let flags: String =
                        flags.chars().filter(|c| matches!(c, 'i' | 'm' | 'x' | 's')).collect();
                    let pattern =
                        pattern.as_str().map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
                    let source =
                        if flags.is_empty() { pattern.to_owned() } else { format!("(?{flags}){pattern}") };
                    Ok(regex_lite::Regex::new(&source).ok())
                })?;
            let text: Option<String> = ctx.get(2)?;
            Ok(matches!((regex.as_ref(), text), (Some(re), Some(text)) if re.is_match(&text)))
        },
    )
    .map_err(unavailable)
}

/// `contains_folded(text, needle)`: whether `text` contains `needle`, both case-folded as the
/// trigram index folds them (Unicode lower case), for searches that read a room instead of
/// the index (`messages.rs`, `TextPlan`). NULLs contain nothing.
fn register_contains(conn: &Connection) -> StoreResult<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "contains_folded",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let needle = ctx.get_or_create_aux(1, |needle| -> Result<String, rusqlite::Error> {
                Ok(needle.as_str().map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?.to_lowercase())
            })?;
            let text: Option<String> = ctx.get(0)?;
            Ok(text.is_some_and(|t| contains_folded(&t, &needle)))
        },
    )
    .map_err(unavailable)
}

/// Whether `text` contains `needle` (already lower case), ignoring case.
fn contains_folded(text: &str, needle: &str) -> bool {
    if text.is_ascii() && needle.is_ascii() {
        // The common case, without allocating.
        let (t, n) = (text.as_bytes(), needle.as_bytes());
        return n.is_empty() || t.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    text.to_lowercase().contains(needle)
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
    conn.execute_batch("SAVEPOINT job").map_err(unavailable)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job").map_err(unavailable)?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job").map_err(unavailable)?;
            Err(e)
        }
    }
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        metrics().store_write_batch_jobs.observe(batch.len() as f64);
        let (committed, replies) = run_batch(&conn, &mut batch);
        metrics().store_write_batch_seconds.observe_duration(started.elapsed());
        for reply in replies {
            reply(committed.clone());
        }
    }
}

/// Runs the batch in one transaction; returns the commit result and the replies to send after it.
fn run_batch(conn: &Connection, batch: &mut Vec<Job>) -> (StoreResult<()>, Vec<Reply>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: each caller sees the write fail.
        batch.clear();
        tracing::error!(error = %e, "sqlite transaction could not start");
        return (Err(unavailable(e)), Vec::new());
    }
    let replies: Vec<Reply> = batch.drain(..).map(|job| job(conn)).collect();
    let committed = conn.execute_batch("COMMIT").map_err(unavailable);
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!(error = ?committed, "sqlite commit failed");
    }
    (committed, replies)
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("sqlite writer stopped".into())
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("read pool lock poisoned".into())
}

/// Decodes a JSON document column.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(entity: &'static str, doc: &str) -> StoreResult<T> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt { entity, detail: e.to_string() })
}

pub(crate) fn encode<T: serde::Serialize>(entity: &'static str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt { entity, detail: e.to_string() })
}

/// Maps a unique-constraint violation to `Conflict`, anything else to `Unavailable`.
pub(crate) fn conflict_or(entity: &'static str, key: &str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            StoreError::Conflict { entity, key: key.to_owned() }
        }
        _ => unavailable(e),
    }
}

/// `LIMIT` for an optional count (`-1` is SQLite's "no limit").
pub(crate) fn limit(count: Option<u64>) -> i64 {
    count.map_or(-1, |c| i64::try_from(c).unwrap_or(i64::MAX))
}

pub(crate) fn offset(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(all(test, feature = "testsuite"))]
mod tests;

#[cfg(test)]
mod contains_tests {
    use super::contains_folded;

    #[test]
    fn contains_ignores_case_in_any_script() {
        assert!(contains_folded("Hello World", "o wor"));
        assert!(contains_folded("anything", ""));
        assert!(!contains_folded("Hello", "hellos"));
        assert!(contains_folded("Élan de l'ÉCOLE", "école"));
        assert!(contains_folded("项目进度会议", "进度"));
        assert!(!contains_folded("项目进度会议", "会谈"));
    }
}
