//! `WatchTask` on a task a worker runs: every transition, in order, to
//! every watcher; and watchers that go away leave nothing behind.

use std::time::{Duration, Instant};

use tasker_proto::v1;
use tasker_proto::v1::task_service_client::TaskServiceClient;

use crate::support::Stack;

const PATIENCE: Duration = Duration::from_secs(30);

/// (step name or "task", from, to, event) — what both sides are compared by.
type Change = (String, Option<String>, String, String);

async fn collect(
    mut client: TaskServiceClient<tonic::transport::Channel>,
    task: String,
) -> Vec<Change> {
    let mut stream = client
        .watch_task(v1::WatchTaskRequest { task_uuid: task })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the stream neither sent nor ended in time")
        .unwrap()
    {
        seen.push((
            event.step_name.unwrap_or_else(|| "task".into()),
            event.from_state,
            event.to_state,
            event.event,
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watchers_each_see_every_transition_of_a_running_task_in_order() {
    let stack = Stack::start().await;
    stack.start_worker();
    let task = stack.new_task(6).await;
    let clients = stack.clients();
    let (a, b) = tokio::join!(
        collect(clients.tasks.clone(), task.to_string()),
        collect(clients.tasks.clone(), task.to_string()),
    );
    let recorded: Vec<Change> =
        tasker_db::transition_feed::list_for_task(stack.orchestrator.pool(), task)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.step_name.unwrap_or_else(|| "task".into()),
                    e.from_state,
                    e.to_state,
                    e.event,
                )
            })
            .collect();
    assert_eq!(a, recorded, "watcher A differs from what was recorded");
    assert_eq!(b, recorded, "watcher B differs from what was recorded");
    let last = a.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.2.as_str()),
        ("task", "complete"),
        "{a:#?}"
    );
    // Four steps, each pending → enqueued → in_progress → … → complete.
    assert!(
        a.iter()
            .filter(|c| c.0 != "task" && c.2 == "complete")
            .count()
            == 4,
        "{a:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_disconnect_free_their_registrations() {
    let stack = Stack::start().await;
    let task = stack.new_task(1).await;
    let mut client = stack.clients().tasks;
    for _ in 0..1_000 {
        let mut stream = client
            .watch_task(v1::WatchTaskRequest {
                task_uuid: task.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        // The history arrives, then the client hangs up mid-stream.
        assert!(stream.message().await.unwrap().is_some());
        drop(stream);
    }
    let started = Instant::now();
    while stack.watch.watchers() > 0 {
        assert!(
            started.elapsed() < PATIENCE,
            "{} watchers still registered after every client left",
            stack.watch.watchers()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Their database registrations (which make the task notify) go too.
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.task_watches")
            .fetch_one(stack.orchestrator.pool())
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{left} watch rows left behind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_watched_tasks_notify() {
    let stack = Stack::start().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(stack.orchestrator.pool())
        .await
        .unwrap();
    listener
        .listen(tasker_db::transition_feed::TRANSITIONS_CHANNEL)
        .await
        .unwrap();
    // Nobody watches: creating a task (a dozen transitions) says nothing.
    let unwatched = stack.new_task(1).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), listener.recv())
            .await
            .is_err(),
        "an unwatched task notified"
    );
    // Watched, its changes notify with its UUID.
    let mut stream = stack
        .clients()
        .tasks
        .watch_task(v1::WatchTaskRequest {
            task_uuid: unwatched.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    stack
        .orchestrator
        .cancel_task(unwatched, Some("notify test"))
        .await
        .unwrap();
    let note = tokio::time::timeout(PATIENCE, listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.payload(), unwatched.to_string());
}
