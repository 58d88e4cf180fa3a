//! The crash suite's parts (SPEC §15): random DAG templates with known
//! results ([`dag`]), the supervised server and worker processes
//! ([`fleet`]), and the figures read back from the database ([`report`]).
//! The `tasker-chaos` binary runs them; see its documentation.

pub mod dag;
pub mod fleet;
pub mod report;
