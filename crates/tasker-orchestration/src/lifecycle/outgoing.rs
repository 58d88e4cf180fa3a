//! Pointer messages collected while a transaction changes state, sent in that
//! same transaction at its end.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;
use tasker_messaging::{MessageQueue, QueueTx, Receipt, Staged};
use tasker_types::messages::QueueName;

use crate::error::OrchestrationError;

/// Sends and acknowledgements to perform in the current transaction.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    immediate: BTreeMap<QueueName, Vec<Value>>,
    delayed: Vec<(QueueName, Value, Duration)>,
    acks: BTreeMap<QueueName, Vec<Receipt>>,
}

impl Outgoing {
    pub(crate) fn send(&mut self, queue: &QueueName, message: Value) {
        self.immediate
            .entry(queue.clone())
            .or_default()
            .push(message);
    }

    pub(crate) fn send_later(&mut self, queue: &QueueName, message: Value, delay: Duration) {
        self.delayed.push((queue.clone(), message, delay));
    }

    pub(crate) fn ack(&mut self, queue: &QueueName, receipts: impl IntoIterator<Item = Receipt>) {
        self.acks.entry(queue.clone()).or_default().extend(receipts);
    }

    /// Writes everything into `conn`'s transaction (or stages it, for
    /// providers that cannot join); the caller commits, then passes the
    /// result to `commit_staged`.
    pub(crate) async fn flush(
        self,
        queue: &dyn MessageQueue,
        conn: &mut PgConnection,
    ) -> Result<Staged, OrchestrationError> {
        let mut unit = QueueTx::join(conn);
        for (name, messages) in &self.immediate {
            queue
                .send_many(&mut unit, name, messages, Duration::ZERO)
                .await?;
        }
        for (name, message, delay) in &self.delayed {
            queue
                .send_many(&mut unit, name, std::slice::from_ref(message), *delay)
                .await?;
        }
        for (name, receipts) in &self.acks {
            queue.ack_many(&mut unit, name, receipts).await?;
        }
        Ok(unit.into_staged())
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, OrchestrationError> {
    serde_json::to_value(value).map_err(|e| OrchestrationError::Corrupt(e.to_string()))
}
