//! Celery's registered channels: founder, op list, and the state that outlives the channel
//! being empty (topic, bans, modes). One record per channel, keyed by the folded name.

use surrealdb::types::SurrealValue;

use super::Checked;
use super::{Result, Store};

/// A registered channel as stored. Accounts are named by their keys (`potato:alice`).
#[derive(Debug, Clone, Default, PartialEq, Eq, SurrealValue, serde::Serialize, serde::Deserialize)]
pub struct ChannelRecord {
    pub name: String,
    pub founder: String,
    pub ops: Vec<String>,
    pub trusted: Vec<String>,
    pub topic: Option<String>,
    pub topic_by: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub topic_at: Option<i64>,
    pub bans: Vec<String>,
    /// Channel flags set, from `m`, `i`, `t`.
    pub flags: String,
    pub chan_key: Option<String>,
    pub user_limit: Option<i64>,
    /// Grows with every change; a write never replaces a newer revision, so two saves that
    /// finish out of order leave the newer state stored.
    pub rev: i64,
}

impl Store {
    /// Registers a channel unless it is registered already (`Ok(false)` then).
    pub async fn create_channel(&self, key: &str, record: &ChannelRecord) -> Result<bool> {
        let key = key.to_owned();
        let record = record.clone();
        let store = self.clone();
        self.write(async move {
            let result = store
                .db()
                .query("CREATE type::record('channel_reg', $id) CONTENT $record RETURN NONE")
                .bind(("id", key.to_owned()))
                .bind(("record", record.clone()))
                .await
                .and_then(|r| r.checked());
            match result {
                Ok(_) => Ok(true),
                Err(_) if store.channel(&key).await?.is_some() => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Writes a registered channel's state (after a topic, ban, mode or op list change) unless
    /// a newer revision is stored already. `Ok(false)` when it is not registered (any more).
    pub async fn save_channel(&self, key: &str, record: &ChannelRecord) -> Result<bool> {
        let key = key.to_owned();
        let record = record.clone();
        let store = self.clone();
        self.write(async move {
            let mut res = store
                .db()
                .query(
                    "UPDATE type::record('channel_reg', $id) MERGE $record WHERE rev < $rev RETURN NONE;
                 SELECT VALUE name FROM ONLY type::record('channel_reg', $id);",
                )
                .bind(("id", key.to_owned()))
                .bind(("rev", record.rev))
                .bind(("record", record.clone()))
                .await?
                .checked()?;
            let name: Option<String> = res.take(1)?;
            Ok(name.is_some())
        })
        .await
    }

    /// The registered channel for `key` (a folded channel name).
    pub async fn channel(&self, key: &str) -> Result<Option<ChannelRecord>> {
        let mut res = self
            .db()
            .query("SELECT * OMIT id, created_at FROM ONLY type::record('channel_reg', $id)")
            .bind(("id", key.to_owned()))
            .await?
            .checked()?;
        Ok(res.take(0)?)
    }

    /// When a channel was registered, in seconds since the Unix epoch.
    pub async fn channel_created(&self, key: &str) -> Result<Option<i64>> {
        let mut res = self
            .db()
            .query("SELECT VALUE time::unix(created_at) FROM ONLY type::record('channel_reg', $id)")
            .bind(("id", key.to_owned()))
            .await?
            .checked()?;
        Ok(res.take(0)?)
    }

    /// Every registered channel, loaded at startup.
    pub async fn channels(&self) -> Result<Vec<ChannelRecord>> {
        let mut res = self.db().query("SELECT * OMIT id, created_at FROM channel_reg").await?.checked()?;
        Ok(res.take(0)?)
    }

    /// Unregisters a channel. `Ok(false)` when it was not registered.
    pub async fn drop_channel(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        let store = self.clone();
        self.write(async move {
            let mut res = store
                .db()
                .query("DELETE type::record('channel_reg', $id) RETURN BEFORE")
                .bind(("id", key.to_owned()))
                .await?
                .checked()?;
            let gone: Vec<ChannelRecord> = res.take(0)?;
            Ok(!gone.is_empty())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_channel_round_trips_and_drops() {
        let store = Store::open("mem://").await.unwrap();
        let mut rec = ChannelRecord {
            name: "#Rust".into(),
            founder: "potato:alice".into(),
            flags: "t".into(),
            ..Default::default()
        };
        assert!(store.create_channel("#rust", &rec).await.unwrap());
        assert!(!store.create_channel("#rust", &rec).await.unwrap());
        assert_eq!(store.channel("#rust").await.unwrap().as_ref(), Some(&rec));
        rec.ops = vec!["potato:bob".into()];
        rec.bans = vec!["*!*@evil".into()];
        rec.topic = Some("Rust talk".into());
        rec.topic_by = Some("alice".into());
        rec.topic_at = Some(1234);
        rec.chan_key = Some("k".into());
        rec.user_limit = Some(5);
        rec.rev = 2;
        assert!(store.save_channel("#rust", &rec).await.unwrap());
        assert_eq!(store.channels().await.unwrap(), vec![rec.clone()]);
        assert!(store.channel_created("#rust").await.unwrap().unwrap() > 1_700_000_000);
        // A late write of an older revision changes nothing.
        let stale = ChannelRecord { topic: Some("stale".into()), rev: 1, ..rec.clone() };
        assert!(store.save_channel("#rust", &stale).await.unwrap());
        assert_eq!(store.channel("#rust").await.unwrap().as_ref(), Some(&rec));
        rec.topic = None;
        rec.rev = 3;
        assert!(store.save_channel("#rust", &rec).await.unwrap());
        assert_eq!(store.channel("#rust").await.unwrap().unwrap().topic, None);
        assert!(store.drop_channel("#rust").await.unwrap());
        assert!(!store.drop_channel("#rust").await.unwrap());
        assert!(!store.save_channel("#rust", &rec).await.unwrap());
    }

    #[tokio::test]
    async fn dropping_an_account_drops_its_channels_and_op_list_places() {
        let store = Store::open("mem://").await.unwrap();
        store.create_account("alice", "alice", "a@x.example", "h", "").await.unwrap();
        let founded =
            ChannelRecord { name: "#a".into(), founder: "potato:alice".into(), ..Default::default() };
        let other = ChannelRecord {
            name: "#b".into(),
            founder: "potato:bob".into(),
            ops: vec!["potato:alice".into(), "potato:carol".into()],
            trusted: vec!["potato:alice".into()],
            ..Default::default()
        };
        store.create_channel("#a", &founded).await.unwrap();
        store.create_channel("#b", &other).await.unwrap();
        assert_eq!(store.drop_account("alice", "potato:alice").await.unwrap(), vec!["#a".to_owned()]);
        assert!(store.account("alice").await.unwrap().is_none());
        assert!(store.channel("#a").await.unwrap().is_none());
        let b = store.channel("#b").await.unwrap().unwrap();
        assert_eq!(b.ops, vec!["potato:carol".to_owned()]);
        assert!(b.trusted.is_empty());
    }
}
