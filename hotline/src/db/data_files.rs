//! The register of data files (issue 12): every file imported (bidder export, bank files,
//! 12345 work orders) or exported (statistics, the agency's monthly report, 12345 replies,
//! knowledge base, recording bundles) is recorded with its SHA-256, size, time, operator and
//! kind, so that a notary can be handed a digest that can be checked against the file.
//! The same digest goes into the hash-chained audit log in the same transaction, so the
//! register itself is covered by the chain (`data_files.audit_id` names the entry).

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::audit::{Audit, append};
use super::{Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Import,
    Export,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
        }
    }
}

/// What to record; the digest and size are computed from `bytes`.
#[derive(Debug, Clone, Copy)]
pub struct NewDataFile<'a> {
    pub direction: Direction,
    /// `bidders`, `bank_deposits`, `stats_csv`, … (the list is in migration 0009).
    pub kind: &'a str,
    pub file_name: &'a str,
    pub bytes: &'a [u8],
    /// The username, `cli`, `12345` or `system`.
    pub operator: &'a str,
    pub remote_addr: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataFile {
    pub id: String,
    pub at: UnixMillis,
    pub direction: String,
    pub kind: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub operator: String,
    pub remote_addr: String,
    pub audit_id: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Db {
    /// Records one file and its audit entry (`data_file.import` / `data_file.export`) in one
    /// transaction.
    pub async fn record_data_file(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        f: NewDataFile<'_>,
    ) -> Result<DataFile, StoreError> {
        let sha256 = sha256_hex(f.bytes);
        let size = i64::try_from(f.bytes.len()).unwrap_or(i64::MAX);
        let action = format!("data_file.{}", f.direction.as_str());
        let detail = format!(
            "kind={} file={} size={size} sha256={sha256}",
            f.kind, f.file_name
        );
        let mut tx = self.pool.begin().await?;
        let audit_id = append(
            &mut tx,
            now,
            rng,
            Audit {
                actor: f.operator,
                action: &action,
                target: f.kind,
                detail: &detail,
                remote_addr: f.remote_addr,
            },
        )
        .await?;
        let row = DataFile {
            id: IdGenerator::new_id(now, rng),
            at: now,
            direction: f.direction.as_str().to_string(),
            kind: f.kind.to_string(),
            file_name: f.file_name.to_string(),
            size_bytes: size,
            sha256,
            operator: f.operator.to_string(),
            remote_addr: f.remote_addr.to_string(),
            audit_id,
        };
        sqlx::query(
            "INSERT INTO data_files (id, at, direction, kind, file_name, size_bytes, sha256, \
             operator, remote_addr, audit_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&row.id)
        .bind(row.at)
        .bind(&row.direction)
        .bind(&row.kind)
        .bind(&row.file_name)
        .bind(row.size_bytes)
        .bind(&row.sha256)
        .bind(&row.operator)
        .bind(&row.remote_addr)
        .bind(&row.audit_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The newest first; `sha256` (full hex) finds the records of one file.
    pub async fn data_files(
        &self,
        sha256: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DataFile>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, direction, kind, file_name, size_bytes, sha256, operator, \
             remote_addr, audit_id FROM data_files WHERE ($1 = '' OR sha256 = $1) \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(sha256.unwrap_or("").to_ascii_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DataFile {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    direction: r.try_get("direction")?,
                    kind: r.try_get("kind")?,
                    file_name: r.try_get("file_name")?,
                    size_bytes: r.try_get("size_bytes")?,
                    sha256: r.try_get("sha256")?,
                    operator: r.try_get("operator")?,
                    remote_addr: r.try_get("remote_addr")?,
                    audit_id: r.try_get("audit_id")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::audit::ChainReport;
    use hotline_core::SystemRng;

    hotline_testkit::db_test!(data_files_round_trip, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let f = db
            .record_data_file(
                7,
                &SystemRng,
                NewDataFile {
                    direction: Direction::Import,
                    kind: "bidders",
                    file_name: "2025-11.csv",
                    bytes: b"abc",
                    operator: "biz",
                    remote_addr: "10.0.0.9",
                },
            )
            .await?;
        // SHA-256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            f.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(f.size_bytes, 3);
        let listed = db.data_files(Some(&f.sha256.to_uppercase()), 10).await?;
        assert_eq!(listed, vec![f.clone()]);
        let entries = db.audit_entries(Some("data_file.import"), 10).await?;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, f.audit_id);
        assert!(entries[0].detail.contains(&f.sha256));
        assert_eq!(db.verify_audit().await?, ChainReport::Intact(1));
        Ok(())
    });
}
