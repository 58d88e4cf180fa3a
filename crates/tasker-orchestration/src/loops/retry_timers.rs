//! In-process retry timers. Scheduling a retry also sends a delayed message,
//! which is the durable record; the timer only wakes this process's reader
//! when the message becomes visible, so retries fire on time without
//! scanning tables (SPEC §4.4). After a crash, the fallback poll finds the
//! message instead.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A set of future wake-up instants.
#[derive(Debug, Default)]
pub(crate) struct RetryTimers {
    due: Mutex<BinaryHeap<Reverse<Instant>>>,
    changed: Notify,
}

impl RetryTimers {
    /// Wakes the reader `delay` from now.
    pub(crate) fn schedule(&self, delay: Duration) {
        let at = Instant::now() + delay;
        self.due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Reverse(at));
        self.changed.notify_one();
    }

    fn earliest(&self) -> Option<Instant> {
        self.due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peek()
            .map(|r| r.0)
    }

    fn pop_due(&self, now: Instant) {
        let mut heap = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        while heap.peek().is_some_and(|r| r.0 <= now) {
            heap.pop();
        }
    }

    /// Resolves when the earliest timer fires (never, while there is none).
    /// Cancel-safe.
    pub(crate) async fn next(&self) {
        loop {
            let changed = self.changed.notified();
            match self.earliest() {
                None => changed.await,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {
                            self.pop_due(Instant::now());
                            return;
                        }
                        () = changed => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timers_fire_in_order_at_their_instant() {
        let timers = RetryTimers::default();
        let start = Instant::now();
        timers.schedule(Duration::from_millis(300));
        timers.schedule(Duration::from_millis(100));
        timers.next().await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        timers.next().await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_timer_scheduled_while_waiting_wins() {
        let timers = std::sync::Arc::new(RetryTimers::default());
        timers.schedule(Duration::from_secs(10));
        let start = Instant::now();
        let waiter = {
            let timers = timers.clone();
            tokio::spawn(async move { timers.next().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        timers.schedule(Duration::from_millis(50));
        waiter.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(60));
    }
}
