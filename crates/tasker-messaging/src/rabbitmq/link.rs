//! The connection to the broker: opened on first use, replaced when it
//! breaks, with exponential backoff between attempts so that a broker that
//! is down costs callers one fast, clear error instead of a hang.

use std::time::{Duration, Instant};

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::errors::unavailable;
use crate::error::MessagingError;

/// First wait after a failed connect; doubled per failure up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connect attempt that takes longer than this has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A live connection and its confirm-mode publishing channel.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) connection: std::sync::Arc<Connection>,
    pub(crate) publisher: Channel,
    /// Which connection this is: receipts and consumers of an earlier one
    /// are void (the broker returned their deliveries when it closed).
    pub(crate) epoch: u64,
}

impl Live {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

struct State {
    live: Option<Live>,
    epochs: u64,
    backoff: Duration,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

/// Hands out the current connection, (re)connecting when needed.
pub(crate) struct Link {
    url: String,
    state: Mutex<State>,
}

impl Link {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            state: Mutex::new(State {
                live: None,
                epochs: 0,
                backoff: FIRST_BACKOFF,
                retry_at: None,
                last_error: None,
            }),
        }
    }

    /// The broker's address without credentials, for messages.
    pub(crate) fn address(&self) -> String {
        match self.url.split_once('@') {
            Some((scheme_and_user, host)) => {
                let scheme = scheme_and_user.split("://").next().unwrap_or("amqp");
                format!("{scheme}://{host}")
            }
            None => self.url.clone(),
        }
    }

    /// The current connection, or a new one. While backing off after a
    /// failure, fails at once with the reason and when it will try again.
    pub(crate) async fn live(&self) -> Result<Live, MessagingError> {
        let mut state = self.state.lock().await;
        if let Some(live) = &state.live {
            if live.usable() {
                return Ok(live.clone());
            }
            tracing::warn!(broker = %self.address(), "RabbitMQ connection lost; reconnecting");
            state.live = None;
        }
        if let Some(retry_at) = state.retry_at
            && Instant::now() < retry_at
        {
            return Err(unavailable(format!(
                "RabbitMQ at {} is unreachable ({}); next attempt in {} ms",
                self.address(),
                state.last_error.as_deref().unwrap_or("unknown error"),
                retry_at
                    .saturating_duration_since(Instant::now())
                    .as_millis()
            )));
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok((connection, publisher))) => {
                state.epochs += 1;
                state.backoff = FIRST_BACKOFF;
                state.retry_at = None;
                state.last_error = None;
                let live = Live {
                    connection: std::sync::Arc::new(connection),
                    publisher,
                    epoch: state.epochs,
                };
                state.live = Some(live.clone());
                if state.epochs > 1 {
                    tracing::info!(broker = %self.address(), "reconnected to RabbitMQ");
                }
                Ok(live)
            }
            failed => {
                let why = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                };
                let wait = state.backoff;
                state.retry_at = Some(Instant::now() + wait);
                state.backoff = (wait * 2).min(MAX_BACKOFF);
                state.last_error = Some(why.clone());
                Err(unavailable(format!(
                    "RabbitMQ at {} is unreachable ({why}); next attempt in {} ms",
                    self.address(),
                    wait.as_millis()
                )))
            }
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), lapin::Error> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default()).await?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((connection, publisher))
    }

    /// Forgets `epoch`'s connection after an operation on it failed, so the
    /// next caller reconnects.
    pub(crate) async fn broken(&self, epoch: u64) {
        let mut state = self.state.lock().await;
        if state.live.as_ref().is_some_and(|l| l.epoch == epoch) {
            state.live = None;
        }
    }

    /// Closes the connection (on shutdown).
    pub(crate) async fn close(&self) {
        let live = self.state.lock().await.live.take();
        if let Some(live) = live {
            let _ = live.connection.close(200, "closing".into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_messages_carry_no_credentials() {
        let link = Link::new("amqp://guest:secret@broker:5672/%2f".into());
        assert_eq!(link.address(), "amqp://broker:5672/%2f");
        let link = Link::new("amqp://broker:5672".into());
        assert_eq!(link.address(), "amqp://broker:5672");
    }

    #[tokio::test]
    async fn a_broker_that_is_down_fails_fast_and_backs_off() {
        // Port 1 on loopback refuses at once.
        let link = Link::new("amqp://guest:guest@127.0.0.1:1/%2f".into());
        let first = link.live().await.err().unwrap();
        assert!(first.is_transient());
        assert!(first.to_string().contains("127.0.0.1:1"), "{first}");
        let started = Instant::now();
        let second = link.live().await.err().unwrap();
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(second.to_string().contains("next attempt in"), "{second}");
    }
}
