//! The processes under test: `tasker-server` and `rust-worker` binaries,
//! started with the suite's environment, killed with SIGKILL or stopped
//! with SIGTERM, and restarted the way a supervisor (systemd, Kubernetes)
//! would: shortly after they exit, whatever the reason.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// What a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `tasker-server`: orchestration and the REST API.
    Server,
    /// `rust-worker`: the built-in handlers.
    Worker,
}

/// One supervised process.
#[derive(Debug)]
pub struct Proc {
    /// What it is.
    pub role: Role,
    /// The REST port of a server.
    pub port: Option<u16>,
    child: Option<Child>,
    /// When it exited, so it is restarted after a pause.
    exited_at: Option<Instant>,
    /// Times it was started.
    pub starts: u32,
    log: PathBuf,
}

/// Every process of the run.
#[derive(Debug)]
pub struct Fleet {
    bin_dir: PathBuf,
    env: Vec<(String, String)>,
    /// The processes, servers first.
    pub procs: Vec<Proc>,
    restart_after: Duration,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Fleet {
    /// `servers` servers and `workers` workers from the binaries in
    /// `bin_dir`, logging into `log_dir`; none started yet.
    ///
    /// # Errors
    /// When a binary is missing or no port is free.
    pub fn new(
        bin_dir: &Path,
        log_dir: &Path,
        env: Vec<(String, String)>,
        servers: usize,
        workers: usize,
    ) -> anyhow::Result<Self> {
        for binary in ["tasker-server", "rust-worker"] {
            let path = bin_dir.join(binary);
            anyhow::ensure!(
                path.exists(),
                "{} is missing: build it first (cargo build -p tasker-orchestration -p tasker-rust-worker)",
                path.display()
            );
        }
        let mut procs = Vec::new();
        for i in 0..servers {
            procs.push(Proc {
                role: Role::Server,
                port: Some(free_port()?),
                child: None,
                exited_at: None,
                starts: 0,
                log: log_dir.join(format!("server-{i}.log")),
            });
        }
        for i in 0..workers {
            procs.push(Proc {
                role: Role::Worker,
                port: None,
                child: None,
                exited_at: None,
                starts: 0,
                log: log_dir.join(format!("worker-{i}.log")),
            });
        }
        Ok(Self {
            bin_dir: bin_dir.to_path_buf(),
            env,
            procs,
            restart_after: Duration::from_millis(300),
        })
    }

    /// The servers' base URLs.
    pub fn server_urls(&self) -> Vec<String> {
        self.procs
            .iter()
            .filter_map(|p| p.port.map(|port| format!("http://127.0.0.1:{port}")))
            .collect()
    }

    fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let proc = &mut self.procs[i];
        let binary = match proc.role {
            Role::Server => "tasker-server",
            Role::Worker => "rust-worker",
        };
        let log = File::options().create(true).append(true).open(&proc.log)?;
        let mut command = Command::new(self.bin_dir.join(binary));
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(port) = proc.port {
            command.env("TASKER_WEB_BIND_ADDRESS", format!("127.0.0.1:{port}"));
        }
        proc.child = Some(
            command
                .spawn()
                .with_context(|| format!("starting {binary}"))?,
        );
        proc.exited_at = None;
        proc.starts += 1;
        Ok(())
    }

    /// Starts every process that is not running.
    ///
    /// # Errors
    /// When a binary cannot be started.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.procs.len() {
            if self.procs[i].child.is_none() {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// Restarts processes that exited at least `restart_after` ago (a
    /// process that cannot reach PostgreSQL at start exits, and is
    /// restarted again until it can).
    ///
    /// # Errors
    /// When a binary cannot be started.
    pub fn supervise(&mut self) -> anyhow::Result<()> {
        for i in 0..self.procs.len() {
            let proc = &mut self.procs[i];
            if let Some(child) = &mut proc.child
                && child.try_wait()?.is_some()
            {
                proc.child = None;
                proc.exited_at = Some(Instant::now());
            }
            let due = proc
                .exited_at
                .is_some_and(|at| at.elapsed() >= self.restart_after);
            if proc.child.is_none() && due {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// SIGKILLs process `i` (it is restarted by [`Fleet::supervise`]).
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let proc = &mut self.procs[i];
        if let Some(mut child) = proc.child.take() {
            child.kill()?;
            child.wait()?;
            proc.exited_at = Some(Instant::now());
        }
        Ok(())
    }

    /// Sends SIGTERM to process `i` and waits up to `within` for it to
    /// exit; returns its exit status (`None`: it did not exit in time and
    /// was killed). It stays down until [`Fleet::start_all`].
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn terminate(&mut self, i: usize, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let proc = &mut self.procs[i];
        let Some(mut child) = proc.child.take() else {
            return Ok(None);
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        child.wait()?;
        Ok(None)
    }

    /// Kills every process (at the end of the run).
    pub fn kill_all(&mut self) {
        for i in 0..self.procs.len() {
            let _ = self.kill(i);
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_all();
    }
}
