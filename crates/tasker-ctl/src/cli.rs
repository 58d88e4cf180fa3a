//! The command line, as clap sees it.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use tasker_types::dlq::{DlqReason, DlqStatus};
use tasker_types::ids::{DlqEntryUuid, StepUuid, TaskUuid};
use tasker_types::state::{ParseStateError, TaskState};

/// Tasker's command line.
#[derive(Debug, Parser)]
#[command(
    name = "tasker-ctl",
    version,
    about = "Run and inspect Tasker workflows"
)]
pub(crate) struct Cli {
    /// The Tasker server's URL.
    #[arg(
        long,
        global = true,
        env = "TASKER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) url: String,
    /// The Tasker server's gRPC endpoint (used by `task watch`, which falls
    /// back to polling the REST API when it is unreachable).
    #[arg(
        long,
        global = true,
        env = "TASKER_GRPC_URL",
        default_value = "http://127.0.0.1:9190"
    )]
    pub(crate) grpc_url: String,
    /// A JWT to send as `Authorization: Bearer` (servers with auth on).
    #[arg(
        long,
        global = true,
        env = "TASKER_TOKEN",
        hide_env_values = true,
        conflicts_with = "api_key"
    )]
    pub(crate) token: Option<String>,
    /// An API key to send as `X-API-Key` (servers with auth on).
    #[arg(long, global = true, env = "TASKER_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned tables and sentences.
    Table,
    /// JSON on stdout.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, inspect, cancel and repair tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// List, show, validate, register and draw templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Inspect and resolve dead-letter-queue entries (tasks that need a person).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Read durable domain events from the queue backend (no server needed).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Show the server's health.
    Health,
    /// Check and print configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Make RS256 key pairs, JWTs and API-key hashes for `[auth]`.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Run a complete local stack (orchestration, REST API, Rust worker) in this process.
    Dev(DevArgs),
    /// Run the example workflows end to end on a throwaway local stack, then exit.
    Demo(DemoArgs),
    /// Start (or find) the private PostgreSQL cluster the test suites share,
    /// print its URL and leave it running (used by the Python worker's tests
    /// when DATABASE_URL is unset).
    #[command(hide = true)]
    TestCluster,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Create a task.
    Create(CreateArgs),
    /// Show a task and its steps.
    Get {
        /// The task.
        task: TaskUuid,
    },
    /// List tasks, newest first.
    List(ListArgs),
    /// Cancel a task.
    Cancel {
        /// The task.
        task: TaskUuid,
        /// Why (recorded on every transition).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List a task's steps.
    Steps {
        /// The task.
        task: TaskUuid,
    },
    /// Show one step.
    Step {
        /// The task.
        task: TaskUuid,
        /// The step.
        step: StepUuid,
    },
    /// Show a step's attempts and state changes.
    Audit {
        /// The task.
        task: TaskUuid,
        /// The step.
        step: StepUuid,
    },
    /// Follow a task until it finishes; the exit code is its outcome.
    Watch {
        /// The task.
        task: TaskUuid,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Run a failed step again, with a fresh attempt budget.
    ResetStep {
        #[command(flatten)]
        target: StepActionArgs,
        /// Inputs that replace the step's own: a JSON object, or `@path` to read one from a file.
        #[arg(long)]
        inputs: Option<String>,
    },
    /// Declare a step done without a result; its dependents proceed.
    ResolveStep {
        #[command(flatten)]
        target: StepActionArgs,
    },
    /// Declare a step done with a result, which its dependents receive.
    CompleteStep {
        #[command(flatten)]
        target: StepActionArgs,
        /// The step's result: JSON, or `@path` to read it from a file.
        #[arg(long)]
        result: String,
    },
}

/// The step an operator repairs, and the audit trail's who and why.
#[derive(Debug, Args)]
pub(crate) struct StepActionArgs {
    /// The task.
    pub(crate) task: TaskUuid,
    /// The step.
    pub(crate) step: StepUuid,
    /// Why (recorded in the audit trail).
    #[arg(long, value_parser = non_blank)]
    pub(crate) reason: String,
    /// Who (recorded in the audit trail).
    #[arg(long, env = "USER", value_parser = non_blank)]
    pub(crate) actor: String,
}

fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be blank".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Template namespace.
    #[arg(long, short = 'n')]
    pub(crate) namespace: String,
    /// Template name.
    #[arg(long)]
    pub(crate) name: String,
    /// Template version (default: the highest registered).
    #[arg(long)]
    pub(crate) version: Option<String>,
    /// The context: a JSON object, or `@path` to read one from a file.
    #[arg(long, short = 'c', default_value = "{}")]
    pub(crate) context: String,
    /// A label (repeatable).
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Priority.
    #[arg(long, default_value_t = 0)]
    pub(crate) priority: i32,
    /// Who asks.
    #[arg(long)]
    pub(crate) initiator: Option<String>,
    /// Why.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Identifies duplicate requests.
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
    /// Wait for the task to finish, showing progress; the exit code is its outcome.
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this namespace.
    #[arg(long, short = 'n')]
    pub(crate) namespace: Option<String>,
    /// Only this template name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Only tasks in this state.
    #[arg(long, value_parser = parse_state)]
    pub(crate) state: Option<TaskState>,
    /// How many (1 to 100).
    #[arg(long, default_value_t = 25)]
    pub(crate) limit: u32,
    /// Page cursor (`next_cursor` of the previous page).
    #[arg(long)]
    pub(crate) before: Option<TaskUuid>,
}

fn parse_state(s: &str) -> Result<TaskState, String> {
    s.parse().map_err(|e: ParseStateError| e.to_string())
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List entries, newest first.
    List(DlqListArgs),
    /// Show a task's entries, newest first.
    Get {
        /// The task.
        task: TaskUuid,
    },
    /// Record an investigation's outcome: for one ENTRY, or with --all for
    /// every open entry matching the filters.
    Resolve(DlqResolveArgs),
    /// Count entries by reason and status.
    Stats,
}

#[derive(Debug, Args)]
pub(crate) struct DlqListArgs {
    /// Only entries in this status.
    #[arg(long, value_parser = dlq_status())]
    pub(crate) status: Option<DlqStatus>,
    /// Only entries recorded for this reason.
    #[arg(long, value_parser = dlq_reason())]
    pub(crate) reason: Option<DlqReason>,
    /// Only tasks of this namespace.
    #[arg(long, short = 'n')]
    pub(crate) namespace: Option<String>,
    /// Only entries recorded before this instant (RFC 3339).
    #[arg(long)]
    pub(crate) created_before: Option<DateTime<Utc>>,
    /// How many (1 to 100).
    #[arg(long, default_value_t = 25)]
    pub(crate) limit: u32,
    /// Page cursor (`next_cursor` of the previous page).
    #[arg(long)]
    pub(crate) before: Option<DlqEntryUuid>,
}

/// Exactly one of ENTRY or `--all`.
#[derive(Debug, Args)]
#[command(group = ArgGroup::new("which").required(true).multiple(false))]
pub(crate) struct DlqResolveArgs {
    /// The entry.
    #[arg(group = "which")]
    pub(crate) entry: Option<DlqEntryUuid>,
    /// Every open entry matching --reason, --namespace and --created-before.
    #[arg(long, group = "which")]
    pub(crate) all: bool,
    /// With --all: only entries recorded for this reason.
    #[arg(long, conflicts_with = "entry", value_parser = dlq_reason())]
    pub(crate) reason: Option<DlqReason>,
    /// With --all: only tasks of this namespace.
    #[arg(long, short = 'n', conflicts_with = "entry")]
    pub(crate) namespace: Option<String>,
    /// With --all: only entries recorded before this instant (RFC 3339).
    #[arg(long, conflicts_with = "entry")]
    pub(crate) created_before: Option<DateTime<Utc>>,
    /// The new status.
    #[arg(long, value_parser = dlq_status())]
    pub(crate) status: DlqStatus,
    /// What was found or done.
    #[arg(long)]
    pub(crate) notes: Option<String>,
    /// Who (required when closing an entry).
    #[arg(long, env = "USER", value_parser = non_blank)]
    pub(crate) by: Option<String>,
}

/// Parses a DLQ status, listing the valid ones in `--help` and errors.
fn dlq_status() -> impl TypedValueParser<Value = DlqStatus> {
    PossibleValuesParser::new(DlqStatus::ALL.iter().map(|s| s.as_str()))
        .try_map(|s| s.parse::<DlqStatus>())
}

/// Parses a DLQ reason, listing the valid ones in `--help` and errors.
fn dlq_reason() -> impl TypedValueParser<Value = DlqReason> {
    PossibleValuesParser::new(DlqReason::ALL.iter().map(|r| r.as_str()))
        .try_map(|s| s.parse::<DlqReason>())
}

#[derive(Debug, Subcommand)]
pub(crate) enum TemplateCommand {
    /// List registered templates.
    List {
        /// Only this namespace.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Show a registered template.
    Show {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Version.
        version: String,
    },
    /// Validate a template file (locally; no server needed).
    Validate {
        /// The YAML file.
        file: PathBuf,
    },
    /// Register a template file with the server.
    Register {
        /// The YAML file.
        file: PathBuf,
    },
    /// Draw a template's graph.
    Visualize {
        /// A YAML file, or `namespace/name/version` of a registered template.
        template: String,
        /// Drawing format.
        #[arg(long, short = 'f', value_enum, default_value_t = GraphFormat::Ascii)]
        format: GraphFormat,
    },
}

/// How to draw a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    /// Levels of steps, with their parents.
    Ascii,
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load and validate the configuration; exit 1 naming the bad key.
    Validate(ConfigArgs),
    /// Print the merged configuration, secrets redacted.
    Show(ConfigArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The environment (default: TASKER_ENV, else development).
    #[arg(long, short = 'e')]
    pub(crate) environment: Option<String>,
    /// A directory of overrides (default: TASKER_CONFIG_DIR).
    #[arg(long)]
    pub(crate) config_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Write a new RS256 key pair: `tasker-jwt-private.pem` (keep it secret,
    /// it signs tokens) and `tasker-jwt-public.pem` (the server's
    /// `auth.jwt_rs256_public_key_path`).
    GenerateKeys {
        /// Where to write them.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// RSA modulus size.
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(2048..=8192))]
        bits: u32,
    },
    /// Sign a JWT (RS256 with `--private-key`, else HS256 with the secret).
    Token {
        /// Who the token speaks for (recorded as the actor of its actions).
        #[arg(long, value_parser = non_blank)]
        subject: String,
        /// Permissions, comma-separated: `tasks:create,tasks:read`, `dlq:*`, `*`.
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        /// Lifetime: seconds, or a number with `s`, `m`, `h` or `d`.
        #[arg(long, default_value = "1h")]
        expires: String,
        /// RS256: the private key PEM (from `auth generate-keys`).
        #[arg(long, conflicts_with = "secret")]
        private_key: Option<PathBuf>,
        /// HS256: the shared secret (at least 32 bytes).
        #[arg(long, env = "TASKER_JWT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The `iss` claim (the server's `auth.jwt_issuer`).
        #[arg(long, env = "TASKER_JWT_ISSUER", default_value = "tasker")]
        issuer: String,
        /// The `aud` claim (the server's `auth.jwt_audience`).
        #[arg(long, env = "TASKER_JWT_AUDIENCE", default_value = "tasker-api")]
        audience: String,
    },
    /// Print the stored form (`sha256:…`) of an API key for
    /// `[[auth.api_keys]]`; without `--key`, make a new random key first.
    HashKey {
        /// The key to hash.
        #[arg(long, env = "TASKER_API_KEY_TO_HASH", hide_env_values = true)]
        key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Print (and consume) a namespace's durable domain events, oldest first.
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The namespace whose `<namespace>_domain_events` queue to read.
    #[arg(long, short = 'n')]
    pub(crate) namespace: String,
    /// Stop after this many events.
    #[arg(long, short = 'c')]
    pub(crate) count: Option<usize>,
    /// Keep waiting for new events (until Ctrl-C) instead of stopping when
    /// none are waiting.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// The environment whose configuration names the database and queue
    /// backend (default: TASKER_ENV, else development).
    #[arg(long, short = 'e')]
    pub(crate) environment: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Where the REST API listens (default: the configured web.bind_address).
    #[arg(long)]
    pub(crate) bind: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Also keep the stack running after the demo, until Ctrl-C.
    #[arg(long)]
    pub(crate) keep_running: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
