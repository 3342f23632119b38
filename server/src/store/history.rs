//! Message history: every channel message and private message, filed by conversation and id
//! (ids grow with time) in its record id, so a page of history is one range of keys.
//!
//! A message is `history:[conversation, -id]`: the key holds both, so no index is kept beside
//! the rows (an index entry cost about as much as the row itself to store, see
//! docs/benchmarks.md), and the negated id puts a conversation's newest messages first, since
//! SurrealDB scans a range of keys forwards only (surrealdb/surrealdb#4509): a page back from
//! any point is the first `limit` keys of a range. Pruning goes through the conversations
//! that had messages on the days it prunes: `conversation:[day, conversation]` records, written
//! with a conversation's first message of a day and deleted once that day is pruned.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use app::protocol::ChatMessage;
use surrealdb::types::SurrealValue;

use super::Checked;
use super::{Result, Store};

/// The conversation a message is filed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Conversation(String);

impl Conversation {
    /// A channel, by its folded name.
    pub fn channel(folded: &str) -> Self {
        Self(folded.to_owned())
    }

    /// A private conversation between two parties (account keys, or a guest session's key),
    /// the same whichever of the two asks.
    pub fn private(a: &str, b: &str) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Self(format!("pm:{lo}|{hi}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message on its way into the store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub conversation: Conversation,
    pub message: ChatMessage,
}

/// A stored message, as the `history` table holds it.
#[derive(Debug, Clone, SurrealValue)]
struct Row {
    /// `[conversation, -id]`.
    id: (String, i64),
    ts: i64,
    sender: String,
    target: String,
    text: String,
    action: bool,
    /// Absent in rows stored before bots existed.
    bot: Option<bool>,
}

impl Row {
    fn of(m: &StoredMessage) -> Self {
        Self {
            id: (m.conversation.as_str().to_owned(), -to_i64(m.message.id)),
            ts: to_i64(m.message.ts),
            sender: m.message.from.clone(),
            target: m.message.target.clone(),
            text: m.message.text.clone(),
            action: m.message.action,
            bot: Some(m.message.bot).filter(|&b| b),
        }
    }

    fn message_id(&self) -> i64 {
        -self.id.1
    }

    fn into_message(self) -> ChatMessage {
        ChatMessage {
            id: self.message_id() as u64,
            ts: self.ts as u64,
            from: self.sender,
            target: self.target,
            text: self.text,
            action: self.action,
            bot: self.bot.unwrap_or(false),
            txn: None,
        }
    }
}

/// A message as stores before the `history` table kept it (`message:<id>`, with an index on
/// its conversation and id); moved into `history` when such a store is opened.
#[derive(Debug, Clone, SurrealValue)]
struct OldRow {
    id: i64,
    conv: String,
    mid: i64,
    ts: i64,
    sender: String,
    target: String,
    text: String,
    action: bool,
    bot: Option<bool>,
}

impl From<OldRow> for Row {
    fn from(r: OldRow) -> Self {
        Self {
            id: (r.conv, -r.mid),
            ts: r.ts,
            sender: r.sender,
            target: r.target,
            text: r.text,
            action: r.action,
            bot: r.bot,
        }
    }
}

/// A `conversation` record: `[day, conversation]`, for messages of the conversation numbered
/// on that day (by the time in their ids, in days since the Unix epoch).
#[derive(Debug, Clone, SurrealValue)]
struct ConversationRow {
    id: (i64, String),
}

impl ConversationRow {
    /// The records the messages of `rows` need, each once.
    fn of_rows<'a>(rows: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<Self> {
        let mut keys: Vec<(i64, &str)> = rows.into_iter().map(|(conv, id)| (day_of(id), conv)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().map(|(day, conv)| Self { id: (day, conv.to_owned()) }).collect()
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The day a message was numbered on: an id is the time in milliseconds shifted left by 10
/// bits, plus a count.
fn day_of(id: i64) -> i64 {
    (id >> 10).div_euclid(DAY_MS)
}

/// Ids and times are below 2^53, so the conversions are exact.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The first key of the range holding a conversation's messages numbered below `id`.
fn first_key_below(id: i64) -> i64 {
    1i64.saturating_sub(id)
}

impl Store {
    /// Stores a batch of messages in one transaction (one disk sync for all of them).
    ///
    /// The store also keeps a mark on message ids: every id at or below it is taken, so a
    /// restart numbers new messages above it, whatever the clock says (and even once the
    /// messages themselves are pruned). A batch with an id above the mark moves it, in the same
    /// transaction, [`IDS_RESERVED`] past its highest id; the batches after it, until their ids
    /// pass the mark, are one `INSERT` without the mark's read and write, which cost most of
    /// a small batch's time in the store (docs/benchmarks.md). Likewise the record of a
    /// conversation's day (see `prune_history`) is written with the first batch of the day this
    /// process stores in it.
    pub async fn append_messages<'a>(
        &self,
        batch: impl IntoIterator<Item = &'a StoredMessage>,
    ) -> Result<()> {
        let rows: Vec<Row> = batch.into_iter().map(Row::of).collect();
        let store = self.clone();
        self.write(async move {
            // Nodes of a cluster share the store, and their batches may move the mark at once:
            // the one that loses the race writes again.
            let mut attempts = 0;
            loop {
                match store.insert_rows(&rows).await {
                    Err(e) if e.is_conflict() && attempts < CONFLICT_RETRIES => attempts += 1,
                    result => return result,
                }
                tokio::time::sleep(Duration::from_millis(rand::random_range(1..=5))).await;
            }
        })
        .await
    }

    /// Inserts messages, with the records of conversations' days new to this process, moving
    /// the mark on ids when they pass it.
    async fn insert_rows(&self, rows: &[Row]) -> Result<()> {
        let high = rows.iter().map(Row::message_id).max().unwrap_or(0);
        // (Writes go one at a time, so the mark read here is the latest this process stored.)
        let mark =
            (high > self.ids_marked.load(Ordering::Relaxed)).then(|| high.saturating_add(IDS_RESERVED));
        let fresh: Vec<ConversationRow> = {
            let known = self.conversations_known();
            let mut fresh = ConversationRow::of_rows(rows.iter().map(|r| (r.id.0.as_str(), r.message_id())));
            fresh.retain(|c| !known.contains(&c.id));
            fresh
        };
        let mut sql = String::from("INSERT INTO history $rows RETURN NONE;");
        if !fresh.is_empty() {
            sql.push_str("INSERT IGNORE INTO conversation $conversations RETURN NONE;");
        }
        if mark.is_some() {
            sql.push_str("UPSERT store_meta:messages SET high = math::max([high ?? 0, $mark]) RETURN NONE;");
        }
        if !fresh.is_empty() || mark.is_some() {
            sql = format!("BEGIN; {sql} COMMIT;");
        }
        let names: Vec<(i64, String)> = fresh.iter().map(|c| c.id.clone()).collect();
        self.db()
            .query(sql)
            .bind(("rows", rows.to_vec()))
            .bind(("conversations", fresh))
            .bind(("mark", mark.unwrap_or(0)))
            .await?
            .checked()?;
        if let Some(mark) = mark {
            self.ids_marked.fetch_max(mark, Ordering::Relaxed);
        }
        let mut known = self.conversations_known();
        if known.len() + names.len() > CONVERSATIONS_KNOWN {
            known.clear();
        }
        known.extend(names);
        Ok(())
    }

    fn conversations_known(&self) -> std::sync::MutexGuard<'_, HashSet<(i64, String)>> {
        self.conversations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mark on message ids (0 for none): every id at or below it is taken (stored, or
    /// reserved ahead of those stored), so new ids must be above it.
    pub async fn message_id_mark(&self) -> Result<u64> {
        let mut res = self.db().query("SELECT VALUE high FROM ONLY store_meta:messages").await?.checked()?;
        let high: Option<i64> = res.take(0)?;
        Ok(high.and_then(|h| u64::try_from(h).ok()).unwrap_or(0))
    }

    /// Up to `limit` messages of a conversation older than `before` (the newest when `None`),
    /// oldest first.
    pub async fn history(
        &self,
        conversation: &Conversation,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>> {
        let mut res = self
            .db()
            .query(
                "SELECT record::id(id) AS id, ts, sender, target, text, action, bot
                 FROM type::record('history', [$conv, $from]..[$conv, 0]) LIMIT $limit",
            )
            .bind(("conv", conversation.as_str().to_owned()))
            .bind(("from", first_key_below(before.map_or(i64::MAX, to_i64))))
            .bind(("limit", limit as i64))
            .await?
            .checked()?;
        let rows: Vec<Row> = res.take(0)?;
        Ok(rows.into_iter().rev().map(Row::into_message).collect())
    }

    /// Deletes messages sent before `cutoff_ms` (milliseconds since the Unix epoch), conversation
    /// by conversation, a few hundred per transaction, so other writes never wait long behind it.
    ///
    /// A message's id is at least the time it was numbered shifted left by 10 bits (see
    /// `Hub::next_message_id`), so every id below `cutoff_ms << 10` was numbered before the
    /// cutoff: a conversation's old messages are one range at the end of its keys, found
    /// without an index on the time (which every stored message would pay for). The
    /// conversations looked through are those with messages numbered on the cutoff's day or
    /// before; a day wholly before the cutoff is done with once pruned, and its records go.
    /// Ids run ahead of the clock only after it stepped back (numbering goes on above the
    /// highest id stored): while the highest id is ahead of the clock (`now_ms`), every
    /// conversation is looked through, by time as well.
    pub async fn prune_history(&self, cutoff_ms: u64, now_ms: u64) -> Result<()> {
        let below = to_i64(cutoff_ms.saturating_mul(1 << 10));
        let cutoff_day = day_of(below);
        let ahead = self.message_id_mark().await? >> 10 > now_ms.saturating_add(IDS_AHEAD_MS);
        if ahead {
            tracing::warn!("message ids are ahead of the clock (it was set back): pruning by time as well");
        }
        let mut after: Option<(i64, String)> = None;
        loop {
            // The next page of records: after the last one read, up to the cutoff's day (every
            // day while ids are ahead of the clock).
            let lower = if after.is_some() { "$after>" } else { "[NONE]" };
            let upper = if ahead { "" } else { "[$end]" };
            let page: Vec<(i64, String)> = self
                .db()
                .query(format!(
                    "SELECT VALUE record::id(id) FROM type::record('conversation', {lower}..{upper}) LIMIT 200"
                ))
                .bind(("after", after.clone().unwrap_or_default()))
                .bind(("end", cutoff_day.saturating_add(1)))
                .await?
                .checked()?
                .take(0)?;
            let Some(last) = page.last().cloned() else { return Ok(()) };
            for (day, conv) in page {
                let mut done = self
                    .delete_all(
                        "SELECT VALUE id FROM type::record('history', [$conv, $from]..[$conv, 0]) LIMIT 500",
                        &conv,
                        below,
                        cutoff_ms,
                    )
                    .await?;
                if ahead {
                    done &= self
                        .delete_all(
                            "SELECT VALUE id FROM type::record('history', [$conv, NONE]..[$conv, $from])
                             WHERE ts < $cutoff LIMIT 500",
                            &conv,
                            below,
                            cutoff_ms,
                        )
                        .await?;
                }
                if done && day < cutoff_day {
                    self.lenient_write("DELETE type::record('conversation', $key) RETURN NONE", (day, conv))
                        .await?;
                }
            }
            after = Some(last);
        }
    }

    /// Runs `select` (ids of a conversation's messages to delete, a few hundred at most, given
    /// `$conv`, `$from`, the first key of the messages numbered below `below`, and `$cutoff`) and
    /// deletes what it finds, one transaction at a time, until it finds none: `true`; `false`
    /// when another process wrote some of them first (pruning on another node of a cluster),
    /// which the next pruning finishes. The look is a read: a conversation with nothing to
    /// delete takes no turn among the writes.
    async fn delete_all(&self, select: &'static str, conv: &str, below: i64, cutoff_ms: u64) -> Result<bool> {
        loop {
            let ids: Vec<surrealdb::types::RecordId> = self
                .db()
                .query(select)
                .bind(("conv", conv.to_owned()))
                .bind(("from", first_key_below(below)))
                .bind(("cutoff", to_i64(cutoff_ms)))
                .await?
                .checked()?
                .take(0)?;
            if ids.is_empty() {
                return Ok(true);
            }
            if !self.lenient_write("DELETE $key RETURN NONE", ids).await? {
                return Ok(false);
            }
        }
    }

    /// One write statement with `$key` bound: `false` when it lost a write conflict.
    async fn lenient_write<K>(&self, sql: &'static str, key: K) -> Result<bool>
    where
        K: SurrealValue + Send + 'static,
    {
        let store = self.clone();
        let written = self
            .write(async move {
                store.db().query(sql).bind(("key", key)).await?.checked()?;
                Ok(())
            })
            .await;
        match written {
            Err(e) if e.is_conflict() => Ok(false),
            other => other.map(|()| true),
        }
    }

    /// Moves the messages of a store written before the `history` table (`message:<id>` rows)
    /// into it, a few hundred per transaction, then drops the old table. Runs when a store is
    /// opened; a store with none has nothing to do. The rows are read in the order of their ids
    /// from where the last transaction left off (kept in `store_meta:moving`, so a move that
    /// stopped halfway goes on from there), and nothing is deleted before the whole table is.
    pub(super) async fn move_old_messages(&self) -> Result<()> {
        let old_table: Option<bool> =
            self.db().query("RETURN (INFO FOR DB).tables.message != NONE").await?.checked()?.take(0)?;
        if old_table != Some(true) {
            return Ok(());
        }
        let mut moved = 0usize;
        let mut conflicts = 0;
        loop {
            let old: Vec<OldRow> = self
                .db()
                .query(
                    "LET $after = (SELECT VALUE high FROM ONLY store_meta:moving) ?? 0;
                     SELECT record::id(id) AS id, conv, mid, ts, sender, target, text, action, bot
                     FROM type::record('message', ($after + 1)..) LIMIT 500",
                )
                .await?
                .checked()?
                .take(1)?;
            let Some(last) = old.last().map(|r| r.id) else { break };
            let count = old.len();
            let high = old.iter().map(|r| r.mid).max().unwrap_or(0);
            let conversations = ConversationRow::of_rows(old.iter().map(|r| (r.conv.as_str(), r.mid)));
            let rows: Vec<Row> = old.into_iter().map(Row::from).collect();
            let store = self.clone();
            let written = self
                .write(async move {
                    store
                        .db()
                        .query(
                            "BEGIN;
                             INSERT IGNORE INTO history $rows RETURN NONE;
                             INSERT IGNORE INTO conversation $conversations RETURN NONE;
                             UPSERT store_meta:messages SET high = math::max([high ?? 0, $high]) RETURN NONE;
                             UPSERT store_meta:moving SET high = math::max([high ?? 0, $last]) RETURN NONE;
                             COMMIT;",
                        )
                        .bind(("rows", rows))
                        .bind(("conversations", conversations))
                        .bind(("high", high))
                        .bind(("last", last))
                        .await?
                        .checked()?;
                    Ok(())
                })
                .await;
            match written {
                // Another process moving the same rows (nodes of a cluster started together):
                // read on from where it got.
                Err(e) if e.is_conflict() && conflicts < MOVE_CONFLICTS => conflicts += 1,
                Err(e) => return Err(e),
                Ok(()) => {
                    moved += count;
                    if moved % 50_000 < count {
                        tracing::info!(moved, "moving stored messages into the history table");
                    }
                }
            }
        }
        tracing::info!(moved, "stored messages moved into the history table");
        let store = self.clone();
        self.write(async move {
            store
                .db()
                .query("BEGIN; REMOVE TABLE IF EXISTS message; DELETE store_meta:moving; COMMIT;")
                .await?
                .checked()?;
            Ok(())
        })
        .await
    }
}

/// How many write conflicts moving an old store's messages rides out (each one another
/// process's transaction moving the same rows first).
const MOVE_CONFLICTS: u32 = 1_000;

/// How many conversations a process remembers having stored a record of; past that it forgets
/// them all, and writes their records again (`INSERT IGNORE`) as messages come.
const CONVERSATIONS_KNOWN: usize = 10_000;

/// How many times a batch is written again after losing a write conflict to another node.
const CONFLICT_RETRIES: u32 = 5;

/// How far ahead of the clock the mark on message ids may be before pruning also looks through
/// the newer ids by time. (The mark runs [`IDS_RESERVED`] ahead of the ids stored.)
const IDS_AHEAD_MS: u64 = 60_000;

/// How far past a batch's highest id the mark on message ids is set: ten seconds of ids (an
/// id is the time it was numbered, in milliseconds, shifted left by 10 bits), so under a steady
/// flow of messages the mark moves about once every ten seconds, and a restart numbers at most
/// that far ahead of the clock.
const IDS_RESERVED: i64 = 10_000 << 10;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn msg(id: u64, target: &str, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: id * 10,
            from: "alice".into(),
            target: target.into(),
            text: text.into(),
            action: false,
            bot: false,
            txn: None,
        }
    }

    #[tokio::test]
    async fn a_duplicate_id_fails_its_batch_and_the_mark_on_ids_moves_only_past_itself() {
        let store = Store::open("mem://").await.unwrap();
        let c = Conversation::channel("#c");
        let at =
            |id: u64, text: &str| StoredMessage { conversation: c.clone(), message: msg(id, "#c", text) };
        let mark = |high: u64| high + IDS_RESERVED as u64;
        assert_eq!(store.message_id_mark().await.unwrap(), 0);
        store.append_messages([&at(5, "five")]).await.unwrap();
        assert_eq!(store.message_id_mark().await.unwrap(), mark(5), "ids are reserved past the batch");
        // Below the mark: the batch is stored, the mark stays.
        store.append_messages([&at(9, "nine")]).await.unwrap();
        assert_eq!(store.message_id_mark().await.unwrap(), mark(5));
        // Past the mark with a duplicate: nothing of the batch is kept, the mark included.
        let past = mark(5) + 1;
        let err = store.append_messages([&at(past, "past"), &at(5, "again")]).await.unwrap_err();
        assert!(err.is_about_the_data(), "{err}");
        assert_eq!(store.message_id_mark().await.unwrap(), mark(5), "the failed batch left nothing");
        store.append_messages([&at(past, "past")]).await.unwrap();
        assert_eq!(store.message_id_mark().await.unwrap(), mark(past));
        let texts: Vec<String> =
            store.history(&c, None, 10).await.unwrap().into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["five", "nine", "past"]);
        assert!(store.failure().is_none(), "a duplicate id is not a store failure");
    }

    #[tokio::test]
    async fn another_process_on_the_store_never_moves_the_mark_back() {
        let store = Store::open("mem://").await.unwrap();
        let c = Conversation::channel("#c");
        let at = |id: u64| StoredMessage { conversation: c.clone(), message: msg(id, "#c", "m") };
        store.append_messages([&at(100)]).await.unwrap();
        // A process that has stored nothing yet writes the mark with its first batch, even one
        // numbered below the mark another left.
        let other = Store { ids_marked: Arc::default(), conversations: Arc::default(), ..store.clone() };
        other.append_messages([&at(50)]).await.unwrap();
        assert_eq!(other.message_id_mark().await.unwrap(), 100 + IDS_RESERVED as u64);
        other.append_messages([&at(300 + IDS_RESERVED as u64)]).await.unwrap();
        assert_eq!(store.message_id_mark().await.unwrap(), 300 + 2 * IDS_RESERVED as u64);
    }

    #[tokio::test]
    async fn history_pages_back_per_conversation() {
        let store = Store::open("mem://").await.unwrap();
        let rust = Conversation::channel("#rust");
        let pm = Conversation::private("potato:bob", "potato:alice");
        assert_eq!(pm, Conversation::private("potato:alice", "potato:bob"));
        let mut batch: Vec<StoredMessage> = (1..=30)
            .map(|i| StoredMessage { conversation: rust.clone(), message: msg(i, "#rust", &format!("m{i}")) })
            .collect();
        batch.push(StoredMessage { conversation: pm.clone(), message: msg(31, "bob", "secret") });
        store.append_messages(&batch).await.unwrap();

        let last = store.history(&rust, None, 10).await.unwrap();
        assert_eq!(last.iter().map(|m| m.id).collect::<Vec<_>>(), (21..=30).collect::<Vec<_>>());
        let page = store.history(&rust, Some(21), 10).await.unwrap();
        assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), (11..=20).collect::<Vec<_>>());
        assert_eq!(page[0], msg(11, "#rust", "m11"));
        assert_eq!(store.history(&rust, Some(3), 10).await.unwrap().len(), 2);
        for before in [0, 1] {
            assert!(store.history(&rust, Some(before), 10).await.unwrap().is_empty(), "before {before}");
        }
        assert!(store.history(&rust, Some(u64::MAX), 0).await.unwrap().is_empty());
        assert_eq!(store.history(&rust, Some(u64::MAX), 1).await.unwrap()[0].id, 30);
        assert_eq!(store.history(&pm, None, 10).await.unwrap(), vec![msg(31, "bob", "secret")]);
        assert!(store
            .history(&Conversation::private("potato:alice", "guest:x"), None, 10)
            .await
            .unwrap()
            .is_empty());

        assert_eq!(store.message_id_mark().await.unwrap(), 31 + IDS_RESERVED as u64);
    }

    #[tokio::test]
    async fn pruning_removes_what_was_numbered_before_the_cutoff() {
        let store = Store::open("mem://").await.unwrap();
        let c = Conversation::channel("#c");
        // Ids as the hub numbers them: the time in milliseconds << 10, plus a count within
        // the millisecond; 1,200 messages in all, more than one pruning transaction takes.
        let batch: Vec<StoredMessage> = (0..1_200u64)
            .map(|i| {
                let ms = 1_000 + i / 100;
                let mut message = msg((ms << 10) + i % 100, "#c", &format!("m{i}"));
                message.ts = ms;
                StoredMessage { conversation: c.clone(), message }
            })
            .collect();
        store.append_messages(&batch).await.unwrap();

        store.prune_history(1_007, 1_012).await.unwrap();
        let left = store.history(&c, None, 2_000).await.unwrap();
        assert_eq!(left.len(), 500, "5 ms of 100 messages each are left");
        assert!(left.iter().all(|m| m.ts >= 1_007), "{:?}", left.first());
        assert_eq!(left.first().map(|m| m.id), Some(1_007 << 10));
        assert_eq!(left.last().map(|m| m.id), Some((1_011 << 10) + 99));

        store.prune_history(1_007, 1_012).await.unwrap();
        assert_eq!(store.history(&c, None, 2_000).await.unwrap().len(), 500, "nothing more to prune");
        store.prune_history(u64::MAX, 1_012).await.unwrap();
        assert!(store.history(&c, None, 2_000).await.unwrap().is_empty());
        assert_eq!(
            store.message_id_mark().await.unwrap(),
            (1_011 << 10) + 99 + IDS_RESERVED as u64,
            "the mark stays"
        );
    }

    /// After the clock was set back, ids go on above the highest one stored: messages numbered
    /// then have ids far above their time, and are pruned by their time.
    #[tokio::test]
    async fn pruning_finds_messages_whose_ids_ran_ahead_of_the_clock() {
        let store = Store::open("mem://").await.unwrap();
        let c = Conversation::channel("#c");
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let year = 365 * 24 * 3600 * 1000;
        let stored = |id: u64, ts: u64, text: &str| {
            let mut message = msg(id, "#c", text);
            message.ts = ts;
            StoredMessage { conversation: c.clone(), message }
        };
        // Numbered while the clock said a year from now, sent 20 and 10 days ago.
        let ahead = (now + year) << 10;
        let day = 24 * 3600 * 1000;
        let batch = [
            stored(ahead, now - 20 * day, "old, numbered ahead"),
            stored(ahead + 1, now - 10 * day, "recent, numbered ahead"),
        ];
        store.append_messages(&batch).await.unwrap();

        store.prune_history(now - 15 * day, now).await.unwrap();
        let left = store.history(&c, None, 10).await.unwrap();
        assert_eq!(left.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["recent, numbered ahead"]);
    }

    #[tokio::test]
    async fn pruning_goes_through_every_conversation() {
        let store = Store::open("mem://").await.unwrap();
        // More conversations than a page of them, each with a message numbered before the cutoff
        // and one after it, stored in batches of a few conversations each.
        let conversations: Vec<Conversation> =
            (0..450).map(|i| Conversation::channel(&format!("#c{i:03}"))).collect();
        for chunk in conversations.chunks(7) {
            let batch: Vec<StoredMessage> = chunk
                .iter()
                .flat_map(|c| {
                    [(1_000u64, "old"), (2_000, "new")].map(|(ms, text)| {
                        let mut message = msg(ms << 10, c.as_str(), text);
                        message.ts = ms;
                        StoredMessage { conversation: c.clone(), message }
                    })
                })
                .collect();
            store.append_messages(&batch).await.unwrap();
        }
        store.prune_history(1_500, 2_100).await.unwrap();
        for c in &conversations {
            let left = store.history(c, None, 10).await.unwrap();
            assert_eq!(left.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["new"], "{c:?}");
        }
    }

    /// A store written before the `history` table: its messages are moved into it when it is
    /// opened, and are read, numbered above and pruned as if stored now.
    #[tokio::test]
    async fn messages_of_the_old_layout_are_moved_into_history() {
        let store = Store::open("mem://").await.unwrap();
        store
            .db()
            .query(
                "DEFINE TABLE message SCHEMAFULL;
                 DEFINE FIELD conv ON message TYPE string; DEFINE FIELD mid ON message TYPE int;
                 DEFINE FIELD ts ON message TYPE int; DEFINE FIELD sender ON message TYPE string;
                 DEFINE FIELD target ON message TYPE string; DEFINE FIELD text ON message TYPE string;
                 DEFINE FIELD action ON message TYPE bool; DEFINE FIELD bot ON message TYPE option<bool>;
                 DEFINE INDEX message_conv ON message FIELDS conv, mid;
                 FOR $i IN 1..=700 {
                     CREATE type::record('message', $i) SET conv = IF $i % 2 = 0 { '#even' } ELSE { 'pm:a|b' },
                         mid = $i, ts = $i * 10, sender = 'alice', target = '#even', text = 'm' + <string>$i,
                         action = $i = 3;
                 };
                 CREATE message:701 SET conv = '#even', mid = 701, ts = 7010, sender = 'bot', target = '#even',
                     text = 'from a bot', action = false, bot = true;",
            )
            .await
            .unwrap()
            .checked()
            .unwrap();
        store.move_old_messages().await.unwrap();

        let even = store.history(&Conversation::channel("#even"), None, 1_000).await.unwrap();
        assert_eq!(even.len(), 351);
        assert_eq!(even.first().map(|m| (m.id, m.ts, m.text.as_str())), Some((2, 20, "m2")));
        assert!(even.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
        assert_eq!(even.last().map(|m| (m.id, m.bot)), Some((701, true)));
        let pm = store.history(&Conversation(String::from("pm:a|b")), Some(9), 10).await.unwrap();
        assert_eq!(pm.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 3, 5, 7]);
        assert!(pm[1].action && !pm[0].action && !pm[0].bot);
        let tables: Option<bool> =
            store.db().query("RETURN (INFO FOR DB).tables.message = NONE").await.unwrap().take(0).unwrap();
        assert_eq!(tables, Some(true), "the old table is gone");
        assert_eq!(store.message_id_mark().await.unwrap(), 701, "new ids go on above the moved ones");

        // Pruning knows the moved conversations: every id here is below 1 << 10, numbered
        // before the first millisecond.
        store.prune_history(1, 10_000).await.unwrap();
        for c in ["#even", "pm:a|b"] {
            assert!(store.history(&Conversation(c.to_owned()), None, 1_000).await.unwrap().is_empty(), "{c}");
        }
    }

    /// Pruning looks through the conversations of the days up to the cutoff's, and forgets the
    /// days wholly before it; a conversation's later days stay until they are pruned in turn.
    #[tokio::test]
    async fn pruning_forgets_the_days_it_has_pruned() {
        let store = Store::open("mem://").await.unwrap();
        let (a, b) = (Conversation::channel("#a"), Conversation::channel("#b"));
        let on = |c: &Conversation, day: i64| {
            let ms = (day * DAY_MS + 5) as u64;
            let mut message = msg(ms << 10, c.as_str(), &format!("day {day}"));
            message.ts = ms;
            StoredMessage { conversation: c.clone(), message }
        };
        for batch in [vec![on(&a, 1), on(&b, 1)], vec![on(&a, 2)], vec![on(&a, 3)]] {
            store.append_messages(&batch).await.unwrap();
        }
        let records = || async {
            let keys: Vec<(i64, String)> = store
                .db()
                .query("SELECT VALUE record::id(id) FROM conversation")
                .await
                .unwrap()
                .take(0)
                .unwrap();
            keys
        };
        let texts = |c: Conversation| {
            let store = store.clone();
            async move {
                store.history(&c, None, 10).await.unwrap().into_iter().map(|m| m.text).collect::<Vec<_>>()
            }
        };
        assert_eq!(records().await, [(1, "#a".into()), (1, "#b".into()), (2, "#a".into()), (3, "#a".into())]);

        // Ten milliseconds into day 2: days 1 and the message of day 2 go; day 2 may hold later
        // messages, so its record stays.
        store.prune_history((2 * DAY_MS + 10) as u64, (3 * DAY_MS) as u64).await.unwrap();
        assert_eq!(texts(a.clone()).await, ["day 3"]);
        assert!(texts(b.clone()).await.is_empty());
        assert_eq!(records().await, [(2, "#a".into()), (3, "#a".into())]);

        // A message of a new day is filed under it, though the store has written #a's before.
        store.append_messages([&on(&a, 5)]).await.unwrap();
        store.prune_history((4 * DAY_MS) as u64, (5 * DAY_MS) as u64).await.unwrap();
        assert_eq!(texts(a.clone()).await, ["day 5"]);
        assert_eq!(records().await, [(5, "#a".into())]);
        store.prune_history((6 * DAY_MS) as u64, (6 * DAY_MS) as u64).await.unwrap();
        assert!(texts(a).await.is_empty());
        assert!(records().await.is_empty());
    }

    /// A move that stopped halfway goes on from the last id it moved.
    #[tokio::test]
    async fn a_move_of_the_old_layout_goes_on_where_it_stopped() {
        let store = Store::open("mem://").await.unwrap();
        store
            .db()
            .query(
                "DEFINE TABLE message SCHEMALESS;
                 FOR $i IN 1..=40 {
                     CREATE type::record('message', $i) SET conv = '#c', mid = $i, ts = $i, sender = 'a',
                         target = '#c', text = 'm' + <string>$i, action = false;
                 };
                 UPSERT store_meta:moving SET high = 30;",
            )
            .await
            .unwrap()
            .checked()
            .unwrap();
        store.move_old_messages().await.unwrap();
        let ids: Vec<u64> = store
            .history(&Conversation::channel("#c"), None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, (31..=40).collect::<Vec<_>>(), "ids up to the cursor were moved before");
        let left: Option<i64> =
            store.db().query("SELECT VALUE high FROM ONLY store_meta:moving").await.unwrap().take(0).unwrap();
        assert_eq!(left, None, "the cursor goes with the old table");
    }
}
