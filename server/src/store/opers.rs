//! What server operators leave behind: server bans (`kline`, one record per mask, so setting
//! one again replaces it) and the audit log of their actions (`oper_audit`).

use surrealdb::types::SurrealValue;

use app::protocol::{AuditEntry, Kline};

use super::Checked;
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
                .checked()?;
            let row: Option<PinRow> = res.take(1)?;
            Ok(row.map_or(key, |r| r.key))
        })
        .await
    }

    /// Every operator pin: folded name, account key.
    pub async fn oper_pins(&self) -> Result<Vec<(String, String)>> {
        let mut res = self.db().query("SELECT name, key FROM oper_pin").await?.checked()?;
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
                .checked()?;
            Ok(())
        })
        .await
    }

    /// Deletes the kline on `mask`.
    pub async fn delete_kline(&self, mask: &str) -> Result<()> {
        let (store, mask) = (self.clone(), mask.to_owned());
        self.write(async move {
            store.db().query("DELETE type::record('kline', $mask)").bind(("mask", mask)).await?.checked()?;
            Ok(())
        })
        .await
    }

    /// The klines stored and not expired at `now` (ms since the epoch); the expired ones are
    /// deleted.
    pub async fn klines(&self, now: u64) -> Result<Vec<Kline>> {
        let store = self.clone();
        let rows: Vec<KlineRow> = self
            .write(async move {
                let mut res = store
                    .db()
                    .query(
                        "DELETE kline WHERE expires != NONE AND expires <= $now;
                         SELECT mask, reason, by, at, expires FROM kline;",
                    )
                    .bind(("now", ms(now)))
                    .await?
                    .checked()?;
                Ok(res.take(1)?)
            })
            .await?;
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
            store.db().query("CREATE oper_audit CONTENT $row").bind(("row", row)).await?.checked()?;
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
            .checked()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kline(mask: &str, expires: Option<u64>) -> Kline {
        Kline { mask: mask.into(), reason: Some("why".into()), by: "root".into(), at: 1000, expires }
    }

    #[tokio::test]
    async fn klines_round_trip_and_the_expired_ones_are_deleted_at_load() {
        let store = Store::open("mem://").await.unwrap();
        store.save_kline(&kline("potato:bob", None)).await.unwrap();
        store.save_kline(&kline("203.0.113.0/24", Some(5000))).await.unwrap();
        store.save_kline(&kline("gone!*@*", Some(2000))).await.unwrap();
        // Saved again under its mask: replaced, not doubled.
        store.save_kline(&kline("potato:bob", None)).await.unwrap();
        let mut live = store.klines(3000).await.unwrap();
        live.sort_by(|a, b| a.mask.cmp(&b.mask));
        assert_eq!(live, [kline("203.0.113.0/24", Some(5000)), kline("potato:bob", None)]);
        // The expired one is gone from the store, not only filtered.
        let mut res = store.db().query("SELECT VALUE mask FROM kline").await.unwrap();
        let mut masks: Vec<String> = res.take(0).unwrap();
        masks.sort();
        assert_eq!(masks, ["203.0.113.0/24", "potato:bob"]);
        store.delete_kline("potato:bob").await.unwrap();
        assert_eq!(store.klines(3000).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_operator_name_is_pinned_once() {
        let store = Store::open("mem://").await.unwrap();
        assert_eq!(store.pin_oper("root", "potato:root~1").await.unwrap(), "potato:root~1");
        assert_eq!(
            store.pin_oper("root", "potato:root~2").await.unwrap(),
            "potato:root~1",
            "the first stays"
        );
        assert_eq!(store.oper_pins().await.unwrap(), [("root".to_owned(), "potato:root~1".to_owned())]);
    }

    #[tokio::test]
    async fn the_audit_log_reads_newest_first() {
        let store = Store::open("mem://").await.unwrap();
        for (at, action) in [(1, "kill"), (3, "unkline"), (2, "kline")] {
            let entry = AuditEntry {
                at,
                oper: "potato:root".into(),
                nick: "root".into(),
                action: action.into(),
                target: "bob".into(),
                reason: None,
                from: "127.0.0.1".into(),
            };
            store.append_audit(&entry).await.unwrap();
        }
        let actions: Vec<String> = store.audit_log(2).await.unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["unkline", "kline"]);
    }
}
