//! Webhook deliveries the server could not make: those still queued when it stopped (sent at
//! the next start) and those that failed every attempt (the dead letters, kept for the
//! operator to look at).

use surrealdb::types::SurrealValue;

use super::Checked;
use super::{Result, Store};

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, SurrealValue)]
pub struct WebhookDelivery {
    pub url: String,
    /// The JSON body, as signed.
    pub body: String,
    pub attempts: i64,
    /// Why the last attempt failed, for a dead letter.
    pub error: Option<String>,
}

impl Store {
    /// Keeps deliveries to make at the next start.
    pub async fn save_pending_webhooks(&self, pending: Vec<WebhookDelivery>) -> Result<()> {
        self.insert_webhooks("webhook_pending", pending).await
    }

    /// Takes the deliveries kept at the last stop (they are deleted).
    pub async fn take_pending_webhooks(&self) -> Result<Vec<WebhookDelivery>> {
        let store = self.clone();
        self.write(async move {
            let mut res = store
                .db()
                .query("SELECT url, body, attempts, error FROM webhook_pending ORDER BY at; DELETE webhook_pending;")
                .await?
                .checked()?;
            Ok(res.take(0)?)
        })
        .await
    }

    /// Records a delivery that failed every attempt.
    pub async fn add_dead_webhook(&self, dead: WebhookDelivery) -> Result<()> {
        self.insert_webhooks("webhook_dead", vec![dead]).await
    }

    /// The dead letters, oldest first.
    pub async fn dead_webhooks(&self) -> Result<Vec<WebhookDelivery>> {
        let mut res = self
            .db()
            .query("SELECT url, body, attempts, error FROM webhook_dead ORDER BY at")
            .await?
            .checked()?;
        Ok(res.take(0)?)
    }

    async fn insert_webhooks(&self, table: &'static str, rows: Vec<WebhookDelivery>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let store = self.clone();
        self.write(async move {
            store
                .db()
                .query("FOR $row IN $rows { CREATE type::table($table) CONTENT { url: $row.url, body: $row.body, attempts: $row.attempts, error: $row.error, at: time::now() } }")
                .bind(("table", table))
                .bind(("rows", rows))
                .await?
                .checked()?;
            Ok(())
        })
        .await
    }
}
