//! A PostgreSQL server of a test's own (initdb into a temporary directory, a free port), so a fault test
//! may restart it with `pg_ctl restart -m immediate` without touching the server every other test uses.

use crate::broker::free_port;
use anyhow::{bail, Context};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates and starts the server; returns once it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let bin = server_binaries()?;
        let dir = std::env::temp_dir().join(format!("settle-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).context("the server's directory")?;
        let server = Self { port: free_port(), dir, bin };
        // PostgreSQL refuses to run as root: as root, the server belongs to the postgres user.
        if running_as_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&server.dir))?;
        }
        server.pg("initdb", &["-D", &server.data(), "-A", "trust", "-U", "settle", "--no-sync", "-E", "UTF8"])?;
        server.ctl(&["start", "-w", "-t", "30"])?;
        Ok(server)
    }

    /// The URL of the `postgres` database, as an admin connects.
    pub fn admin_url(&self) -> String {
        format!("postgres://settle@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills every backend at once and starts again (`pg_ctl restart -m immediate`): what a crash and a
    /// supervisor's restart look like to clients. Returns once the server accepts connections again.
    pub fn restart_immediately(&self) -> anyhow::Result<()> {
        self.ctl(&["restart", "-m", "immediate", "-w", "-t", "60"])
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let (data, log) = (self.data(), self.dir.join("server.log").display().to_string());
        let mut args = vec!["-D", data.as_str(), "-l", log.as_str(), "-o", options.as_str()];
        args.extend_from_slice(action);
        self.pg("pg_ctl", &args)
    }

    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        run(command.args(args).current_dir(&self.dir))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop", "-m", "immediate", "-w"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!("{:?} failed: {}", command, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// Debian's newest installed server (`/usr/lib/postgresql/<version>/bin`).
fn server_binaries() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .context("no /usr/lib/postgresql: is PostgreSQL installed?")?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort_by_key(|path| path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()));
    versions.pop().map(|version| version.join("bin")).context("no PostgreSQL server under /usr/lib/postgresql")
}
