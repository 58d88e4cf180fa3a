//! A private PostgreSQL cluster for `tasker-ctl dev`, `tasker-ctl demo` and
//! the test suite when `DATABASE_URL` is unset (SPEC §13).
//!
//! It runs the system's PostgreSQL binaries in a data directory of its own
//! and listens only on a unix socket inside that directory, so it never
//! touches another server. `initdb` refuses to run as root, so when Tasker
//! runs as root the cluster runs as the `postgres` system user (or `nobody`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Why the cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found.\n\
         Install them, or point Tasker at an existing server with DATABASE_URL:\n  \
         Debian/Ubuntu: sudo apt-get install postgresql\n  \
         Fedora/RHEL:   sudo dnf install postgresql-server\n  \
         macOS:         brew install postgresql@16\n\
         If they are installed somewhere unusual, set TASKER_PG_BINDIR to their directory."
    )]
    BinariesNotFound,
    /// A PostgreSQL command failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// The server did not accept connections in time.
    #[error("the private PostgreSQL cluster in {0} did not start; see its log there")]
    StartTimeout(PathBuf),
    /// File-system trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// The unix user the server runs as when this process is root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A private cluster. Stopped when dropped unless [`DevCluster::keep_running`].
#[derive(Debug)]
pub struct DevCluster {
    data_dir: PathBuf,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    stop_on_drop: bool,
    started_here: bool,
}

/// The directory for a named cluster, under the system temp directory
/// (world-traversable, so a dropped-privilege server can reach it) or
/// `TASKER_DEV_DATA_DIR` when set.
pub fn default_data_dir(name: &str) -> PathBuf {
    std::env::var_os("TASKER_DEV_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tasker-{name}")))
}

/// The directory of the private cluster the test suites share when
/// `DATABASE_URL` is unset (Rust's `TestDb`, and the Python worker's tests
/// through `tasker-ctl test-cluster`). Left running between runs.
pub fn test_cluster_dir() -> PathBuf {
    std::env::temp_dir().join("tasker-test-cluster")
}

impl DevCluster {
    /// Starts (creating it first if needed) the cluster in `data_dir`, or
    /// attaches to it when it already runs. Serialized across processes by a
    /// lock file beside the directory.
    ///
    /// # Errors
    /// [`ClusterError::BinariesNotFound`] with install instructions, or the
    /// failing command's output.
    pub fn start(data_dir: &Path) -> Result<Self, ClusterError> {
        Self::start_with(data_dir, false)
    }

    /// Like [`DevCluster::start`]; `durable` keeps `fsync` and synchronous
    /// commits on (for benchmarks), where dev and test clusters trade them
    /// for speed. A cluster already running keeps the settings it has.
    ///
    /// # Errors
    /// As [`DevCluster::start`].
    pub fn start_with(data_dir: &Path, durable: bool) -> Result<Self, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::BinariesNotFound)?;
        let run_as = if is_root() {
            Some(unprivileged_user())
        } else {
            None
        };
        let lock_path = data_dir.with_extension("lock");
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        let lock =
            File::create(&lock_path).map_err(io(format!("creating {}", lock_path.display())))?;
        lock.lock().map_err(io("locking the cluster directory"))?;
        let mut cluster = Self {
            data_dir: data_dir.to_path_buf(),
            bindir,
            run_as,
            stop_on_drop: true,
            started_here: false,
        };
        let started = cluster.ensure_running(durable);
        let _ = lock.unlock();
        started?;
        Ok(cluster)
    }

    fn ensure_running(&mut self, durable: bool) -> Result<(), ClusterError> {
        if !self.data_dir.join("PG_VERSION").exists() {
            self.init()?;
        }
        if self.is_running() {
            return Ok(());
        }
        // A crash can leave a stale pid file; pg_ctl handles it on start.
        let durability = if durable {
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-k {} -c listen_addresses='' -c max_connections=300 {durability}",
            self.data_dir.display()
        );
        let log = self.data_dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir)?,
                "-o",
                &options,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )?;
        self.started_here = true;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.is_running() {
            if Instant::now() > deadline {
                return Err(ClusterError::StartTimeout(self.data_dir.clone()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!(data_dir = %self.data_dir.display(), "private PostgreSQL cluster started");
        Ok(())
    }

    fn init(&self) -> Result<(), ClusterError> {
        std::fs::create_dir_all(&self.data_dir)
            .map_err(io(format!("creating {}", self.data_dir.display())))?;
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(&self.data_dir, Some(user.uid), Some(user.gid)).map_err(
                io(format!(
                    "handing {} to the server's user",
                    self.data_dir.display()
                )),
            )?;
        }
        self.run(
            "initdb",
            &[
                "-D",
                path_str(&self.data_dir)?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .args(["-D", &self.data_dir.to_string_lossy(), "status"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bindir.join(program));
        if let Some(user) = self.run_as {
            std::os::unix::process::CommandExt::uid(&mut command, user.uid);
            std::os::unix::process::CommandExt::gid(&mut command, user.gid);
            // The server's user cannot read root's home; run from the data dir.
            command.current_dir(&self.data_dir);
        }
        command.env_remove("PGDATA").env("LC_ALL", "C.UTF-8");
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(io(format!(
                "running {}",
                self.bindir.join(program).display()
            )))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(ClusterError::Command {
                command: format!("{program} {}", args.join(" ")),
                status: output.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                )
                .trim()
                .to_owned(),
            })
        }
    }

    /// A connection URL for `database` on this cluster (through its socket).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://postgres@localhost/{database}?host={}",
            self.data_dir.display()
        )
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Leaves the cluster running when this value is dropped.
    pub fn keep_running(mut self) -> Self {
        self.stop_on_drop = false;
        self
    }

    /// Stops the cluster (fast shutdown: connections are closed).
    ///
    /// # Errors
    /// The failing `pg_ctl` command's output.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        self.stop_on_drop = false;
        if !self.is_running() {
            return Ok(());
        }
        self.run(
            "pg_ctl",
            &["-D", path_str(&self.data_dir)?, "-m", "fast", "-w", "stop"],
        )?;
        tracing::info!(data_dir = %self.data_dir.display(), "private PostgreSQL cluster stopped");
        Ok(())
    }

    /// Whether this process started the server (rather than attaching).
    pub fn started_here(&self) -> bool {
        self.started_here
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = self.stop();
        }
    }
}

fn path_str(path: &Path) -> Result<&str, ClusterError> {
    path.to_str().ok_or_else(|| ClusterError::Io {
        what: format!("{} is not valid UTF-8", path.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

/// Where `initdb` and `pg_ctl` live: `TASKER_PG_BINDIR`, `pg_config
/// --bindir`, the highest version under `/usr/lib/postgresql`, or `PATH`.
fn find_bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("TASKER_PG_BINDIR").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let dir = entry.path().join("bin");
            has_tools(&dir).then_some((version, dir))
        })
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Some(dir);
    }
    for dir in [
        "/usr/local/pgsql/bin",
        "/opt/homebrew/bin",
        "/usr/local/bin",
        "/usr/bin",
    ] {
        if has_tools(Path::new(dir)) {
            return Some(PathBuf::from(dir));
        }
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_tools(dir))
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `postgres` if that user exists, else `nobody`.
fn unprivileged_user() -> RunAs {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name) && fields.len() > 3)
                .then(|| {
                    Some(RunAs {
                        uid: fields[2].parse().ok()?,
                        gid: fields[3].parse().ok()?,
                    })
                })
                .flatten()
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .unwrap_or(RunAs {
            uid: 65534,
            gid: 65534,
        })
}
