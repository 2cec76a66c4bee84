//! Attachments: files under the attachment directory, named by id (never by the client's
//! file name), with a size limit and a content check by magic bytes (PDF, JPEG, PNG only).

use std::path::PathBuf;

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};

use super::tickets::{history, touch};
use super::{CrmStore, int, opt_text, text};
use crate::error::{CrmError, CrmResult};
use crate::permission::Actor;
use crate::ticket::DepositDocument;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentPolicy {
    pub max_bytes: u64,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub ticket_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Relative to the attachment directory.
    pub stored_path: String,
    pub document: Option<DepositDocument>,
    pub uploaded_by: String,
    pub uploaded_at: UnixMillis,
}

/// The type of a file from its first bytes: (content type, extension).
pub fn sniff_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else {
        None
    }
}

/// Keeps a display name harmless: no path, no control characters, bounded length.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let s: String = base.chars().filter(|c| !c.is_control()).take(120).collect();
    if s.trim().is_empty() {
        "附件".to_string()
    } else {
        s
    }
}

impl CrmStore {
    /// Stores a file for a ticket. The content decides the type; a declared type that
    /// disagrees is refused.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_attachment(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        ticket_id: &str,
        file_name: &str,
        declared_type: Option<&str>,
        bytes: &[u8],
        document: Option<DepositDocument>,
    ) -> CrmResult<Attachment> {
        let t = self.ticket_for_work(actor, ticket_id).await?;
        let limit = self.config.attachments.max_bytes;
        if bytes.len() as u64 > limit {
            return Err(CrmError::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        if bytes.is_empty() {
            return Err(CrmError::Invalid("附件为空".into()));
        }
        let (content_type, ext) = sniff_type(bytes)
            .ok_or_else(|| CrmError::UnsupportedType(declared_type.unwrap_or("?").into()))?;
        if let Some(d) = declared_type
            && !d.is_empty()
            && d != "application/octet-stream"
            && d != content_type
        {
            return Err(CrmError::UnsupportedType(d.to_string()));
        }
        let id = IdGenerator::new_id(now, rng);
        let rel = format!("{}/{id}.{ext}", t.id);
        let path = self.attachment_dir.join(&rel);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // write to a temporary name and rename, so a crash never leaves a half file under
        // the final name
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        let a = Attachment {
            id,
            ticket_id: t.id.clone(),
            file_name: clean_name(file_name),
            content_type: content_type.to_string(),
            size_bytes: bytes.len() as i64,
            stored_path: rel,
            document,
            uploaded_by: actor.username.clone(),
            uploaded_at: now,
        };
        let result: CrmResult<()> = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO crm_attachments (id, ticket_id, file_name, content_type, size_bytes, \
                 stored_path, document, uploaded_by, uploaded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&a.id)
            .bind(&a.ticket_id)
            .bind(&a.file_name)
            .bind(&a.content_type)
            .bind(a.size_bytes)
            .bind(&a.stored_path)
            .bind(a.document.map(|d| d.as_str()))
            .bind(&a.uploaded_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            touch(&mut tx, &t, now).await?;
            history(
                &mut tx,
                now,
                rng,
                &t.id,
                actor,
                "attach",
                None,
                None,
                serde_json::json!({"attachment_id": a.id, "file_name": a.file_name,
                    "size_bytes": a.size_bytes, "document": a.document}),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        Ok(a)
    }

    pub async fn attachments(&self, actor: &Actor, ticket_id: &str) -> CrmResult<Vec<Attachment>> {
        self.ticket(actor, ticket_id).await?;
        let rows = sqlx::query(
            "SELECT id, ticket_id, file_name, content_type, size_bytes, stored_path, document, \
             uploaded_by, uploaded_at FROM crm_attachments WHERE ticket_id = $1 \
             ORDER BY uploaded_at, id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attachment {
                    id: text(r, "id")?,
                    ticket_id: text(r, "ticket_id")?,
                    file_name: text(r, "file_name")?,
                    content_type: text(r, "content_type")?,
                    size_bytes: int(r, "size_bytes")?,
                    stored_path: text(r, "stored_path")?,
                    document: opt_text(r, "document")?
                        .map(|d| d.parse())
                        .transpose()
                        .map_err(super::corrupt)?,
                    uploaded_by: text(r, "uploaded_by")?,
                    uploaded_at: int(r, "uploaded_at")?,
                })
            })
            .collect()
    }

    /// The attachment and its bytes, if `actor` may see the ticket.
    pub async fn read_attachment(
        &self,
        actor: &Actor,
        ticket_id: &str,
        attachment_id: &str,
    ) -> CrmResult<(Attachment, Vec<u8>)> {
        let a = self
            .attachments(actor, ticket_id)
            .await?
            .into_iter()
            .find(|a| a.id == attachment_id)
            .ok_or_else(|| CrmError::NotFound(format!("附件 {attachment_id}")))?;
        let path: PathBuf = self.attachment_dir.join(&a.stored_path);
        let bytes = tokio::fs::read(&path).await?;
        Ok((a, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_cleans() {
        assert_eq!(sniff_type(b"%PDF-1.7 ...").unwrap().1, "pdf");
        assert_eq!(sniff_type(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap().1, "jpg");
        assert_eq!(sniff_type(b"\x89PNG\r\n\x1a\nxx").unwrap().0, "image/png");
        assert!(sniff_type(b"MZ\x90\x00").is_none());
        assert!(sniff_type(b"<html>").is_none());
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\授权书.pdf"), "授权书.pdf");
        assert_eq!(clean_name("a\u{0}b"), "ab");
        assert_eq!(clean_name(""), "附件");
    }
}
