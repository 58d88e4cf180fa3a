//! A foreign-language callable as a [`StepHandler`]: calling it queues the
//! step for the foreign runtime and waits for the outcome it sends back.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::hub::{DispatchHub, DispatchId};
use crate::context::StepContext;
use crate::handler::{HandlerError, HandlerResult, StepHandler, from_outcome};

/// Runs `callable` in the foreign runtime that polls `hub`.
pub(crate) struct ForeignHandler {
    pub(crate) hub: Arc<DispatchHub>,
    pub(crate) callable: String,
}

#[async_trait]
impl StepHandler for ForeignHandler {
    async fn call(&self, ctx: StepContext) -> HandlerResult {
        let (reply, outcome) = oneshot::channel();
        let ctx = Arc::new(ctx);
        let control = ctx.control().cloned();
        let id = self
            .hub
            .submit(&self.callable, ctx, reply)
            .map_err(|err| HandlerError::retryable(format!("cannot dispatch the step: {err}")))?;
        // However this future ends — outcome, timeout, cancellation, hard
        // stop — the slot learns that nobody waits for it any more.
        let _over = AttemptOver {
            hub: &self.hub,
            id,
            control,
        };
        match outcome.await {
            Ok(outcome) => from_outcome(outcome),
            Err(_) => Err(HandlerError::retryable(
                "the foreign runtime dropped the step without an outcome",
            )),
        }
    }
}

struct AttemptOver<'a> {
    hub: &'a DispatchHub,
    id: DispatchId,
    control: Option<Arc<crate::attempt::AttemptControl>>,
}

impl Drop for AttemptOver<'_> {
    fn drop(&mut self) {
        self.hub.attempt_over(self.id, self.control.as_deref());
    }
}
