//! The built-in `tasker::*` handlers (SPEC §7). Their behaviour is part of
//! the public contract: smoke tests, demos and benchmarks rely on it.

mod basic;
mod math;

use crate::registry::HandlerRegistry;

/// Registers every built-in handler.
pub(crate) fn register(registry: &mut HandlerRegistry) {
    registry
        .register("tasker::noop", basic::Noop)
        .register("tasker::echo", basic::Echo)
        .register("tasker::sleep", basic::Sleep)
        .register("tasker::fail", basic::Fail)
        .register("tasker::math", math::Math);
}

#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;

    use crate::context::{StepContext, StepContextData};

    pub(crate) fn ctx(context: Value, initialization: Value, attempt: u32) -> StepContext {
        StepContext::new(StepContextData {
            namespace: "tests".into(),
            task_name: "t".into(),
            task_version: "1.0.0".into(),
            context,
            step_name: "step".into(),
            template_step: "step".into(),
            attempt,
            max_attempts: 5,
            initialization,
            ..StepContextData::default()
        })
    }
}
