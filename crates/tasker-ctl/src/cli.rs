//! The command line, as clap sees it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tasker_types::ids::{StepUuid, TaskUuid};
use tasker_types::state::TaskState;

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
    /// Create, inspect and cancel tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// List, show, validate, register and draw templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Show the server's health.
    Health,
    /// Check and print configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a complete local stack (orchestration, REST API, Rust worker) in this process.
    Dev(DevArgs),
    /// Run the example workflows end to end on a throwaway local stack, then exit.
    Demo(DemoArgs),
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
    s.parse()
        .map_err(|e: tasker_types::state::ParseStateError| e.to_string())
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
