//! Background maintenance that one orchestrator at a time performs (by
//! advisory lock): the staleness detector (SPEC §4.10).

pub(crate) mod staleness;
