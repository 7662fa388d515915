//! Hearing what other instances write, so that this one's caches drop it (`db::changes`).
//!
//! On PostgreSQL every writer announces its writes with `NOTIFY` after committing, and each
//! instance `LISTEN`s on a connection of its own. SQLite cannot carry a message between
//! processes: with Redis configured, writes are published there and every instance
//! subscribes; without it, nothing is heard, and entries live one second at most. While the
//! channel is down (the listening connection lost, Redis away) the same one-second bound
//! holds, and everything cached is dropped when it comes back.
//!
//! Floor: core (names storage and settings only); started by `startup`, used by the
//! command line to announce its own writes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{DatabaseTarget, Settings};
use crate::db::changes::{Changes, Tables};

/// The Redis channel instances on SQLite tell each other on.
const REDIS_CHANNEL: &str = "latchkey:changes";

/// How often the PostgreSQL listener reads what arrived: the delay this adds to a change
/// reaching another instance.
#[cfg(feature = "postgres")]
const POLL: Duration = Duration::from_millis(20);

/// How often the listening connection is checked to be alive, when nothing arrives.
#[cfg(feature = "postgres")]
const CHECK_ALIVE: Duration = Duration::from_secs(5);

/// Wait before reconnecting a channel that failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// Hears other instances' writes for as long as it runs (spawned beside the server).
pub async fn hear(settings: Settings, changes: Arc<Changes>) {
    match (&settings.database, &settings.redis_url) {
        #[cfg(feature = "postgres")]
        (DatabaseTarget::Postgres(url), _) => hear_postgres(url.clone(), changes).await,
        (DatabaseTarget::Sqlite(_), Some(redis)) => hear_redis(redis.clone(), changes).await,
        _ => {
            tracing::info!("no channel between instances (SQLite without Redis): cached entries live one second");
            std::future::pending().await
        }
    }
}

#[cfg(feature = "postgres")]
async fn hear_postgres(url: SecretString, changes: Arc<Changes>) {
    use diesel::connection::SimpleConnection;

    loop {
        let connect = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<diesel::PgConnection> {
                let mut conn = crate::db::establish_postgres(url.expose_secret())?;
                conn.batch_execute(&format!("LISTEN {}", crate::db::changes::CHANNEL))?;
                Ok(conn)
            })
        };
        match connect.await.map_err(anyhow::Error::from).and_then(|connected| connected) {
            Ok(conn) => {
                changes.set_hearing(true);
                tracing::info!("listening for other instances' changes on PostgreSQL");
                let error = listen_postgres(conn, &changes).await;
                tracing::warn!(%error, "lost the PostgreSQL channel between instances; cached entries live one second until it is back");
            }
            Err(error) => tracing::warn!(%error, "could not listen on PostgreSQL for other instances' changes"),
        }
        changes.set_hearing(false);
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Reads notifications until the connection fails. libpq reads what has arrived without
/// waiting (its socket is non-blocking), so the poll runs here; only the liveness check,
/// a round trip, goes to the blocking pool.
#[cfg(feature = "postgres")]
async fn listen_postgres(mut conn: diesel::PgConnection, changes: &Changes) -> diesel::result::Error {
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        for notification in conn.notifications_iter() {
            match notification {
                Ok(notification) => changes.heard(&notification.payload),
                Err(error) => return error,
            }
        }
        if last_check.elapsed() >= CHECK_ALIVE {
            last_check = tokio::time::Instant::now();
            let checked = tokio::task::spawn_blocking(move || {
                use diesel::connection::SimpleConnection;
                let result = conn.batch_execute("SELECT 1");
                (conn, result)
            })
            .await;
            match checked {
                Ok((back, Ok(()))) => conn = back,
                Ok((_, Err(error))) => return error,
                Err(_) => return diesel::result::Error::BrokenTransactionManager,
            }
        }
    }
}

async fn hear_redis(url: SecretString, changes: Arc<Changes>) {
    let (outbox, mut written) = tokio::sync::mpsc::unbounded_channel();
    changes.send_writes_to(outbox);
    let client = match redis::Client::open(url.expose_secret()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the Redis URL cannot be used: instances do not hear each other's changes");
            return std::future::pending().await;
        }
    };
    // A write whose publication failed goes out first on the next connection.
    let mut unsent = None;
    loop {
        match subscribe(&client).await {
            Ok((publisher, messages)) => {
                changes.set_hearing(true);
                tracing::info!("listening for other instances' changes on Redis");
                unsent = relay_redis(publisher, messages, unsent, &mut written, &changes).await;
                tracing::warn!(
                    "lost the Redis channel between instances; cached entries live one second until it is back"
                );
            }
            Err(error) => tracing::warn!(%error, "could not subscribe on Redis for other instances' changes"),
        }
        changes.set_hearing(false);
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn subscribe(
    client: &redis::Client,
) -> redis::RedisResult<(redis::aio::MultiplexedConnection, redis::aio::PubSubStream)> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(REDIS_CHANNEL).await?;
    let publisher = client.get_multiplexed_async_connection().await?;
    Ok((publisher, pubsub.into_on_message()))
}

/// Publishes this process's writes (`unsent` first) and records everyone's, until either
/// side fails; then returns what it could not publish.
async fn relay_redis(
    mut publisher: redis::aio::MultiplexedConnection,
    mut messages: redis::aio::PubSubStream,
    mut unsent: Option<Tables>,
    written: &mut tokio::sync::mpsc::UnboundedReceiver<Tables>,
    changes: &Changes,
) -> Option<Tables> {
    loop {
        if let Some(tables) = unsent {
            let published: redis::RedisResult<()> =
                redis::cmd("PUBLISH").arg(REDIS_CHANNEL).arg(changes.message(tables)).query_async(&mut publisher).await;
            if let Err(error) = published {
                tracing::warn!(%error, "could not publish a change on Redis");
                return Some(tables);
            }
            unsent = None;
        }
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => match message.get_payload::<String>() {
                    Ok(payload) => changes.heard(&payload),
                    Err(_) => changes.record(Tables::ALL),
                },
                None => return None,
            },
            Some(tables) = written.recv() => unsent = Some(tables),
        }
    }
}

/// Announces a command-line process's writes to the running instances on SQLite with Redis
/// (on PostgreSQL the write itself did, with `NOTIFY`). Best effort: without it, a running
/// instance drops what it cached within a second anyway.
pub fn announce_from_command_line(settings: &Settings, tables: Tables) {
    let (DatabaseTarget::Sqlite(_), Some(url)) = (&settings.database, &settings.redis_url) else { return };
    let published = redis::Client::open(url.expose_secret()).and_then(|client| {
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        redis::cmd("PUBLISH").arg(REDIS_CHANNEL).arg(tables.to_message()).query::<()>(&mut conn)
    });
    if let Err(error) = published {
        tracing::warn!(%error, "could not tell the running instances of this change through Redis");
    }
}
