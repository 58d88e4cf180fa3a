//! Conversions between the `tasker.v1` messages and the API types of
//! [`tasker_types`]: views to messages (`From`), request messages to
//! request types and back (`TryFrom` / `From`). Field errors are plain
//! strings naming the field (``"`state`: unknown task state `x`"``); the
//! adapter decides how to report them.

mod analytics;
mod dlq;
mod json;
mod names;
mod steps;
mod tasks;
mod templates;
mod time;
mod watch;

pub use json::parse as parse_json;
pub use names::parse_uuid;
pub use templates::TemplateText;
