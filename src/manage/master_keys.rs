//! Master-key rotation. The database records which master key is current (by id); every
//! process agrees to it before it hashes or seals anything (`adopt`), so that instances
//! restarted with a new key keep writing under the old one until the rotation, in step with
//! those not yet restarted. `rotate` re-seals every sealed value under the configured key
//! and makes it current, in one transaction; running servers follow at their next key
//! reload. Keyed hashes (API keys, client secrets, refresh tokens, sessions …) cannot be
//! recomputed: they keep working for as long as the key they were made under is held.

use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::NaiveDateTime;
use serde::Serialize;

use crate::audit::{self, Context as AuditContext};
use crate::crypto::{MasterKeyId, MasterKeyRing};
use crate::db::DbConnection;
use crate::db::master_keys::{
    SealedColumn, current_master_key, list_master_keys, make_master_key_current, record_first_master_key,
};
use crate::db::signing_keys::{SigningKeyRow, list_all_keys};

/// The database's current master key is not one this process holds.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database's current master key is {database}, and this process holds {}",
    held.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
)]
pub struct NotHeld {
    pub database: String,
    pub held: Vec<MasterKeyId>,
}

/// Makes the database's current master key the ring's key for everything new, recording
/// one first when the database has none (a new database, or one from before key ids: the
/// key that opens its newest signing key). Refuses when the ring does not hold it.
pub fn adopt(conn: &mut DbConnection, ring: &Arc<MasterKeyRing>, now: NaiveDateTime) -> anyhow::Result<MasterKeyId> {
    let recorded = match current_master_key(conn).context("could not read the current master key")? {
        Some(id) => id,
        None => {
            let first = match list_all_keys(conn).context("could not read the signing keys")?.first() {
                Some(newest) => opening_key(ring, newest)?,
                None => ring.configured_id().clone(),
            };
            record_first_master_key(conn, first.as_str(), now).context("could not record the master key")?;
            current_master_key(conn)?.context("the master key just recorded is not there")?
        }
    };
    if !ring.use_for_new(&recorded) {
        return Err(NotHeld { database: recorded, held: ring.ids() }.into());
    }
    Ok(ring.current_id().clone())
}

fn opening_key(ring: &Arc<MasterKeyRing>, row: &SigningKeyRow) -> anyhow::Result<MasterKeyId> {
    match ring.sealer().open_noting_key(&row.private_key_sealed, &SigningKeyRow::seal_context(&row.kid)) {
        Ok((_, id)) => Ok(id),
        Err(_) => bail!(
            "signing key {} cannot be opened with {} held here",
            row.kid,
            ring.ids().iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ")
        ),
    }
}

/// How many values of one sealed column a rotation moved to the new key.
#[derive(Debug, Serialize)]
pub struct ColumnCount {
    pub column: &'static str,
    pub rows: usize,
}

#[derive(Debug, Serialize)]
pub struct Rotation {
    pub from: MasterKeyId,
    pub to: MasterKeyId,
    /// Sealed values moved from an older key to `to`, by column.
    pub resealed: Vec<ColumnCount>,
}

/// Re-seals every sealed value not yet under the configured key (`LATCHKEY_MASTER_KEY`)
/// and makes that key current, in one transaction: nothing is left half-rotated. Run again
/// with the same key, it re-seals what instances sealed under the old key before they
/// followed the rotation. Call after `adopt`.
pub fn rotate(
    conn: &mut DbConnection,
    ring: &Arc<MasterKeyRing>,
    audit_context: &AuditContext<'_>,
    now: NaiveDateTime,
) -> anyhow::Result<Rotation> {
    let from = ring.current_id().clone();
    let to = ring.configured_id().clone();
    ring.use_for_new(to.as_str());
    let sealer = ring.sealer();
    let result = crate::db::write_transaction(conn, |conn| -> anyhow::Result<Vec<ColumnCount>> {
        crate::db::lock_for_this_transaction(conn, crate::db::MASTER_KEY_ROTATION_LOCK)?;
        if current_master_key(conn)?.as_deref() != Some(from.as_str()) {
            bail!("the master key was rotated by someone else meanwhile: run the command again");
        }
        let mut resealed = Vec::with_capacity(SealedColumn::ALL.len());
        for column in SealedColumn::ALL {
            let mut rows = 0;
            for value in column.load(conn, now)? {
                let context = column.context(&value.row);
                let (plaintext, under) = sealer.open_noting_key(&value.sealed, &context).map_err(|_| {
                    anyhow::anyhow!(
                        "{} of row {} opens with no master key held here; nothing was changed",
                        column.name(),
                        value.row
                    )
                })?;
                if under != to {
                    column.store(conn, &value.row, &sealer.seal(&plaintext, &context))?;
                    rows += 1;
                }
            }
            resealed.push(ColumnCount { column: column.name(), rows });
        }
        if from != to {
            make_master_key_current(conn, to.as_str(), now)?;
        }
        audit::record(
            conn,
            &audit_context.change("master_key.rotated").target("master_key", to.as_str()).details(serde_json::json!({
                "from": from,
                "resealed": resealed
                    .iter()
                    .map(|count| (count.column.to_owned(), count.rows.into()))
                    .collect::<serde_json::Map<_, _>>(),
            })),
        )?;
        Ok(resealed)
    });
    match result {
        Ok(resealed) => Ok(Rotation { from, to, resealed }),
        Err(error) => {
            ring.use_for_new(from.as_str());
            Err(error.context("the master key was not rotated"))
        }
    }
}

/// A key in the database's history.
#[derive(Debug, Serialize)]
pub struct RecordedKey {
    pub id: String,
    /// `current` or `retired`.
    pub state: &'static str,
    pub since: chrono::DateTime<chrono::Utc>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether this process holds it.
    pub held: bool,
}

/// A key this process holds, and the setting it came from.
#[derive(Debug, Serialize)]
pub struct HeldKey {
    pub id: MasterKeyId,
    /// `LATCHKEY_MASTER_KEY` or `LATCHKEY_PREVIOUS_MASTER_KEYS`.
    pub setting: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MasterKeyStatus {
    pub current: Option<String>,
    pub recorded: Vec<RecordedKey>,
    pub held: Vec<HeldKey>,
    /// Sealed values not under the current key (to re-seal with `master-key rotate`), by
    /// column; a column with none is left out.
    pub sealed_under_older_keys: Vec<ColumnCount>,
    /// Sealed values no key held here opens.
    pub unopenable: usize,
}

/// What the database records and what this process holds. Reads only.
pub fn status(
    conn: &mut DbConnection,
    ring: &Arc<MasterKeyRing>,
    now: NaiveDateTime,
) -> anyhow::Result<MasterKeyStatus> {
    let recorded: Vec<RecordedKey> = list_master_keys(conn)?
        .into_iter()
        .map(|row| RecordedKey {
            held: ring.holds(&row.id),
            state: if row.is_current { "current" } else { "retired" },
            since: crate::db::utc(row.became_current_at),
            until: row.retired_at.map(crate::db::utc),
            id: row.id,
        })
        .collect();
    let current = recorded.iter().find(|key| key.state == "current").map(|key| key.id.clone());
    let held = ring
        .ids()
        .into_iter()
        .enumerate()
        .map(|(i, id)| HeldKey {
            id,
            setting: if i == 0 { "LATCHKEY_MASTER_KEY" } else { "LATCHKEY_PREVIOUS_MASTER_KEYS" },
        })
        .collect();
    let (sealer, mut sealed_under_older_keys, mut unopenable) = (ring.sealer(), Vec::new(), 0);
    for column in SealedColumn::ALL {
        let mut rows = 0;
        for value in column.load(conn, now)? {
            match sealer.open_noting_key(&value.sealed, &column.context(&value.row)) {
                Ok((_, under)) if Some(under.as_str()) == current.as_deref() => {}
                Ok(_) => rows += 1,
                Err(_) => unopenable += 1,
            }
        }
        if rows > 0 {
            sealed_under_older_keys.push(ColumnCount { column: column.name(), rows });
        }
    }
    Ok(MasterKeyStatus { current, recorded, held, sealed_under_older_keys, unopenable })
}
