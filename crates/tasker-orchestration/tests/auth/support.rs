//! A server with auth on over a fresh database, the credentials the matrix
//! tries, and fixtures the protected operations can succeed on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue};
use tasker_orchestration::Orchestrator;
use tasker_orchestration::auth::Permission;
use tasker_orchestration::server::Server;
use tasker_types::api::TaskRequest;
use tasker_types::auth::{TokenClaims, hash_api_key};
use tasker_types::ids::{StepUuid, TaskUuid};
use tokio_util::sync::CancellationToken;

pub(crate) const SECRET: &str = "matrix-secret-matrix-secret-matrix-secret";
pub(crate) const ISSUER: &str = "tasker-matrix";
pub(crate) const AUDIENCE: &str = "tasker-matrix-api";
/// An API key per permission is too many to configure; these cover "has
/// it" (`*`) and "lacks it": a key for templates only, and one for
/// analytics only (for the template operations).
pub(crate) const ADMIN_KEY: &str = "tsk_admin_key_for_the_matrix_0123456789";
pub(crate) const TEMPLATES_KEY: &str = "tsk_templates_key_for_the_matrix_012345";
pub(crate) const ANALYTICS_KEY: &str = "tsk_analytics_key_for_the_matrix_01234";

/// One way of calling.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    None,
    Bearer(String),
    ApiKey(&'static str),
}

impl Credential {
    pub(crate) fn header(&self) -> Option<(&'static str, String)> {
        match self {
            Credential::None => None,
            Credential::Bearer(t) => Some(("authorization", format!("Bearer {t}"))),
            Credential::ApiKey(k) => Some(("x-api-key", (*k).to_owned())),
        }
    }
}

/// What a call with a credential must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    Unauthenticated,
    Forbidden,
    Allowed,
}

pub(crate) struct Keys {
    rs256_private: EncodingKey,
}

impl Keys {
    fn new() -> (Self, String) {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let keys = Self {
            rs256_private: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        };
        (keys, public_pem)
    }

    fn claims(permissions: &[&str]) -> TokenClaims {
        let now = chrono::Utc::now().timestamp();
        TokenClaims {
            sub: "matrix-user".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: now + 300,
            nbf: now - 1,
            iat: now,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    pub(crate) fn hs256(claims: &TokenClaims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    pub(crate) fn rs256(&self, claims: &TokenClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &self.rs256_private).unwrap()
    }

    /// Every credential the matrix tries for an operation needing
    /// `permission`, with what each must come to.
    pub(crate) fn cases(&self, permission: Permission) -> Vec<(String, Credential, Expect)> {
        use Credential as C;
        use Expect as E;
        let other = Permission::ALL
            .iter()
            .find(|p| p.resource() != permission.resource())
            .unwrap()
            .as_str();
        let exact = permission.as_str();
        let wildcard = format!("{}:*", permission.resource());
        let other_wildcard = format!(
            "{}:*",
            Permission::ALL
                .iter()
                .find(|p| p.resource() != permission.resource())
                .unwrap()
                .resource()
        );
        let mut expired = Self::claims(&[exact]);
        expired.exp = chrono::Utc::now().timestamp() - 3600;
        let mut early = Self::claims(&[exact]);
        early.nbf = chrono::Utc::now().timestamp() + 3600;
        let mut issuer = Self::claims(&[exact]);
        issuer.iss = "someone-else".into();
        let mut audience = Self::claims(&[exact]);
        audience.aud = "another-api".into();
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Self::claims(&[exact]),
            &EncodingKey::from_secret(b"not-the-secret-not-the-secret-not-the"),
        )
        .unwrap();
        vec![
            ("no credentials".into(), C::None, E::Unauthenticated),
            (
                "expired".into(),
                C::Bearer(Self::hs256(&expired)),
                E::Unauthenticated,
            ),
            (
                "not yet valid".into(),
                C::Bearer(Self::hs256(&early)),
                E::Unauthenticated,
            ),
            (
                "wrong issuer".into(),
                C::Bearer(Self::hs256(&issuer)),
                E::Unauthenticated,
            ),
            (
                "wrong audience".into(),
                C::Bearer(Self::hs256(&audience)),
                E::Unauthenticated,
            ),
            (
                "bad signature".into(),
                C::Bearer(forged),
                E::Unauthenticated,
            ),
            (
                "garbage token".into(),
                C::Bearer("abc.def.ghi".into()),
                E::Unauthenticated,
            ),
            (
                "unknown API key".into(),
                C::ApiKey("tsk_nobody"),
                E::Unauthenticated,
            ),
            (
                format!("token with only {other}"),
                C::Bearer(Self::hs256(&Self::claims(&[other]))),
                E::Forbidden,
            ),
            (
                format!("token with only {other_wildcard}"),
                C::Bearer(self.rs256(&Self::claims(&[&other_wildcard]))),
                E::Forbidden,
            ),
            (
                "token with no permissions".into(),
                C::Bearer(Self::hs256(&Self::claims(&[]))),
                E::Forbidden,
            ),
            (
                "API key without it".into(),
                C::ApiKey(if permission.resource() == "templates" {
                    ANALYTICS_KEY
                } else {
                    TEMPLATES_KEY
                }),
                E::Forbidden,
            ),
            (
                format!("HS256 token with {exact}"),
                C::Bearer(Self::hs256(&Self::claims(&[exact]))),
                E::Allowed,
            ),
            (
                format!("RS256 token with {exact}"),
                C::Bearer(self.rs256(&Self::claims(&[exact]))),
                E::Allowed,
            ),
            (
                format!("token with {wildcard}"),
                C::Bearer(Self::hs256(&Self::claims(&[&wildcard]))),
                E::Allowed,
            ),
            (
                "token with *".into(),
                C::Bearer(self.rs256(&Self::claims(&["*"]))),
                E::Allowed,
            ),
            ("API key with *".into(), C::ApiKey(ADMIN_KEY), E::Allowed),
        ]
    }
}

/// What the protected operations act on.
pub(crate) struct Fixtures {
    pub(crate) task: TaskUuid,
    pub(crate) step: StepUuid,
    pub(crate) template_yaml: String,
}

pub(crate) struct AuthServer {
    pub(crate) db: TestDb,
    pub(crate) rest: SocketAddr,
    pub(crate) grpc: SocketAddr,
    pub(crate) keys: Keys,
    pub(crate) fixtures: Fixtures,
    pub(crate) orchestrator: Orchestrator,
    stop: CancellationToken,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn config(public_pem: &str) -> TaskerConfig {
    let key = |name: &str, key: &str, permissions: &[&str]| {
        let mut t = toml::Table::new();
        t.insert("name".into(), name.into());
        t.insert("key_hash".into(), hash_api_key(key).into());
        t.insert(
            "permissions".into(),
            toml::Value::Array(permissions.iter().map(|p| (*p).into()).collect()),
        );
        toml::Value::Table(t)
    };
    ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .set("web.bind_address", "127.0.0.1:0".into())
        .set("grpc.bind_address", "127.0.0.1:0".into())
        .set("auth.enabled", true.into())
        .set("auth.jwt_issuer", ISSUER.into())
        .set("auth.jwt_audience", AUDIENCE.into())
        .set("auth.jwt_hs256_secret", SECRET.into())
        .set("auth.jwt_rs256_public_key", public_pem.into())
        .set(
            "auth.api_keys",
            toml::Value::Array(vec![
                key("matrix-admin", ADMIN_KEY, &["*"]),
                key("matrix-templates", TEMPLATES_KEY, &["templates:*"]),
                key("matrix-analytics", ANALYTICS_KEY, &["analytics:read"]),
            ]),
        )
        .load()
        .unwrap()
}

impl AuthServer {
    pub(crate) async fn start() -> Self {
        let db = TestDb::new().await.unwrap();
        let (keys, public_pem) = Keys::new();
        let config = config(&public_pem);
        let queue: Arc<dyn MessageQueue> = Arc::new(PgmqQueue::new(db.pool().clone()));
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/tasks");
        tasker_worker::register_template_files(
            db.pool(),
            queue.as_ref(),
            std::slice::from_ref(&examples),
        )
        .await
        .unwrap();
        let orchestrator = Orchestrator::new(db.pool().clone(), queue, config.clone());
        orchestrator.prepare().await.unwrap();
        let task = new_task(&orchestrator).await;
        let step = tasker_db::workflow_step::list_for_task(db.pool(), task)
            .await
            .unwrap()[0]
            .workflow_step_uuid;
        let server = Server::bind(orchestrator.clone(), &config).await.unwrap();
        let rest = server.local_addr().unwrap();
        let grpc = server.grpc_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move { server.run(stop).await.unwrap() }
        });
        let template_yaml = std::fs::read_to_string(examples.join("linear_workflow.yaml")).unwrap();
        Self {
            db,
            rest,
            grpc,
            keys,
            fixtures: Fixtures {
                task,
                step,
                template_yaml,
            },
            orchestrator,
            stop,
        }
    }

    /// A fresh running task (cancelling consumes one).
    pub(crate) async fn new_task(&self) -> TaskUuid {
        new_task(&self.orchestrator).await
    }
}

async fn new_task(orchestrator: &Orchestrator) -> TaskUuid {
    let mut request = TaskRequest::new(
        "linear_workflow",
        "mathematical_sequence",
        json!({"value": 6}),
    );
    request.idempotency_key = Some(uuid::Uuid::now_v7().to_string());
    orchestrator
        .create_task(request)
        .await
        .unwrap()
        .task
        .task_uuid
}
