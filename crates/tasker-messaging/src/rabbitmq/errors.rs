//! lapin's errors in the provider-neutral vocabulary.

use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use tasker_types::messages::QueueName;

use crate::error::MessagingError;

const PROVIDER: &str = "rabbitmq";

/// A broker that cannot be reached now.
pub(crate) fn unavailable(why: String) -> MessagingError {
    MessagingError::transient(PROVIDER, why)
}

/// Whether `err` means the connection or channel is gone (retry on a new
/// one), as opposed to the broker refusing the request.
pub(crate) fn is_connection_loss(err: &lapin::Error) -> bool {
    use lapin::ErrorKind as K;
    match err.kind() {
        K::IOError(_)
        | K::InvalidChannelState(..)
        | K::InvalidConnectionState(_)
        | K::InvalidChannel(_)
        | K::MissingHeartbeatError
        | K::RuntimeShutdownError(_) => true,
        K::ProtocolError(amqp) => matches!(amqp.kind(), AMQPErrorKind::Hard(_)),
        _ => false,
    }
}

/// Whether the broker refused a declare because the queue exists with
/// other arguments.
pub(crate) fn is_precondition_failed(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// `err` from an operation on `queue`.
pub(crate) fn classify(err: lapin::Error, queue: Option<&QueueName>) -> MessagingError {
    if let (lapin::ErrorKind::ProtocolError(amqp), Some(queue)) = (err.kind(), queue)
        && matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
    {
        return MessagingError::QueueNotFound(queue.clone());
    }
    if is_connection_loss(&err) {
        MessagingError::transient(PROVIDER, err)
    } else {
        MessagingError::provider(PROVIDER, err)
    }
}
