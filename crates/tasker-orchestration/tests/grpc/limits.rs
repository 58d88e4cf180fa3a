//! gRPC takes no larger requests than REST does.

use tasker_proto::v1;
use tonic::Code;

use crate::support::Stack;

#[tokio::test]
async fn a_request_over_the_message_limit_is_refused_before_it_is_read() {
    let stack = Stack::start().await;
    let huge = format!(r#"{{"blob": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let err = stack
        .clients()
        .tasks
        .create_task(v1::CreateTaskRequest {
            namespace: "linear_workflow".into(),
            name: "mathematical_sequence".into(),
            context_json: huge,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.tasks")
        .fetch_one(stack.orchestrator.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was written");
}
