//! SQLite's write-ahead log is copied back into the database file (a checkpoint) by a thread
//! of the server's own, not by whichever request happens to commit when the log passes 1,000
//! pages. That request copied the pages and synced the file while it held the write turn
//! ([`super::write_transaction`]), so every writer queued behind it waited. With this thread
//! the code exchange's p99 fell from 3.8 to 1.3 ms, and the refresh grant's from 7–8 to 5.5–7 ms
//! (docs/benchmarks.md).
//!
//! A `PASSIVE` checkpoint waits for no reader and no writer; what a reader still needs stays
//! in the log for the next round. But under a steady stream of writes it never catches up
//! with the end of the log, and the log only starts again from the beginning once all of it
//! was copied: left alone, it grows, and every read looks through more of it. So once the
//! log passes [`RESTART_PAGES`], a round copies what is left holding the write turn: little,
//! since most of it was copied already without it. The server's own connections still
//! checkpoint when the log passes [`BACKSTOP_PAGES`], should this thread ever fall that far
//! behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;

/// Log pages after which a committing connection checkpoints by itself after all (SQLite's
/// default is 1,000): about 40 MiB, a few seconds of the heaviest write load measured.
pub const BACKSTOP_PAGES: u32 = 10_000;

/// Log pages after which a round holds the write turn to copy the rest (SQLite's own
/// checkpoint threshold).
const RESTART_PAGES: i32 = 1_000;

/// How long the thread rests after a round that found the log as it left it.
const IDLE: Duration = Duration::from_millis(100);
/// How long after a round that found new pages: writes are coming in.
const BUSY: Duration = Duration::from_millis(10);
/// After a failed round (the file briefly locked by a backup, say).
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The thread, running for as long as this lives.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection of its own to the SQLite database at `path` and starts checkpointing.
    pub fn start(path: &str) -> Result<Self, diesel::ConnectionError> {
        let mut conn = SqliteConnection::establish(path)?;
        conn.batch_execute("PRAGMA busy_timeout = 5000;")
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&mut conn, &stopped))
            .map_err(|e| {
                diesel::ConnectionError::BadConnection(format!("could not start the checkpoint thread: {e}"))
            })?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn run(conn: &mut SqliteConnection, stop: &AtomicBool) {
    let mut last_log_pages = None;
    while !stop.load(Ordering::Acquire) {
        let rest = match round(conn) {
            Ok(log_pages) if last_log_pages.replace(log_pages) == Some(log_pages) => IDLE,
            Ok(_) => BUSY,
            Err(error) => {
                tracing::warn!(%error, "could not checkpoint the SQLite log; trying again in a second");
                AFTER_FAILURE
            }
        };
        std::thread::park_timeout(rest);
    }
}

#[derive(QueryableByName)]
struct Outcome {
    /// The log's size in pages (it starts again from the beginning once all of it was copied
    /// and no reader needs it).
    #[diesel(sql_type = Integer)]
    log: i32,
}

/// Copies what no reader needs while requests go on writing, then, if the log is long,
/// the rest while they wait ([`super::SQLITE_WRITER`]), so that the next write starts it
/// afresh. Answers the log's size in pages.
fn round(conn: &mut SqliteConnection) -> QueryResult<i32> {
    let log_pages = checkpoint(conn)?;
    if log_pages < RESTART_PAGES {
        return Ok(log_pages);
    }
    let _turn = super::SQLITE_WRITER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    checkpoint(conn)
}

/// One `PASSIVE` checkpoint: copies what no reader still needs. Answers the log's size in pages.
fn checkpoint(conn: &mut SqliteConnection) -> QueryResult<i32> {
    Ok(diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<Outcome>(conn)?.log)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages in the log not yet copied back.
    fn uncopied_pages(conn: &mut SqliteConnection) -> i32 {
        #[derive(QueryableByName)]
        struct Frames {
            #[diesel(sql_type = Integer)]
            log: i32,
            #[diesel(sql_type = Integer)]
            checkpointed: i32,
        }
        // NOOP reports the log as it stands and copies nothing.
        let frames: Frames = diesel::sql_query("PRAGMA wal_checkpoint(NOOP)").get_result(conn).unwrap();
        frames.log - frames.checkpointed
    }

    #[test]
    fn the_thread_copies_the_log_back_while_connections_do_not() {
        // Arrange: a WAL database whose writer never checkpoints by itself.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let path = path.to_str().unwrap();
        let mut writer = SqliteConnection::establish(path).unwrap();
        writer
            .batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
                 INSERT INTO t SELECT randomblob(1000) FROM n;",
            )
            .unwrap();
        assert!(uncopied_pages(&mut writer) > 100, "the log holds what was written");

        // Act
        let checkpointer = Checkpointer::start(path).unwrap();

        // Assert: everything is copied back, with nothing else checkpointing; dropping the
        // checkpointer stops its thread (the join returns).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while uncopied_pages(&mut writer) > 0 {
            assert!(std::time::Instant::now() < deadline, "the log was never copied back");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(checkpointer);
    }
}
