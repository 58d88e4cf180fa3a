use tasker_db::DbError;
use tasker_db::named_task::{self, Registration};
use tasker_db::testing::TestDb;

use crate::support::{DIAMOND, template};

#[tokio::test]
async fn registering_the_same_content_again_is_a_no_op() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let first = named_task::register(&mut conn, &template(DIAMOND))
        .await
        .unwrap();
    assert!(matches!(first, Registration::Created(_)));
    // Same meaning, different formatting and key order.
    let reformatted = DIAMOND.replace(
        "{ name: start, handler: { callable: \"tasker::noop\" } }",
        "{ handler: { callable: 'tasker::noop' }, name: start }",
    );
    let second = named_task::register(&mut conn, &template(&reformatted))
        .await
        .unwrap();
    match second {
        Registration::Unchanged(t) => {
            assert_eq!(t.named_task_uuid, first.template().named_task_uuid)
        }
        other => panic!("expected Unchanged, got {other:?}"),
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.named_tasks")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn changed_content_under_an_existing_version_is_refused() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    named_task::register(&mut conn, &template(DIAMOND))
        .await
        .unwrap();
    let changed = DIAMOND.replace("max_attempts: 5", "max_attempts: 6");
    let err = named_task::register(&mut conn, &template(&changed))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::TemplateConflict { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "template tests/diamond@1.0.0 is already registered with different content; bump the version to change it"
    );
    let stored = named_task::get(&mut *conn, "tests", "diamond", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.template,
        template(DIAMOND),
        "the original is untouched"
    );
}

#[tokio::test]
async fn latest_picks_the_highest_semantic_version() {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    for version in ["1.2.0", "1.10.0", "1.9.3", "2.0.0-rc.1"] {
        let yaml = DIAMOND.replace("version: 1.0.0", &format!("version: {version}"));
        named_task::register(&mut conn, &template(&yaml))
            .await
            .unwrap();
    }
    let latest = named_task::latest(&mut conn, "tests", "diamond")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.template.version, "2.0.0-rc.1");
    let yaml = DIAMOND.replace("version: 1.0.0", "version: 2.0.0");
    named_task::register(&mut conn, &template(&yaml))
        .await
        .unwrap();
    let latest = named_task::latest(&mut conn, "tests", "diamond")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.template.version, "2.0.0");
    assert!(
        named_task::latest(&mut conn, "tests", "nothing")
            .await
            .unwrap()
            .is_none()
    );
    let listed = named_task::list(&mut *conn, Some("tests")).await.unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[0].step_count, 4);
    assert_eq!(named_task::namespaces(&mut *conn).await.unwrap(), ["tests"]);
}

#[tokio::test]
async fn first_registration_notifies_listeners_and_a_repeat_does_not() {
    let db = TestDb::new().await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(db.pool())
        .await
        .unwrap();
    listener.listen(named_task::TEMPLATE_CHANNEL).await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    named_task::register(&mut conn, &template(DIAMOND))
        .await
        .unwrap();
    let note = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.payload(), "tests");
    named_task::register(&mut conn, &template(DIAMOND))
        .await
        .unwrap();
    let repeat = tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv()).await;
    assert!(repeat.is_err(), "an unchanged registration must not notify");
}
