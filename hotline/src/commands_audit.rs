//! `hotline audit verify` and `hotline audit files` (issue 12): walk the audit log's hash
//! chain, and list the register of imported and exported data files with their SHA-256.
//! The clap wiring lives in `cli.rs`.

use clap::Subcommand;

use crate::config::Config;
use crate::db::audit::ChainReport;
use crate::fail::Failure;
use crate::server::open_db;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit log's hash chain: prints OK and the number of entries, or the first
    /// broken entry (id, seq, what differs) and exits with status 1.
    Verify,
    /// List the imported and exported data files with their SHA-256 digests, newest first.
    Files {
        /// Only the records of the file with this SHA-256.
        #[arg(long)]
        sha256: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

pub async fn run(config: &Config, cmd: AuditCommand) -> Result<(), Failure> {
    let db = open_db(config).await?;
    let result = match cmd {
        AuditCommand::Verify => match db.verify_audit().await {
            Err(e) => Err(Failure::runtime(e)),
            Ok(ChainReport::Intact(n)) => {
                println!("OK: 审计日志哈希链完整，共 {n} 条");
                Ok(())
            }
            Ok(ChainReport::Broken { good, first }) => Err(Failure::runtime(format!(
                "BROKEN: 审计日志哈希链断裂（前 {good} 条完好）。第一处：条目 {} (seq {})：{}",
                if first.id.is_empty() { "-" } else { &first.id },
                first.seq,
                first.problem
            ))),
        },
        AuditCommand::Files { sha256, limit } => db
            .data_files(sha256.as_deref(), limit.clamp(1, 100_000))
            .await
            .map(|files| {
                for f in &files {
                    println!(
                        "{}  {}  {:<6} {:<22} {:>10} B  {}  {}  {}",
                        crate::cli::beijing_minute(f.at),
                        f.id,
                        f.direction,
                        f.kind,
                        f.size_bytes,
                        f.sha256,
                        f.operator,
                        f.file_name
                    );
                }
                println!("{} 个文件", files.len());
            })
            .map_err(Failure::runtime),
    };
    db.close().await;
    result
}
