//! Storage: one diesel connection type for SQLite and PostgreSQL, an r2d2 pool, embedded
//! migrations, and `run`, which keeps synchronous diesel work off actix's async workers.
//!
//! Query functions in the submodules are plain `fn(&mut DbConnection, …) -> QueryResult<_>`.
//! Lookups by a unique key use `.get_result()`, not `.first()`: the `LIMIT ?` that `.first()`
//! binds makes SQLite recompile the statement on every execution, which was half the cost
//! of a token request.
//!
//! Floor: storage (docs/architecture.md); names leaves only.

/// Runs `$query` with the backend's own connection bound to `$c`, for what diesel's
/// `MultiConnection` cannot express (`ON CONFLICT`) but both backends spell the same way,
/// and for the hottest reads: through `MultiConnection` a query is walked again on every
/// call, writing out its column names, before its cached statement is found.
macro_rules! on_own_backend {
    ($conn:expr, |$c:ident| $query:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $query,
            #[cfg(feature = "postgres")]
            $crate::db::DbConnection::Postgres($c) => $query,
        }
    };
}

pub mod api_keys;
pub mod apis;
pub mod audit;
pub mod authorization_codes;
pub mod changes;
pub mod checkpoints;
pub mod clients;
pub mod consents;
pub mod device_authorizations;
pub mod master_keys;
pub mod passkeys;
pub mod password_resets;
pub mod pending_sign_ins;
mod prepared;
pub mod refresh_tokens;
pub mod revoked_tokens;
pub mod schema;
pub mod second_factors;
pub mod sessions;
pub mod setup_tokens;
pub mod signing_keys;
pub mod teams;
pub mod tenants;
pub mod used_assertions;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
#[cfg(feature = "postgres")]
use secrecy::ExposeSecret;

use crate::config::DatabaseTarget;
use crate::error::AppError;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    #[cfg(feature = "postgres")]
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// The connection pool, and where the writes made through its connections are recorded for
/// the caches ([`changes`]).
#[derive(Clone)]
pub struct DbPool {
    connections: r2d2::Pool<ConnectionManager>,
    changes: Arc<changes::Changes>,
    /// The server's SQLite checkpoints, for as long as any clone of the pool lives.
    checkpointer: Option<Arc<checkpoints::Checkpointer>>,
}

impl DbPool {
    fn new(connections: r2d2::Pool<ConnectionManager>) -> Self {
        // Until the server gives it its own, a pool's writes make nothing cacheable.
        Self { connections, changes: Arc::new(changes::Changes::new(Duration::ZERO)), checkpointer: None }
    }

    /// This pool, recording its writes in `changes` (those the process's caches read).
    pub fn recording_in(self, changes: Arc<changes::Changes>) -> Self {
        Self { changes, ..self }
    }

    pub fn changes(&self) -> &Arc<changes::Changes> {
        &self.changes
    }

    /// A connection from the pool (waiting for one up to the pool's timeout). What is
    /// written through it is announced when it goes back ([`PooledDb`]).
    pub fn get(&self) -> Result<PooledDb, r2d2::Error> {
        Ok(PooledDb { conn: self.connections.get()?, changes: self.changes.clone() })
    }
}

/// The pool's own readings and timeouts (`/readyz`, `/metrics`); its `get` is the one above.
impl std::ops::Deref for DbPool {
    type Target = r2d2::Pool<ConnectionManager>;

    fn deref(&self) -> &Self::Target {
        &self.connections
    }
}

/// A pooled connection that, when it goes back to the pool, makes what was written through
/// it stale in this process's caches and announces it to the other instances. Every write
/// of the server and of the tests goes through one, so none can be forgotten.
pub struct PooledDb {
    conn: r2d2::PooledConnection<ConnectionManager>,
    changes: Arc<changes::Changes>,
}

impl std::ops::Deref for PooledDb {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PooledDb {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl Drop for PooledDb {
    fn drop(&mut self) {
        // Committed or not, what was written is announced: a needless announcement only
        // costs a cache miss, a missing one would keep a revoked key working.
        let written = changes::take_written();
        if written.is_empty() {
            return;
        }
        self.changes.written(written);
        if let Err(error) = changes::announce(&mut self.conn, &self.changes.message(written)) {
            tracing::warn!(%error, "could not tell the other instances what changed; their caches age out");
        }
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Opens connections of the configured backend. diesel's generic manager would try each
/// backend in turn, and an unreachable PostgreSQL URL would then be opened as a SQLite file.
#[derive(Debug)]
pub struct ConnectionManager {
    target: DatabaseTarget,
    checkpoints: Checkpoints,
}

/// Who copies SQLite's log back into the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// The connection that commits when the log passes 1,000 pages (SQLite's default): for
    /// the command line's short runs.
    OnCommit,
    /// A thread of the pool's own ([`checkpoints`]): for the server, whose requests then
    /// never wait for one.
    InBackground,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.target {
            DatabaseTarget::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::ConnectionError::InvalidConnectionUrl("the SQLite path is not valid UTF-8".into())
                })?;
                let mut conn = diesel::SqliteConnection::establish(path)?;
                // WAL lets readers proceed while one writer commits; busy_timeout makes
                // concurrent writers wait for the lock instead of failing at once.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                )
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                if self.checkpoints == Checkpoints::InBackground {
                    conn.batch_execute(&format!("PRAGMA wal_autocheckpoint = {};", checkpoints::BACKSTOP_PAGES))
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                }
                Ok(DbConnection::Sqlite(conn))
            }
            #[cfg(feature = "postgres")]
            DatabaseTarget::Postgres(url) => {
                let mut conn = establish_postgres(url.expose_secret())?;
                // Timestamps are stored as UTC `timestamp without time zone`.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Postgres(conn))
            }
            #[cfg(not(feature = "postgres"))]
            DatabaseTarget::Postgres(_) => {
                Err(diesel::ConnectionError::InvalidConnectionUrl("this build has no PostgreSQL support".into()))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), diesel::ConnectionError> {
        diesel::r2d2::R2D2Connection::ping(conn).map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    /// A connection whose transaction was left broken, or whose server went away, is not
    /// returned to the pool.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Opens a PostgreSQL connection. Every one in Latchkey goes through here, so that OpenSSL,
/// libpq's TLS, is first told to leave its state to the operating system at exit: by default
/// an `atexit` handler frees it, and a process that exits while another thread is inside
/// libpq (the pool opening a connection, the changes listener reading) crashes on its way
/// out, with a double free or a segmentation fault.
#[cfg(feature = "postgres")]
pub fn establish_postgres(url: &str) -> diesel::ConnectionResult<diesel::PgConnection> {
    static KEEP_OPENSSL_THROUGH_EXIT: std::sync::Once = std::sync::Once::new();
    KEEP_OPENSSL_THROUGH_EXIT.call_once(|| {
        const OPENSSL_INIT_NO_ATEXIT: u64 = 0x0008_0000;
        unsafe extern "C" {
            fn OPENSSL_init_crypto(opts: u64, settings: *const std::ffi::c_void) -> std::ffi::c_int;
        }
        // SAFETY: OpenSSL's initialisation entry point (OpenSSL 1.1.1 and 3), with no
        // settings. The option counts only in the first call, which this is unless something
        // outside Latchkey used OpenSSL first; libpq's own later calls leave it in place.
        unsafe { OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, std::ptr::null()) };
    });
    diesel::PgConnection::establish(url)
}

/// Builds the pool and applies pending migrations before anything else touches the data.
pub fn build_pool(target: &DatabaseTarget, max_size: u32) -> anyhow::Result<DbPool> {
    let pool = connect_pool(target, max_size, Checkpoints::OnCommit)?;
    let mut conn = pool.get().context("could not get a database connection")?;
    run_migrations(&mut conn)?;
    Ok(pool)
}

/// As [`build_pool`], for the server: on SQLite its checkpoints run in a thread of their own
/// ([`checkpoints`]), never in a request.
pub fn build_server_pool(target: &DatabaseTarget, max_size: u32) -> anyhow::Result<DbPool> {
    let mut pool = connect_pool(target, max_size, Checkpoints::InBackground)?;
    run_migrations(&mut *pool.get().context("could not get a database connection")?)?;
    if let DatabaseTarget::Sqlite(path) = target {
        let path = path.to_str().context("the SQLite path is not valid UTF-8")?;
        let checkpointer =
            checkpoints::Checkpointer::start(path).context("could not open the SQLite database for checkpoints")?;
        pool.checkpointer = Some(Arc::new(checkpointer));
    }
    Ok(pool)
}

/// Opens the Latchkey database at `target` and brings its schema up to date, but does not
/// make a new one: `None` when there is none there (no SQLite file, or a database without
/// Latchkey's tables), so that the caller can say it is making one.
pub fn open_existing(target: &DatabaseTarget, max_size: u32) -> anyhow::Result<Option<DbPool>> {
    if let DatabaseTarget::Sqlite(path) = target
        && !path.is_file()
    {
        return Ok(None);
    }
    let pool = connect_pool(target, max_size, Checkpoints::OnCommit)?;
    let mut conn = pool.get().context("could not get a database connection")?;
    if !has_migrations_table(&mut conn).context("could not read the database's tables")? {
        return Ok(None);
    }
    run_migrations(&mut conn)?;
    Ok(Some(pool))
}

fn has_migrations_table(conn: &mut DbConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tables: i64,
    }
    let query = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT COUNT(*) AS tables FROM sqlite_master WHERE type = 'table' AND name = '__diesel_schema_migrations'"
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(_) => {
            "SELECT COUNT(*) AS tables FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '__diesel_schema_migrations'"
        }
    };
    Ok(diesel::sql_query(query).get_result::<Found>(conn)?.tables > 0)
}

/// What a SQLite backup holds, read back from the copy itself.
#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub file: std::path::PathBuf,
    pub bytes: u64,
    /// The newest migration the copy has: what a server restored from it starts at.
    pub schema_version: String,
}

/// Copies the SQLite database behind `conn` to `to`, a new file readable by its owner only,
/// while others go on reading and writing it. `VACUUM INTO` reads in one transaction, so the
/// copy is the database at one moment, whole and compacted. The copy is then opened on its
/// own and checked (`PRAGMA integrity_check`) before it is reported.
#[cfg_attr(not(feature = "postgres"), allow(irrefutable_let_patterns))]
pub fn back_up_sqlite(conn: &mut DbConnection, to: &std::path::Path) -> anyhow::Result<BackupReport> {
    let DbConnection::Sqlite(conn) = conn else { anyhow::bail!("only a SQLite database is copied this way") };
    let destination = to.to_str().context("the backup's path is not valid UTF-8")?;
    // SQLite fills an empty file: made here first, so that it is private from the start.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(to).with_context(|| format!("could not create {}", to.display()))?;
    let copied = diesel::sql_query("VACUUM INTO ?").bind::<diesel::sql_types::Text, _>(destination).execute(conn);
    if let Err(error) = copied {
        let _ = std::fs::remove_file(to);
        return Err(anyhow::Error::new(error).context("the database could not be copied"));
    }
    check_sqlite_copy(to)
}

fn check_sqlite_copy(path: &std::path::Path) -> anyhow::Result<BackupReport> {
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    #[derive(QueryableByName)]
    struct Newest {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let url = path.to_str().context("the backup's path is not valid UTF-8")?;
    let mut copy = diesel::SqliteConnection::establish(url).context("the copy does not open")?;
    let check: Check = diesel::sql_query("PRAGMA integrity_check").get_result(&mut copy)?;
    anyhow::ensure!(check.integrity_check == "ok", "the copy is damaged: {}", check.integrity_check);
    let newest: Newest = diesel::sql_query("SELECT MAX(version) AS version FROM __diesel_schema_migrations")
        .get_result(&mut copy)
        .context("the copy has no Latchkey schema")?;
    Ok(BackupReport { file: path.to_path_buf(), bytes: std::fs::metadata(path)?.len(), schema_version: newest.version })
}

/// Connections the pool keeps open however quiet the server is: enough for a request and
/// the housekeeping beside it without waiting for a connection to open.
const MIN_IDLE_CONNECTIONS: u32 = 2;

fn connect_pool(target: &DatabaseTarget, max_size: u32, checkpoints: Checkpoints) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager { target: target.clone(), checkpoints };
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        // Connections beyond these are opened when requests need them and closed after ten
        // idle minutes (r2d2's default): an idle SQLite connection holds 0.1-0.2 MiB of the
        // server's memory, a PostgreSQL one a backend process on the database's machine.
        .min_idle(Some(max_size.min(MIN_IDLE_CONNECTIONS)))
        .connection_timeout(Duration::from_secs(5))
        // A ping on every checkout doubled the queries of the token endpoint; a connection
        // that fails is found broken on return instead, and r2d2 replaces it.
        .test_on_check_out(false)
        .build(manager)
        .with_context(|| format!("could not connect to the database at {}", target.describe()))?;
    Ok(DbPool::new(pool))
}

/// Applies pending migrations; returns the versions applied.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Sqlite(conn) => conn.run_pending_migrations(SQLITE_MIGRATIONS).map(versions),
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(conn) => {
            // Instances starting together must not run the same migration twice.
            let (lock, unlock) = (
                format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
                format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"),
            );
            conn.batch_execute(&lock).context("could not take the migration lock")?;
            let result = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions);
            conn.batch_execute(&unlock).context("could not release the migration lock")?;
            result
        }
    };
    applied.map_err(|e| anyhow::anyhow!(e).context("could not apply database migrations"))
}

/// Advisory lock keys: one number per thing that instances starting together must do once.
#[cfg(feature = "postgres")]
const MIGRATION_LOCK: i64 = 7_426_117;
pub const FIRST_SIGNING_KEY_LOCK: i64 = 7_426_118;
pub const MASTER_KEY_ROTATION_LOCK: i64 = 7_426_119;

/// Serialises this transaction with every other that takes the same `lock`, on every
/// instance, until it ends. On SQLite a write transaction holds the database's one write
/// lock already.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
pub fn lock_for_this_transaction(conn: &mut DbConnection, lock: i64) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(_) => Ok(()),
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(pg) => diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(lock)
            .execute(pg)
            .map(drop),
    }
}

/// Reverts every migration, newest first (used to check that `down.sql` files work).
pub fn revert_all_migrations(conn: &mut DbConnection) -> anyhow::Result<()> {
    let result = match conn {
        DbConnection::Sqlite(conn) => conn.revert_all_migrations(SQLITE_MIGRATIONS).map(drop),
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(conn) => conn.revert_all_migrations(POSTGRES_MIGRATIONS).map(drop),
    };
    result.map_err(|e| anyhow::anyhow!(e).context("could not revert database migrations"))
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.iter().map(ToString::to_string).collect()
}

/// Runs blocking diesel work on actix's blocking pool; checking out a connection blocks too.
/// A failure that leaves the connection broken (the server went away) is reported as the
/// database being unavailable, not as a bug.
pub async fn run<T: Send + 'static>(
    pool: &DbPool,
    f: impl FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        match f(&mut conn) {
            Err(AppError::Unexpected(error)) if connection_lost(&mut conn) => {
                Err(AppError::Unavailable(error.context("the database connection was lost")))
            }
            result => result,
        }
    })
    .await?
}

/// SQLite admits one writer at a time, and its busy handler waits by sleeping (1 ms, then
/// longer, up to 100 ms): contended writes became latency spikes (the refresh grant's p99
/// was 88 ms). This process's SQLite writers take turns on a mutex instead.
pub(super) static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a transaction; on SQLite, after taking this process's writer turn, and
/// holding the write lock from the start. Called inside another, it runs in a savepoint of
/// that one.
///
/// SQLite's default (deferred) transaction reads from a snapshot and asks for the write lock
/// at its first write. If another connection (another process, or a writer that does not
/// take turns here) committed in between, that write fails at once with "database is
/// locked" (SQLITE_BUSY_SNAPSHOT), which no busy timeout can wait out. `BEGIN IMMEDIATE`
/// waits for the lock first, so what the transaction reads is what it writes over.
#[cfg_attr(not(feature = "postgres"), allow(irrefutable_let_patterns))]
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;

    let DbConnection::Sqlite(sqlite) = conn else { return conn.transaction(f) };
    // Inside a caller's write transaction (one change made of others): a savepoint in it.
    // The caller holds the turn and the lock already; taking the turn again would wait on
    // ourselves.
    if matches!(AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth(), Ok(Some(_))) {
        return conn.transaction(f);
    }
    let _turn = SQLITE_WRITER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    // From here as diesel's own `transaction`: commit on success, roll back on failure.
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback_error) => Err(rollback_error.into()),
        },
    }
}

fn connection_lost(conn: &mut DbConnection) -> bool {
    use diesel::r2d2::R2D2Connection;
    conn.is_broken() || conn.ping().is_err()
}

/// A stored time (UTC without an offset, as both databases keep it) with its offset, as
/// timestamps leave the server: RFC 3339 UTC.
pub fn utc(at: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_naive_utc_and_offset(at, chrono::Utc)
}

/// The current time as stored: UTC, microsecond precision (what PostgreSQL keeps), so a
/// value read back compares equal to the one written.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now().naive_utc();
    now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
}

/// A new id for a row of a table that grows with traffic (refresh tokens and their families,
/// audit events): a UUID v7, whose first bits are the time, so that inserts append to the
/// id's index rather than dirty a page at a random place in it on every commit. After the
/// time come a counter seeded at random each millisecond (so that ids made in one process
/// keep their order) and 32 random bits. It tells nothing the row's own creation time does
/// not, and no id here is a secret: the tokens are, and they are stored as keyed hashes.
pub fn time_ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether an insert made the row (`true`) or met one with the same key (`false`): "insert
/// unless present" for both backends, as ON CONFLICT is not in diesel's multi-backend
/// subset. Outside a transaction only: PostgreSQL aborts a transaction on the violation.
pub fn first_insert(inserted: diesel::QueryResult<usize>) -> diesel::QueryResult<bool> {
    use diesel::result::{DatabaseErrorKind, Error};
    match inserted {
        Ok(_) => Ok(true),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The only tenant of a single-tenant deployment, created by the first migration.
pub const DEFAULT_TENANT_ID: &str = "default";

#[cfg(test)]
mod tests {
    #[test]
    fn time_ordered_ids_sort_as_they_were_made_and_never_repeat() {
        let ids: Vec<String> = (0..1000).map(|_| super::time_ordered_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        // As text, as the index compares them: the order they were made in, none twice.
        assert_eq!(sorted, ids);
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)));
    }

    /// STAT4 makes an analysed database compile every keyed lookup again on each run
    /// (`.cargo/config.toml` builds SQLite without it): a build that lost the flag fails here.
    #[test]
    fn sqlite_is_built_without_stat4() {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Options {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            stat4: i64,
        }
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let options: Options = diesel::sql_query(
            "SELECT COUNT(*) AS stat4 FROM pragma_compile_options WHERE compile_options = 'ENABLE_STAT4'",
        )
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(options.stat4, 0);
    }
}
