//! Test support (feature `testing`): a fresh, fully migrated database for
//! every test.
//!
//! The first test to need one builds a template database (PGMQ + migrations)
//! named after a hash of the migrations, under an advisory lock so parallel
//! test processes build it once; every test then clones it with
//! `CREATE DATABASE … TEMPLATE`, which is much faster than migrating. A
//! [`TestDb`] drops its database when it goes out of scope, even when the
//! test panics. Databases left behind by killed test runs are dropped after
//! an hour.
//!
//! The server comes from `DATABASE_URL` (any database on it; the helper
//! needs the right to create databases). Without it, the helper starts the
//! same private cluster `tasker-ctl dev` uses, in
//! `$TMPDIR/tasker-test-cluster`, and leaves it running for the next test
//! run (`pg_ctl -D $TMPDIR/tasker-test-cluster stop` stops it).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use tasker_types::identity::sha256_hex;

use crate::error::DbError;
use crate::migrate::{MIGRATOR, migrate};

const TEST_DB_PREFIX: &str = "tasker_test_";
const TEMPLATE_PREFIX: &str = "tasker_tpl_";
const TEMPLATE_LOCK_KEY: i64 = 0x7461_736B_6572_0002;
/// Leftover test databases older than this are dropped.
const ABANDONED_AFTER_SECS: u64 = 3600;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, migrated database that is dropped when this value is.
#[derive(Debug)]
pub struct TestDb {
    pool: PgPool,
    name: String,
    server: PgConnectOptions,
}

impl TestDb {
    /// Creates a database cloned from the migrated template.
    ///
    /// # Errors
    /// [`DbError`] when `DATABASE_URL` is unset or the server refuses.
    pub async fn new() -> Result<Self, DbError> {
        let server = server_options()?;
        let mut admin = PgConnection::connect_with(&server).await?;
        let template = ensure_template(&mut admin, &server).await?;
        let now = unix_now();
        let name = format!(
            "{TEST_DB_PREFIX}{now}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        create_database_from(&mut admin, &name, &template).await?;
        admin.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect_with(server.clone().database(&name))
            .await?;
        Ok(Self { pool, name, server })
    }

    /// A pool on the test database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The test database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the test database, for processes under test:
    /// `DATABASE_URL` with its database replaced.
    pub fn url(&self) -> String {
        let base = server_url().unwrap_or_default();
        let (url, query) = base
            .split_once('?')
            .map_or((base.as_str(), ""), |(u, q)| (u, q));
        let host_start = url.find("://").map_or(0, |i| i + 3);
        let path_start = url[host_start..]
            .find('/')
            .map_or(url.len(), |i| host_start + i);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{}/{}{query}", &url[..path_start], self.name)
    }

    /// Connection options for the test database (for processes under test).
    pub fn connect_options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which is blocked here: do the
        // cleanup on a thread with a runtime of its own, and wait. The pool's
        // connections belong to the blocked runtime, so they are not closed
        // politely; `DROP DATABASE … WITH (FORCE)` ends them.
        let name = self.name.clone();
        let server = self.server.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect_with(&server).await {
                    let _ = drop_database(&mut admin, &name).await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

static SERVER_URL: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();

/// `DATABASE_URL`, or the private test cluster's URL (started on first use).
fn server_url() -> Result<String, DbError> {
    SERVER_URL
        .get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => {
                let dir = crate::dev_cluster::test_cluster_dir();
                crate::dev_cluster::DevCluster::start(&dir)
                    .map(|cluster| cluster.keep_running().url("postgres"))
                    .map_err(|e| {
                        format!("no DATABASE_URL, and the private test cluster failed: {e}")
                    })
            }
        })
        .clone()
        .map_err(|message| DbError::Database(sqlx::Error::Configuration(message.into())))
}

fn server_options() -> Result<PgConnectOptions, DbError> {
    Ok(server_url()?.parse::<PgConnectOptions>()?)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The template's name: a hash of every migration and of the PGMQ installer.
fn template_name() -> String {
    let mut fingerprint = String::new();
    for migration in MIGRATOR.iter() {
        fingerprint.push_str(&format!(
            "{}:{:x?};",
            migration.version, &*migration.checksum
        ));
    }
    fingerprint.push_str(crate::migrate::PGMQ_CRATE_VERSION);
    format!(
        "{TEMPLATE_PREFIX}{}",
        &sha256_hex(fingerprint.as_bytes())[..16]
    )
}

async fn ensure_template(
    admin: &mut PgConnection,
    server: &PgConnectOptions,
) -> Result<String, DbError> {
    let template = template_name();
    if database_exists(admin, &template).await? {
        return Ok(template);
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut *admin)
        .await?;
    let built = build_template(admin, server, &template).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut *admin)
        .await?;
    built?;
    Ok(template)
}

async fn build_template(
    admin: &mut PgConnection,
    server: &PgConnectOptions,
    template: &str,
) -> Result<(), DbError> {
    if database_exists(admin, template).await? {
        return Ok(());
    }
    // Build under a temporary name and rename when complete, so a crash
    // half-way never leaves a broken template behind.
    let building = format!("{template}_building");
    drop_database(admin, &building).await?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE \"{building}\"")))
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(server.clone().database(&building))
        .await?;
    let migrated = migrate(&pool).await;
    pool.close().await;
    migrated?;
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
        )))
        .await?;
    remove_stale_databases(admin, template).await;
    Ok(())
}

/// Drops templates of other migration sets and test databases abandoned by
/// killed runs. Best effort: a database in use is left alone.
async fn remove_stale_databases(admin: &mut PgConnection, current_template: &str) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'tasker\\_tpl\\_%' OR datname LIKE 'tasker\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    let cutoff = unix_now().saturating_sub(ABANDONED_AFTER_SECS);
    for name in names {
        let stale = if let Some(rest) = name.strip_prefix(TEST_DB_PREFIX) {
            rest.split('_')
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t < cutoff)
        } else {
            name != current_template && !name.ends_with("_building")
        };
        if stale {
            let _ = drop_database(admin, &name).await;
        }
    }
}

async fn create_database_from(
    admin: &mut PgConnection,
    name: &str,
    template: &str,
) -> Result<(), DbError> {
    let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
    let mut tries = 0;
    loop {
        // Concurrent clones of one template can briefly collide on the
        // template's lock; a short retry settles it.
        match admin.execute(AssertSqlSafe(sql.clone())).await {
            Ok(_) => return Ok(()),
            Err(err) if tries < 50 && is_template_busy(&err) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn is_template_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "55006"))
}

async fn database_exists(admin: &mut PgConnection, name: &str) -> Result<bool, DbError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut *admin)
            .await?;
    Ok(exists)
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), DbError> {
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await?;
    Ok(())
}
