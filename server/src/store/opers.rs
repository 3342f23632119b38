//! What server operators leave behind: server bans (`kline`, one record per mask, so setting
//! one again replaces it) and the audit log of their actions (`oper_audit`).

use surrealdb::types::SurrealValue;

use app::protocol::{AuditEntry, Kline};

use super::{Result, Store};

/// A kline as stored (times in ms since the epoch; `i64`, as SurrealDB keeps integers).
#[derive(Debug, Clone, SurrealValue)]
struct KlineRow {
    mask: String,
    reason: Option<String>,
    by: String,
    at: i64,
    expires: Option<i64>,
}

/// An audit entry as stored.
#[derive(Debug, Clone, SurrealValue)]
struct AuditRow {
    at: i64,
    oper: String,
    nick: String,
    action: String,
    target: String,
    reason: Option<String>,
    from: String,
}

fn ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn unms(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

#[derive(Debug, Clone, SurrealValue)]
struct PinRow {
    name: String,
    key: String,
}

impl Store {
    /// Pins the operator name `name` (folded) to the account `key`, unless it is pinned
    /// already; answers the key it is pinned to.
    pub async fn pin_oper(&self, name: &str, key: &str) -> Result<String> {
        let (store, name, key) = (self.clone(), name.to_owned(), key.to_owned());
        self.write(async move {
            let mut res = store
                .db()
                .query(
                    "INSERT IGNORE INTO oper_pin { id: $name, name: $name, key: $key };
                     SELECT name, key FROM ONLY type::record('oper_pin', $name);",
                )
                .bind(("name", name))
                .bind(("key", key.clone()))
                .await?
                .check()?;
            let row: Option<PinRow> = res.take(1)?;
            Ok(row.map_or(key, |r| r.key))
        })
        .await
    }

    /// Every operator pin: folded name, account key.
    pub async fn oper_pins(&self) -> Result<Vec<(String, String)>> {
        let mut res = self.db().query("SELECT name, key FROM oper_pin").await?.check()?;
        let rows: Vec<PinRow> = res.take(0)?;
        Ok(rows.into_iter().map(|r| (r.name, r.key)).collect())
    }

    /// Stores a kline, replacing one with the same mask.
    pub async fn save_kline(&self, kline: &Kline) -> Result<()> {
        let row = KlineRow {
            mask: kline.mask.clone(),
            reason: kline.reason.clone(),
            by: kline.by.clone(),
            at: ms(kline.at),
            expires: kline.expires.map(ms),
        };
        let store = self.clone();
        self.write(async move {
            store
                .db()
                .query("UPSERT type::record('kline', $row.mask) CONTENT $row")
                .bind(("row", row))
                .await?
                .check()?;
            Ok(())
        })
        .await
    }

    /// Deletes the kline on `mask`.
    pub async fn delete_kline(&self, mask: &str) -> Result<()> {
        let (store, mask) = (self.clone(), mask.to_owned());
        self.write(async move {
            store.db().query("DELETE type::record('kline', $mask)").bind(("mask", mask)).await?.check()?;
            Ok(())
        })
        .await
    }

    /// The klines stored and not expired at `now` (ms since the epoch).
    pub async fn klines(&self, now: u64) -> Result<Vec<Kline>> {
        let mut res = self
            .db()
            .query("SELECT mask, reason, by, at, expires FROM kline WHERE expires = NONE OR expires > $now")
            .bind(("now", ms(now)))
            .await?
            .check()?;
        let rows: Vec<KlineRow> = res.take(0)?;
        Ok(rows
            .into_iter()
            .map(|r| Kline {
                mask: r.mask,
                reason: r.reason,
                by: r.by,
                at: unms(r.at),
                expires: r.expires.map(unms),
            })
            .collect())
    }

    /// Adds an operator action to the audit log.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let row = AuditRow {
            at: ms(entry.at),
            oper: entry.oper.clone(),
            nick: entry.nick.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            reason: entry.reason.clone(),
            from: entry.from.clone(),
        };
        let store = self.clone();
        self.write(async move {
            store.db().query("CREATE oper_audit CONTENT $row").bind(("row", row)).await?.check()?;
            Ok(())
        })
        .await
    }

    /// The latest `limit` entries of the audit log, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut res = self
            .db()
            .query("SELECT at, oper, nick, action, target, reason, from FROM oper_audit ORDER BY at DESC LIMIT $limit")
            .bind(("limit", i64::try_from(limit).unwrap_or(i64::MAX)))
            .await?
            .check()?;
        let rows: Vec<AuditRow> = res.take(0)?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at: unms(r.at),
                oper: r.oper,
                nick: r.nick,
                action: r.action,
                target: r.target,
                reason: r.reason,
                from: r.from,
            })
            .collect())
    }
}
