//! What the caches hold and when it stops being true.
//!
//! The rows every request reads — API keys with their owners and reach, clients, APIs, token
//! revocations — are kept in memory ([`Cached`]) so that a request that finds them there needs
//! no trip to the blocking pool. Each cache depends on some tables; every function of this
//! layer that writes one of them says so ([`wrote`]). The pooled connection
//! ([`PooledDb`](super::PooledDb)) collects what was written through it and, when it goes back
//! to the pool (the work committed), makes this process's copies stale at once
//! ([`Changes::written`]) and tells the other instances ([`announce`]: PostgreSQL's `NOTIFY`,
//! or Redis when the database cannot carry it), whose listeners record the same.
//!
//! Staleness is a generation per table: an entry remembers the generations it was read under
//! and is used only while they are unchanged, so a reader that raced a write can never store
//! what it read before the write as current. An entry also ages out ([`Changes::max_age`]):
//! after the configured age while another instance's change is certain to reach us, after one
//! second while it is not (no channel, or the channel is down), which bounds what a change
//! made without a channel (the command line on SQLite) can leave stale.

use std::cell::Cell;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::QueryResult;

use super::DbConnection;
use crate::metrics::CacheLookups;

/// The tables some cache depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    ApiKeys,
    Users,
    ServiceAccounts,
    /// Teams and their members.
    Teams,
    Clients,
    Apis,
    /// Revoked access tokens.
    RevokedTokens,
}

impl Table {
    const ALL: [Table; 7] = [
        Table::ApiKeys,
        Table::Users,
        Table::ServiceAccounts,
        Table::Teams,
        Table::Clients,
        Table::Apis,
        Table::RevokedTokens,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::ApiKeys => "api_keys",
            Table::Users => "users",
            Table::ServiceAccounts => "service_accounts",
            Table::Teams => "teams",
            Table::Clients => "clients",
            Table::Apis => "apis",
            Table::RevokedTokens => "revoked_tokens",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`Table`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tables(u8);

impl Tables {
    pub const NONE: Tables = Tables(0);
    pub const ALL: Tables = Tables((1 << Table::ALL.len()) - 1);

    pub const fn of(tables: &[Table]) -> Tables {
        let mut bits = 0;
        let mut i = 0;
        while i < tables.len() {
            bits |= 1 << tables[i] as u8;
            i += 1;
        }
        Tables(bits)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn with(self, table: Table) -> Tables {
        Tables(self.0 | table.bit())
    }

    fn iter(self) -> impl Iterator<Item = Table> {
        Table::ALL.into_iter().filter(move |table| self.0 & table.bit() != 0)
    }

    /// As a notification carries it: the tables' names, space-separated.
    pub fn to_message(self) -> String {
        self.iter().map(Table::name).collect::<Vec<_>>().join(" ")
    }

    /// A notification's tables; a name this version does not know (a newer instance's)
    /// stands for all of them, since staleness is the only risk. The sender's mark
    /// ([`Changes::message`]) is not a table.
    pub fn from_message(message: &str) -> Tables {
        message.split_whitespace().filter(|word| !word.starts_with(SENDER_MARK)).fold(Tables::NONE, |tables, name| {
            match Table::ALL.into_iter().find(|table| table.name() == name) {
                Some(table) => tables.with(table),
                None => Tables::ALL,
            }
        })
    }
}

thread_local! {
    /// What the work on this thread wrote; the connection takes it when it goes back.
    static WRITTEN: Cell<Tables> = const { Cell::new(Tables::NONE) };
}

/// Notes that the current unit of work wrote `table` (called by this layer's writers, before
/// or after the statement: it counts only once the work is over).
pub fn wrote(table: Table) {
    WRITTEN.with(|written| written.set(written.get().with(table)));
}

/// What the work run on this thread since the last call wrote.
pub fn take_written() -> Tables {
    WRITTEN.with(|written| written.replace(Tables::NONE))
}

/// How a message names the instance that sent it (`from:` and its id), so that an instance
/// can tell its own announcements, echoed back by the channel, from others'.
const SENDER_MARK: &str = "from:";

/// The channel instances on PostgreSQL tell each other on.
pub const CHANNEL: &str = "latchkey_changes";

/// Tells the other instances on this database what was written, when the database can
/// carry it (PostgreSQL's `NOTIFY`, after the commit); on SQLite it cannot, and another
/// process hears of it from Redis, or by its entries' one-second age.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
pub fn announce(conn: &mut DbConnection, message: &str) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(_) => Ok(()),
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(conn) => {
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(message)
                .execute(conn)
                .map(drop)
        }
    }
}

/// How long an entry may be used while no channel tells this process of other instances'
/// changes: the bound on what they can leave stale.
pub const UNHEARD_MAX_AGE: Duration = Duration::from_secs(1);

/// The generation of every table, and whether other instances' changes reach this process.
#[derive(Debug)]
pub struct Changes {
    generations: [AtomicU64; Table::ALL.len()],
    /// Whether a channel (PostgreSQL `LISTEN`, Redis) is up and listened to.
    hearing: AtomicBool,
    configured_max_age: Duration,
    /// Writes whose announcement waits for an asynchronous channel (Redis).
    outbox: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Tables>>,
    /// This process among the instances, in what it announces.
    sender: String,
}

impl Changes {
    /// `max_age` zero: nothing is cached.
    pub fn new(max_age: Duration) -> Self {
        Self {
            generations: Default::default(),
            hearing: AtomicBool::new(false),
            configured_max_age: max_age,
            outbox: std::sync::OnceLock::new(),
            sender: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// What announces `tables` as written by this process.
    pub fn message(&self, tables: Tables) -> String {
        format!("{} {SENDER_MARK}{}", tables.to_message(), self.sender)
    }

    /// A message heard on the channel: another instance's writes are recorded; this one's
    /// own, echoed back, were recorded when they were made, and recording them again would
    /// only throw away what was read since.
    pub fn heard(&self, message: &str) {
        let own = message.split_whitespace().any(|word| word.strip_prefix(SENDER_MARK) == Some(self.sender.as_str()));
        if !own {
            self.record(Tables::from_message(message));
        }
    }

    /// Makes every entry that depends on `tables` stale, here and now.
    pub fn record(&self, tables: Tables) {
        for table in tables.iter() {
            self.generations[table as usize].fetch_add(1, Ordering::AcqRel);
        }
    }

    fn generation(&self, tables: Tables) -> u64 {
        // Each generation only grows, so the sum changes whenever one of them does.
        tables.iter().map(|table| self.generations[table as usize].load(Ordering::Acquire)).sum()
    }

    /// Whether other instances' changes reach this process now. Losing the channel or
    /// finding it again makes everything stale: what was sent meanwhile was not heard.
    pub fn set_hearing(&self, hearing: bool) {
        if self.hearing.swap(hearing, Ordering::AcqRel) != hearing {
            self.record(Tables::ALL);
        }
    }

    pub fn is_hearing(&self) -> bool {
        self.hearing.load(Ordering::Acquire)
    }

    /// How long an entry may be used now.
    pub fn max_age(&self) -> Duration {
        if self.is_hearing() { self.configured_max_age } else { self.configured_max_age.min(UNHEARD_MAX_AGE) }
    }

    /// Where writes go to be announced by an asynchronous channel; set once, by the
    /// process that runs that channel.
    pub fn send_writes_to(&self, outbox: tokio::sync::mpsc::UnboundedSender<Tables>) {
        let _ = self.outbox.set(outbox);
    }

    /// After a unit of work: stale here at once, then announced.
    pub fn written(&self, tables: Tables) {
        self.record(tables);
        if let Some(outbox) = self.outbox.get() {
            let _ = outbox.send(tables);
        }
    }
}

/// A bounded map of what some tables say, used while none of them has changed since it
/// was read and for at most [`Changes::max_age`]. Values are shared (`Arc`), never copied.
pub struct Cached<K, V> {
    entries: quick_cache::sync::Cache<K, Entry<V>>,
    changes: Arc<Changes>,
    depends_on: Tables,
    lookups: CacheLookups,
}

struct Entry<V> {
    value: Arc<V>,
    generation: u64,
    read_at: Instant,
}

// Not derived: that would ask `V: Clone`, and the value is shared, never copied.
impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), generation: self.generation, read_at: self.read_at }
    }
}

/// The generations a read starts under: taken before the database is asked, so that a
/// change committed during the read makes what it stores stale.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart(u64);

impl<K: Eq + Hash + Clone, V> Cached<K, V> {
    pub fn new(changes: Arc<Changes>, depends_on: Tables, capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            changes,
            depends_on,
            lookups: CacheLookups::default(),
        }
    }

    /// This cache, counting its hits and misses in `lookups` (`/metrics`).
    pub fn counted_in(self, lookups: CacheLookups) -> Self {
        Self { lookups, ..self }
    }

    /// The value, while it is still what the database says.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        Q: Hash + quick_cache::Equivalent<K> + ?Sized,
    {
        let found = self.entries.get(key).filter(|entry| {
            entry.generation == self.changes.generation(self.depends_on)
                && entry.read_at.elapsed() < self.changes.max_age()
        });
        let counter = if found.is_some() { &self.lookups.hits } else { &self.lookups.misses };
        counter.inc();
        found.map(|entry| entry.value)
    }

    pub fn start_read(&self) -> ReadStart {
        ReadStart(self.changes.generation(self.depends_on))
    }

    /// Keeps what a read that began at `start` found, unless something it depends on was
    /// written since (or nothing may be cached).
    pub fn insert(&self, key: K, value: Arc<V>, start: ReadStart) {
        if start.0 != self.changes.generation(self.depends_on) || self.changes.configured_max_age.is_zero() {
            return;
        }
        self.entries.insert(key, Entry { value, generation: start.0, read_at: Instant::now() });
    }

    /// As [`Self::get_or_read`], for work already on the blocking pool: the read runs on the
    /// connection it holds, in whatever transaction that connection is in. A hit allocates
    /// nothing: `key` is borrowed (`&str` for a `String` key) and owned only to be kept.
    pub fn get_or_read_on<Q>(
        &self,
        conn: &mut DbConnection,
        key: &Q,
        read: impl FnOnce(&mut DbConnection, &Q) -> QueryResult<Option<V>>,
    ) -> QueryResult<Option<Arc<V>>>
    where
        Q: Hash + quick_cache::Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        let start = self.start_read();
        Ok(self.keep(|| key.to_owned(), read(conn, key)?, start))
    }

    /// What a read that began at `start` found, kept under `key` unless it found nothing (so
    /// that unknown keys cannot fill the cache).
    fn keep(&self, key: impl FnOnce() -> K, found: Option<V>, start: ReadStart) -> Option<Arc<V>> {
        found.map(|value| {
            let value = Arc::new(value);
            self.insert(key(), value.clone(), start);
            value
        })
    }
}

impl<K, V> Cached<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Send + Sync + 'static,
{
    /// The value from here, or else as `read` finds it (then kept; nothing is kept when it
    /// finds nothing, so that unknown keys cannot fill the cache).
    pub async fn get_or_read(
        &self,
        pool: &super::DbPool,
        key: K,
        read: impl FnOnce(&mut DbConnection, &K) -> QueryResult<Option<V>> + Send + 'static,
    ) -> Result<Option<Arc<V>>, crate::error::AppError> {
        if let Some(value) = self.get(&key) {
            return Ok(Some(value));
        }
        let start = self.start_read();
        let (key, found) = super::run(pool, move |conn| {
            let found = read(conn, &key)?;
            Ok((key, found))
        })
        .await?;
        Ok(self.keep(|| key, found, start))
    }
}

impl<K, V> std::fmt::Debug for Cached<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").field("depends_on", &self.depends_on).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_age: Duration, tables: &[Table]) -> (Arc<Changes>, Cached<String, u32>) {
        let changes = Arc::new(Changes::new(max_age));
        changes.set_hearing(true);
        let cached = Cached::new(changes.clone(), Tables::of(tables), 16);
        (changes, cached)
    }

    #[test]
    fn an_entry_is_used_until_a_table_it_depends_on_is_written() {
        let (changes, cached) = cache(Duration::from_secs(60), &[Table::Clients]);
        cached.insert("a".into(), Arc::new(1), cached.start_read());
        assert_eq!(cached.get("a").as_deref(), Some(&1));
        changes.record(Tables::of(&[Table::Apis]));
        assert_eq!(cached.get("a").as_deref(), Some(&1), "another table's write changes nothing");
        changes.record(Tables::of(&[Table::Clients]));
        assert_eq!(cached.get("a"), None);
    }

    #[test]
    fn what_was_read_before_a_write_is_not_kept() {
        let (changes, cached) = cache(Duration::from_secs(60), &[Table::ApiKeys, Table::Users]);
        let start = cached.start_read();
        changes.record(Tables::of(&[Table::Users]));
        cached.insert("a".into(), Arc::new(1), start);
        assert_eq!(cached.get("a"), None);
    }

    #[test]
    fn without_a_channel_entries_live_one_second_at_most() {
        let changes = Arc::new(Changes::new(Duration::from_secs(60)));
        assert_eq!(changes.max_age(), UNHEARD_MAX_AGE);
        changes.set_hearing(true);
        assert_eq!(changes.max_age(), Duration::from_secs(60));
        let cached: Cached<String, u32> = Cached::new(changes.clone(), Tables::of(&[Table::Clients]), 4);
        cached.insert("a".into(), Arc::new(1), cached.start_read());
        changes.set_hearing(false);
        assert_eq!(cached.get("a"), None, "what was sent while deaf was not heard");
    }

    #[test]
    fn entries_age_out() {
        let (_, cached) = cache(Duration::from_millis(20), &[Table::Clients]);
        cached.insert("a".into(), Arc::new(1), cached.start_read());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cached.get("a"), None);
    }

    #[test]
    fn a_zero_age_caches_nothing() {
        let (_, cached) = cache(Duration::ZERO, &[Table::Clients]);
        cached.insert("a".into(), Arc::new(1), cached.start_read());
        assert_eq!(cached.get("a"), None);
    }

    #[test]
    fn messages_name_tables_and_unknown_names_mean_all() {
        let tables = Tables::of(&[Table::ApiKeys, Table::Teams]);
        assert_eq!(tables.to_message(), "api_keys teams");
        assert_eq!(Tables::from_message(&tables.to_message()), tables);
        assert_eq!(Tables::from_message("api_keys webhooks"), Tables::ALL);
        assert_eq!(Tables::from_message(""), Tables::NONE);
    }

    #[test]
    fn an_instance_ignores_its_own_announcements_echoed_back() {
        // Arrange: an entry in this instance's cache, read after its own write.
        let (here, cached) = cache(Duration::from_secs(60), &[Table::Clients]);
        let other = Changes::new(Duration::from_secs(60));
        let written = Tables::of(&[Table::Clients]);
        here.written(written);
        cached.insert("client".into(), Arc::new(1), cached.start_read());

        // Act: the channel brings back this instance's own message.
        here.heard(&here.message(written));

        // Assert: kept; another instance's message, or one without a sender (the command
        // line's, an older version's), makes it stale.
        assert_eq!(cached.get("client").as_deref(), Some(&1));
        assert_eq!(Tables::from_message(&here.message(written)), written, "the mark is not a table");
        here.heard(&other.message(written));
        assert_eq!(cached.get("client"), None);
        cached.insert("client".into(), Arc::new(2), cached.start_read());
        here.heard(&written.to_message());
        assert_eq!(cached.get("client"), None);
    }

    #[test]
    fn written_tables_are_taken_once_per_thread() {
        take_written();
        wrote(Table::Clients);
        wrote(Table::Users);
        assert_eq!(take_written(), Tables::of(&[Table::Clients, Table::Users]));
        assert_eq!(take_written(), Tables::NONE);
        std::thread::spawn(|| wrote(Table::Apis)).join().unwrap();
        assert_eq!(take_written(), Tables::NONE);
    }
}
