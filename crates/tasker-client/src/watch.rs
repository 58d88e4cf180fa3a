//! Follows a task over gRPC's server-streaming `WatchTask` (SPEC §8.2):
//! every transition of the task and its steps, as it commits, ending after
//! the task's terminal state.

use std::time::Duration;

use tasker_proto::v1 as pb;
use tasker_proto::v1::task_service_client::TaskServiceClient;
use tasker_types::api::TransitionEvent;
use tasker_types::ids::TaskUuid;
use tonic::transport::Channel;

use crate::Credentials;

/// Why watching failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The gRPC endpoint cannot be reached (fall back to polling REST).
    #[error("cannot reach the gRPC API at {url}: {message}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// Why.
        message: String,
    },
    /// The server refused or ended the stream with an error.
    #[error("{message} ({code})")]
    Status {
        /// The gRPC status code's name.
        code: String,
        /// The server's Tasker error code (`tasker-error-code`), if sent.
        tasker_code: Option<String>,
        /// The server's explanation.
        message: String,
    },
    /// An event the client cannot read.
    #[error("unexpected event from the server: {0}")]
    Decode(String),
}

impl From<tonic::Status> for WatchError {
    fn from(status: tonic::Status) -> Self {
        WatchError::Status {
            code: format!("{:?}", status.code()),
            tasker_code: status
                .metadata()
                .get("tasker-error-code")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            message: status.message().to_owned(),
        }
    }
}

/// An open watch: call [`TaskWatcher::next`] until it returns `None`.
#[derive(Debug)]
pub struct TaskWatcher {
    stream: tonic::Streaming<pb::TransitionEvent>,
}

impl TaskWatcher {
    /// The next transition; `None` once the task has finished and the
    /// server closed the stream.
    ///
    /// # Errors
    /// [`WatchError::Status`] when the stream breaks; [`WatchError::Decode`].
    pub async fn next(&mut self) -> Result<Option<TransitionEvent>, WatchError> {
        match self.stream.message().await? {
            Some(event) => TransitionEvent::try_from(event)
                .map(Some)
                .map_err(WatchError::Decode),
            None => Ok(None),
        }
    }
}

/// Opens a `WatchTask` stream for `task` at `grpc_url` (e.g.
/// `http://127.0.0.1:9190`), sending `credentials`.
///
/// # Errors
/// [`WatchError::Unreachable`] when nothing answers within `connect_timeout`;
/// [`WatchError::Status`] when the server refuses (unknown task, 401, 403).
pub async fn watch_task(
    grpc_url: &str,
    credentials: &Credentials,
    task: TaskUuid,
    connect_timeout: Duration,
) -> Result<TaskWatcher, WatchError> {
    let unreachable = |message: String| WatchError::Unreachable {
        url: grpc_url.to_owned(),
        message,
    };
    let channel = Channel::from_shared(grpc_url.to_owned())
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(connect_timeout)
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut request = tonic::Request::new(pb::WatchTaskRequest {
        task_uuid: task.to_string(),
    });
    if let Some((name, value)) = credentials.header() {
        let value = value
            .parse()
            .map_err(|_| unreachable("the credentials are not a valid header value".into()))?;
        request.metadata_mut().insert(name, value);
    }
    let stream = TaskServiceClient::new(channel)
        .watch_task(request)
        .await?
        .into_inner();
    Ok(TaskWatcher { stream })
}
