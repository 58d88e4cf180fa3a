use serde_json::json;
use tasker_db::testing::TestDb;
use tasker_db::{
    DbError, task, task_transition, workflow_step, workflow_step_edge, workflow_step_transition,
};
use tasker_types::state::{StepState, TaskState};

use crate::support::{DIAMOND, create_diamond, ctx, register, step_named};

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM tasker.{table}"
    )))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn creation_writes_the_task_its_steps_edges_and_first_transitions() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let task_row = task::get(db.pool(), created.task.task_uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task_row.state, TaskState::Pending);
    assert_eq!(task_row.context, json!({"n": 1}));
    assert_eq!(
        (task_row.namespace.as_str(), task_row.name.as_str()),
        ("tests", "diamond")
    );

    let steps = workflow_step::list_for_task(db.pool(), created.task.task_uuid)
        .await
        .unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["start", "left", "right", "end"]);
    assert!(
        steps
            .iter()
            .all(|s| s.state == StepState::Pending && s.attempts == 0)
    );

    // The step is pinned to the template as resolved for the environment.
    let right = steps.iter().find(|s| s.name == "right").unwrap();
    assert_eq!(right.retry.max_attempts, 5);
    assert_eq!(right.timeout_seconds, Some(7));
    assert_eq!(right.initialization, json!({"mode": "test"}));

    let edges = workflow_step_edge::list_for_task(db.pool(), created.task.task_uuid)
        .await
        .unwrap();
    let named = |uuid| {
        steps
            .iter()
            .find(|s| s.workflow_step_uuid == uuid)
            .unwrap()
            .name
            .clone()
    };
    let mut pairs: Vec<(String, String)> =
        edges.iter().map(|e| (named(e.from), named(e.to))).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("left", "end"),
            ("right", "end"),
            ("start", "left"),
            ("start", "right")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    let history = task_transition::list(db.pool(), created.task.task_uuid)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from_state, history[0].to_state),
        (None, TaskState::Pending)
    );
    for step in &steps {
        let history = workflow_step_transition::list(db.pool(), step.workflow_step_uuid)
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].sort_key, 0);
    }
}

#[tokio::test]
async fn creation_is_all_or_nothing_when_it_fails_half_way() {
    let db = TestDb::new().await.unwrap();
    let registered = register(db.pool(), DIAMOND).await;
    // Inject a failure after the task and steps are written: edges refuse inserts.
    sqlx::raw_sql(
        "CREATE FUNCTION tasker.refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON tasker.workflow_step_edges
           FOR EACH STATEMENT EXECUTE FUNCTION tasker.refuse();",
    )
    .execute(db.pool())
    .await
    .unwrap();

    let err = task::create_committed(
        db.pool(),
        task::NewTask::new(&registered, "test", json!({})),
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    for table in [
        "tasks",
        "workflow_steps",
        "workflow_step_edges",
        "task_transitions",
        "workflow_step_transitions",
    ] {
        assert_eq!(count(db.pool(), table).await, 0, "{table} must be empty");
    }
}

const STRICT: &str = r#"
name: orders
namespace_name: tests
version: 1.0.0
identity_strategy: strict
steps:
  - { name: only, handler: { callable: "tasker::noop" } }
"#;

#[tokio::test]
async fn a_strict_duplicate_is_refused_with_the_existing_uuid_whatever_the_key_order() {
    let db = TestDb::new().await.unwrap();
    let registered = register(db.pool(), STRICT).await;
    let first = task::create_committed(
        db.pool(),
        task::NewTask::new(
            &registered,
            "test",
            json!({"order": 7, "lines": [{"sku": "a", "qty": 1}]}),
        ),
        &ctx(),
    )
    .await
    .unwrap();
    let reordered: serde_json::Value =
        serde_json::from_str(r#"{"lines":[{"qty":1,"sku":"a"}],"order":7}"#).unwrap();
    let err = task::create_committed(
        db.pool(),
        task::NewTask::new(&registered, "test", reordered),
        &ctx(),
    )
    .await
    .unwrap_err();
    match err {
        DbError::DuplicateTask { existing } => assert_eq!(existing, first.task.task_uuid),
        other => panic!("expected DuplicateTask, got {other:?}"),
    }
    assert_eq!(count(db.pool(), "tasks").await, 1);
    assert_eq!(count(db.pool(), "workflow_steps").await, 1);
    // A different context is a different task.
    task::create_committed(
        db.pool(),
        task::NewTask::new(&registered, "test", json!({"order": 8})),
        &ctx(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn caller_provided_identity_needs_a_key_and_always_unique_allows_repeats() {
    let db = TestDb::new().await.unwrap();
    let keyed = register(db.pool(), &STRICT.replace("strict", "caller_provided")).await;
    let err = task::create_committed(
        db.pool(),
        task::NewTask::new(&keyed, "test", json!({})),
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::Identity(_)), "{err:?}");
    let with_key = |context| task::NewTask {
        idempotency_key: Some("invoice-42".into()),
        ..task::NewTask::new(&keyed, "test", context)
    };
    let first = task::create_committed(db.pool(), with_key(json!({"a": 1})), &ctx())
        .await
        .unwrap();
    let err = task::create_committed(db.pool(), with_key(json!({"a": 2})), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::DuplicateTask { existing } if existing == first.task.task_uuid));

    let unique = register(
        db.pool(),
        &STRICT
            .replace("strict", "always_unique")
            .replace("orders", "again"),
    )
    .await;
    for _ in 0..3 {
        task::create_committed(
            db.pool(),
            task::NewTask::new(&unique, "test", json!({"same": true})),
            &ctx(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn concurrent_duplicate_creates_yield_one_task_and_the_rest_learn_its_uuid() {
    let db = TestDb::new().await.unwrap();
    let registered = register(db.pool(), STRICT).await;
    let attempts = (0..10).map(|_| {
        let pool = db.pool().clone();
        let registered = registered.clone();
        tokio::spawn(async move {
            task::create_committed(
                &pool,
                task::NewTask::new(&registered, "test", json!({"race": 1})),
                &ctx(),
            )
            .await
            .map(|c| c.task.task_uuid)
        })
    });
    let mut winners = Vec::new();
    let mut reported = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(uuid) => winners.push(uuid),
            Err(DbError::DuplicateTask { existing }) => reported.push(existing),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert!(reported.iter().all(|uuid| *uuid == winners[0]));
    assert_eq!(count(db.pool(), "tasks").await, 1);
}

#[tokio::test]
async fn task_transitions_are_fenced_and_recorded() {
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let uuid = created.task.task_uuid;
    let mut conn = db.pool().acquire().await.unwrap();
    use tasker_types::state::TaskEvent;
    let next = task::transition(
        &mut conn,
        uuid,
        TaskState::Pending,
        TaskEvent::Initialize,
        &ctx(),
    )
    .await
    .unwrap();
    assert_eq!(next, TaskState::Initializing);
    // A second orchestrator that still believes the task is pending loses.
    let err = task::transition(
        &mut conn,
        uuid,
        TaskState::Pending,
        TaskEvent::Initialize,
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DbError::TransitionConflict { entity: "task", .. }),
        "{err:?}"
    );
    // An event the machine forbids is refused before touching the database.
    let err = task::transition(
        &mut conn,
        uuid,
        TaskState::Initializing,
        TaskEvent::Complete,
        &ctx(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::InvalidTransition(_)), "{err:?}");
    task::transition(
        &mut conn,
        uuid,
        TaskState::Initializing,
        TaskEvent::Cancel,
        &ctx(),
    )
    .await
    .unwrap();

    let row = task::get(&mut *conn, uuid).await.unwrap().unwrap();
    assert_eq!(row.state, TaskState::Cancelled);
    assert!(row.completed_at.is_some());
    let history = task_transition::list(&mut *conn, uuid).await.unwrap();
    let path: Vec<_> = history.iter().map(|h| (h.sort_key, h.to_state)).collect();
    assert_eq!(
        path,
        [
            (0, TaskState::Pending),
            (1, TaskState::Initializing),
            (2, TaskState::Cancelled)
        ]
    );
    let _ = step_named(&created, "start");
}

#[tokio::test]
async fn a_path_of_events_is_one_compare_and_set_with_a_row_per_event() {
    use tasker_types::state::TaskEvent as E;
    let db = TestDb::new().await.unwrap();
    let created = create_diamond(db.pool()).await;
    let uuid = created.task.task_uuid;
    let mut conn = db.pool().acquire().await.unwrap();
    let path = [E::Initialize, E::EnqueueReadySteps, E::AwaitSteps];
    let end = task::transition_path(&mut conn, uuid, TaskState::Pending, &path, &ctx())
        .await
        .unwrap();
    assert_eq!(end, TaskState::StepsInProcess);
    // A path the machine forbids is refused whole, before anything is written.
    let bad = [E::EvaluateResults, E::Complete, E::Cancel];
    let err = task::transition_path(&mut conn, uuid, TaskState::StepsInProcess, &bad, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::InvalidTransition(_)), "{err:?}");
    let history = task_transition::list(&mut *conn, uuid).await.unwrap();
    let rows: Vec<_> = history
        .iter()
        .map(|h| (h.sort_key, h.from_state, h.to_state, h.event.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            (0, None, TaskState::Pending, "create"),
            (
                1,
                Some(TaskState::Pending),
                TaskState::Initializing,
                "initialize"
            ),
            (
                2,
                Some(TaskState::Initializing),
                TaskState::EnqueuingSteps,
                "enqueue_ready_steps"
            ),
            (
                3,
                Some(TaskState::EnqueuingSteps),
                TaskState::StepsInProcess,
                "await_steps"
            ),
        ]
    );
    let row = task::get(&mut *conn, uuid).await.unwrap().unwrap();
    assert_eq!(row.state, TaskState::StepsInProcess);
}
