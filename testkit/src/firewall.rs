//! Network faults on loopback: nftables rules of a test's own that drop packets (a dead path, where
//! connections hang until they time out, unlike a stopped service that refuses at once).

use std::{io::Write, process::Command};

/// Drops every packet to a port on this machine while alive; removed on drop.
pub struct Blackhole {
    table: String,
}

impl Blackhole {
    /// Whether this process may change the firewall (root, with the nft command installed).
    pub fn possible() -> bool {
        Command::new("nft").args(["list", "tables"]).output().is_ok_and(|out| out.status.success())
    }

    pub fn drop_port(port: u16) -> anyhow::Result<Self> {
        let table = format!("settle_blackhole_{port}");
        let rules = format!(
            "table inet {table} {{\n chain output {{\n type filter hook output priority 0; policy accept;\n \
             tcp dport {port} drop\n }}\n}}\n"
        );
        let mut nft = Command::new("nft").args(["-f", "-"]).stdin(std::process::Stdio::piped()).spawn()?;
        nft.stdin.take().expect("piped stdin").write_all(rules.as_bytes())?;
        anyhow::ensure!(nft.wait()?.success(), "nft refused the blackhole rule for port {port}");
        Ok(Self { table })
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.table]).status();
    }
}
