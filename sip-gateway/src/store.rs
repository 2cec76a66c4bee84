//! Storage through sqlx `AnyPool` (SQLite or PostgreSQL): seats, registrar bindings and call
//! detail records. Portable SQL only (`$1` placeholders, BIGINT millis, text ids); the tables
//! are created by `migrations/0002_sip_gateway.sql`.

use std::sync::Arc;

use hotline_core::write_queue::{WriteFailure, WriteQueue};
use hotline_core::{IdGenerator, Rng, UnixMillis};
use sqlx::{AnyPool, Row};

use crate::config::is_seat_number;
use crate::digest::{Algorithm, ha1};
use crate::error::GatewayError;

/// A seat (agent SIP account) without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Seat {
    pub number: String,
    pub realm: String,
    pub display_name: String,
    pub enabled: bool,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

fn check_password(password: &str) -> Result<(), GatewayError> {
    if (8..=128).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(GatewayError::WeakPassword)
    }
}

/// Creates a seat; keeps only the MD5 and SHA-256 HA1 of `number:realm:password`.
pub async fn add_seat(
    pool: &AnyPool,
    number: &str,
    password: &str,
    realm: &str,
    now: UnixMillis,
) -> Result<Seat, GatewayError> {
    if !is_seat_number(number) {
        return Err(GatewayError::InvalidSeatNumber(number.to_string()));
    }
    check_password(password)?;
    if seat_exists(pool, number).await? {
        return Err(GatewayError::SeatExists(number.to_string()));
    }
    sqlx::query(
        "INSERT INTO sip_seats (number, realm, ha1_md5, ha1_sha256, display_name, enabled, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
    )
    .bind(number)
    .bind(realm)
    .bind(ha1(Algorithm::Md5, number, realm, password))
    .bind(ha1(Algorithm::Sha256, number, realm, password))
    .bind(number)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(Seat {
        number: number.to_string(),
        realm: realm.to_string(),
        display_name: number.to_string(),
        enabled: true,
        created_at: now,
        updated_at: now,
    })
}

pub async fn list_seats(pool: &AnyPool) -> Result<Vec<Seat>, GatewayError> {
    let rows = sqlx::query(
        "SELECT number, realm, display_name, enabled, created_at, updated_at FROM sip_seats \
         ORDER BY number",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Seat {
                number: r.try_get(0)?,
                realm: r.try_get(1)?,
                display_name: r.try_get(2)?,
                enabled: r.try_get::<i64, _>(3)? != 0,
                created_at: r.try_get(4)?,
                updated_at: r.try_get(5)?,
            })
        })
        .collect()
}

/// Removes a seat and its bindings.
pub async fn remove_seat(pool: &AnyPool, number: &str) -> Result<(), GatewayError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM sip_bindings WHERE seat = $1")
        .bind(number)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM sip_seats WHERE number = $1")
        .bind(number)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(GatewayError::SeatNotFound(number.to_string()));
    }
    tx.commit().await?;
    Ok(())
}

pub async fn set_seat_password(
    pool: &AnyPool,
    number: &str,
    password: &str,
    realm: &str,
    now: UnixMillis,
) -> Result<(), GatewayError> {
    check_password(password)?;
    let done = sqlx::query(
        "UPDATE sip_seats SET realm = $1, ha1_md5 = $2, ha1_sha256 = $3, updated_at = $4 \
         WHERE number = $5",
    )
    .bind(realm)
    .bind(ha1(Algorithm::Md5, number, realm, password))
    .bind(ha1(Algorithm::Sha256, number, realm, password))
    .bind(now)
    .bind(number)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(GatewayError::SeatNotFound(number.to_string()));
    }
    Ok(())
}

/// Whether a seat with this number exists.
pub async fn seat_exists(pool: &AnyPool, number: &str) -> Result<bool, GatewayError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sip_seats WHERE number = $1")
        .bind(number)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// The stored HA1 for an enabled seat in `realm`.
pub(crate) async fn seat_ha1(
    pool: &AnyPool,
    number: &str,
    realm: &str,
    alg: Algorithm,
) -> Result<Option<String>, GatewayError> {
    let sql = match alg {
        Algorithm::Md5 => {
            "SELECT ha1_md5 FROM sip_seats WHERE number = $1 AND realm = $2 AND enabled = 1"
        }
        Algorithm::Sha256 => {
            "SELECT ha1_sha256 FROM sip_seats WHERE number = $1 AND realm = $2 AND enabled = 1"
        }
    };
    let row = sqlx::query(sql)
        .bind(number)
        .bind(realm)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

/// One registered contact of a seat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    pub seat: String,
    /// The Contact URI as the seat sent it.
    pub contact: String,
    /// Where the REGISTER came from (`ip:port`); requests to the seat go here.
    pub source: String,
    /// `UDP` or `TCP`.
    pub transport: String,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: String,
    pub registered_at: UnixMillis,
    pub expires_at: UnixMillis,
}

pub(crate) async fn upsert_binding(
    pool: &AnyPool,
    b: &Binding,
    rng: &dyn Rng,
) -> Result<(), GatewayError> {
    sqlx::query(
        "INSERT INTO sip_bindings (id, seat, contact, source, transport, call_id, cseq, \
         user_agent, registered_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (seat, contact) DO UPDATE SET source = excluded.source, \
         transport = excluded.transport, call_id = excluded.call_id, cseq = excluded.cseq, \
         user_agent = excluded.user_agent, registered_at = excluded.registered_at, \
         expires_at = excluded.expires_at",
    )
    .bind(IdGenerator::new_id(b.registered_at, rng))
    .bind(&b.seat)
    .bind(&b.contact)
    .bind(&b.source)
    .bind(&b.transport)
    .bind(&b.call_id)
    .bind(i64::from(b.cseq))
    .bind(&b.user_agent)
    .bind(b.registered_at)
    .bind(b.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn delete_binding(
    pool: &AnyPool,
    seat: &str,
    contact: &str,
) -> Result<(), GatewayError> {
    sqlx::query("DELETE FROM sip_bindings WHERE seat = $1 AND contact = $2")
        .bind(seat)
        .bind(contact)
        .execute(pool)
        .await?;
    Ok(())
}

/// Bindings that have not expired at `now`, oldest registration first.
pub async fn list_bindings(pool: &AnyPool, now: UnixMillis) -> Result<Vec<Binding>, GatewayError> {
    let rows = sqlx::query(
        "SELECT seat, contact, source, transport, call_id, cseq, user_agent, registered_at, \
         expires_at FROM sip_bindings WHERE expires_at > $1 ORDER BY registered_at, contact",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Binding {
                seat: r.try_get(0)?,
                contact: r.try_get(1)?,
                source: r.try_get(2)?,
                transport: r.try_get(3)?,
                call_id: r.try_get(4)?,
                cseq: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
                user_agent: r.try_get(6)?,
                registered_at: r.try_get(7)?,
                expires_at: r.try_get(8)?,
            })
        })
        .collect()
}

pub(crate) async fn purge_expired_bindings(
    pool: &AnyPool,
    now: UnixMillis,
) -> Result<u64, GatewayError> {
    Ok(
        sqlx::query("DELETE FROM sip_bindings WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// A call detail record (both B2BUA legs of one call).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallRecord {
    pub id: String,
    /// `inbound` (trunk → seat), `outbound` (click-to-call).
    pub direction: String,
    pub caller: String,
    pub callee: String,
    /// The trunk peer's name, when a trunk leg exists.
    pub trunk: Option<String>,
    pub seat: Option<String>,
    pub a_call_id: String,
    pub b_call_id: Option<String>,
    pub offered_at: UnixMillis,
    pub answered_at: Option<UnixMillis>,
    pub bridged_at: Option<UnixMillis>,
    pub ended_at: Option<UnixMillis>,
    /// `normal`, `cancelled`, `rejected`, `no_answer`, `unavailable`, `failed`.
    pub end_cause: Option<String>,
    /// `caller`, `callee` or `system`.
    pub hangup_side: Option<String>,
    pub a_final_code: Option<u16>,
    pub b_final_code: Option<u16>,
    pub a_codec: Option<String>,
    pub b_codec: Option<String>,
    /// Where a blind transfer (REFER) sent the call: a seat number or an external number.
    pub transferred_to: Option<String>,
}

/// Closes the records of calls that have no end (the process stopped without hanging them
/// up): `end_cause = 'interrupted'`, ended at `now` (when it was noticed). Returns how many.
pub(crate) async fn close_interrupted_calls(
    pool: &AnyPool,
    now: UnixMillis,
) -> Result<u64, GatewayError> {
    let r = sqlx::query(
        "UPDATE sip_calls SET ended_at = $1, end_cause = 'interrupted', hangup_side = 'system' \
         WHERE ended_at IS NULL",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// How long the engine waits for a call record written directly; longer, and the write goes
/// to the queue so that a database outage does not hold up SIP and the calls in progress.
const DIRECT_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// The connection, not the statement, failed: the write may succeed later.
fn transient(e: &GatewayError) -> bool {
    match e {
        GatewayError::Database(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed,
        ) => true,
        GatewayError::Database(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|c| hotline_core::write_queue::transient_sqlstate(&c)),
        _ => false,
    }
}

/// Stores a call record so that a database outage does not lose it (issue 12). Written
/// directly while nothing is queued (readers see it at once); queued for retries when the
/// database does not answer, and queued behind older records while any are waiting, so an
/// older state of a call never overwrites a newer one.
pub(crate) async fn save_call_durably(
    pool: &AnyPool,
    writes: Option<&Arc<dyn WriteQueue>>,
    record: CallRecord,
) {
    let Some(writes) = writes else {
        if let Err(e) = save_call(pool, &record).await {
            tracing::error!(error = %e, "storing the call record failed");
        }
        return;
    };
    if writes.is_idle() {
        match tokio::time::timeout(DIRECT_WRITE, save_call(pool, &record)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) if !transient(&e) => {
                tracing::error!(error = %e, "storing the call record failed");
                return;
            }
            // A write cut short may have landed; the queued one is an upsert of the same
            // row, so landing twice is harmless.
            Ok(Err(_)) | Err(_) => {}
        }
    }
    let pool = pool.clone();
    let record = Arc::new(record);
    writes.submit(
        "call record",
        Box::new(move || {
            let (pool, record) = (pool.clone(), record.clone());
            Box::pin(async move {
                save_call(&pool, &record).await.map_err(|e| {
                    if transient(&e) {
                        WriteFailure::Transient(e.to_string())
                    } else {
                        WriteFailure::Permanent(e.to_string())
                    }
                })
            })
        }),
    );
}

pub(crate) async fn save_call(pool: &AnyPool, c: &CallRecord) -> Result<(), GatewayError> {
    sqlx::query(
        "INSERT INTO sip_calls (id, direction, caller, callee, trunk, seat, a_call_id, \
         b_call_id, offered_at, answered_at, bridged_at, ended_at, end_cause, hangup_side, \
         a_final_code, b_final_code, a_codec, b_codec, transferred_to) VALUES ($1, $2, $3, $4, \
         $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT (id) DO UPDATE SET \
         seat = excluded.seat, b_call_id = excluded.b_call_id, \
         answered_at = excluded.answered_at, bridged_at = excluded.bridged_at, \
         ended_at = excluded.ended_at, end_cause = excluded.end_cause, \
         hangup_side = excluded.hangup_side, a_final_code = excluded.a_final_code, \
         b_final_code = excluded.b_final_code, a_codec = excluded.a_codec, \
         b_codec = excluded.b_codec, transferred_to = excluded.transferred_to",
    )
    .bind(&c.id)
    .bind(&c.direction)
    .bind(&c.caller)
    .bind(&c.callee)
    .bind(c.trunk.clone())
    .bind(c.seat.clone())
    .bind(&c.a_call_id)
    .bind(c.b_call_id.clone())
    .bind(c.offered_at)
    .bind(c.answered_at)
    .bind(c.bridged_at)
    .bind(c.ended_at)
    .bind(c.end_cause.clone())
    .bind(c.hangup_side.clone())
    .bind(c.a_final_code.map(i64::from))
    .bind(c.b_final_code.map(i64::from))
    .bind(c.a_codec.clone())
    .bind(c.b_codec.clone())
    .bind(c.transferred_to.clone())
    .execute(pool)
    .await?;
    Ok(())
}

macro_rules! call_columns {
    () => {
        "id, direction, caller, callee, trunk, seat, a_call_id, b_call_id, offered_at, \
         answered_at, bridged_at, ended_at, end_cause, hangup_side, a_final_code, \
         b_final_code, a_codec, b_codec, transferred_to"
    };
}

fn call_from_row(r: &sqlx::any::AnyRow) -> Result<CallRecord, sqlx::Error> {
    let code = |i: usize| -> Result<Option<u16>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(i)?
            .and_then(|c| u16::try_from(c).ok()))
    };
    Ok(CallRecord {
        id: r.try_get(0)?,
        direction: r.try_get(1)?,
        caller: r.try_get(2)?,
        callee: r.try_get(3)?,
        trunk: r.try_get(4)?,
        seat: r.try_get(5)?,
        a_call_id: r.try_get(6)?,
        b_call_id: r.try_get(7)?,
        offered_at: r.try_get(8)?,
        answered_at: r.try_get(9)?,
        bridged_at: r.try_get(10)?,
        ended_at: r.try_get(11)?,
        end_cause: r.try_get(12)?,
        hangup_side: r.try_get(13)?,
        a_final_code: code(14)?,
        b_final_code: code(15)?,
        a_codec: r.try_get(16)?,
        b_codec: r.try_get(17)?,
        transferred_to: r.try_get(18)?,
    })
}

/// The most recent calls, newest first.
pub async fn list_calls(pool: &AnyPool, limit: u32) -> Result<Vec<CallRecord>, GatewayError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        call_columns!(),
        " FROM sip_calls ORDER BY offered_at DESC, id DESC LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(call_from_row).collect::<Result<_, _>>()?)
}

pub async fn get_call(pool: &AnyPool, id: &str) -> Result<Option<CallRecord>, GatewayError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        call_columns!(),
        " FROM sip_calls WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(call_from_row).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::id::SeededRng;

    hotline_testkit::db_test!(seats_round_trip_without_plaintext, |db| async move {
        let pool = &db.pool;
        let seat = add_seat(pool, "8001", "secret-pass", "hotline", 10).await?;
        assert_eq!(seat.number, "8001");
        assert!(matches!(
            add_seat(pool, "8001", "secret-pass", "hotline", 11).await,
            Err(GatewayError::SeatExists(_))
        ));
        assert!(matches!(
            add_seat(pool, "80a1", "secret-pass", "hotline", 11).await,
            Err(GatewayError::InvalidSeatNumber(_))
        ));
        assert!(matches!(
            add_seat(pool, "8002", "short", "hotline", 11).await,
            Err(GatewayError::WeakPassword)
        ));
        add_seat(pool, "8002", "another-pass", "hotline", 12).await?;
        let seats = list_seats(pool).await?;
        assert_eq!(seats.len(), 2);
        let md5 = seat_ha1(pool, "8001", "hotline", Algorithm::Md5).await?;
        assert_eq!(
            md5,
            Some(ha1(Algorithm::Md5, "8001", "hotline", "secret-pass"))
        );
        assert_eq!(seat_ha1(pool, "8001", "other", Algorithm::Md5).await?, None);
        // No column holds the password.
        let row = sqlx::query("SELECT ha1_md5, ha1_sha256 FROM sip_seats WHERE number = '8001'")
            .fetch_one(pool)
            .await?;
        let (a, b): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        assert!(!a.contains("secret") && !b.contains("secret"));
        assert_eq!(b.len(), 64);
        set_seat_password(pool, "8001", "new-password", "hotline", 20).await?;
        assert_eq!(
            seat_ha1(pool, "8001", "hotline", Algorithm::Sha256).await?,
            Some(ha1(Algorithm::Sha256, "8001", "hotline", "new-password"))
        );
        assert!(matches!(
            set_seat_password(pool, "9999", "new-password", "hotline", 20).await,
            Err(GatewayError::SeatNotFound(_))
        ));
        remove_seat(pool, "8002").await?;
        assert!(matches!(
            remove_seat(pool, "8002").await,
            Err(GatewayError::SeatNotFound(_))
        ));
        assert_eq!(list_seats(pool).await?.len(), 1);
        Ok(())
    });

    hotline_testkit::db_test!(bindings_upsert_and_expire, |db| async move {
        let pool = &db.pool;
        let rng = SeededRng::new(1);
        add_seat(pool, "8001", "secret-pass", "hotline", 0).await?;
        let mut b = Binding {
            seat: "8001".into(),
            contact: "<sip:8001@10.0.0.5:5062>".into(),
            source: "10.0.0.5:5062".into(),
            transport: "UDP".into(),
            call_id: "reg1".into(),
            cseq: 1,
            user_agent: "test".into(),
            registered_at: 1_000,
            expires_at: 61_000,
        };
        upsert_binding(pool, &b, &rng).await?;
        b.cseq = 2;
        b.expires_at = 121_000;
        upsert_binding(pool, &b, &rng).await?;
        let mut c = b.clone();
        c.contact = "<sip:8001@10.0.0.6:5062>".into();
        c.expires_at = 30_000;
        upsert_binding(pool, &c, &rng).await?;
        assert_eq!(
            list_bindings(pool, 2_000).await?,
            vec![b.clone(), c.clone()]
        );
        assert_eq!(list_bindings(pool, 40_000).await?, vec![b.clone()]);
        assert_eq!(purge_expired_bindings(pool, 40_000).await?, 1);
        delete_binding(pool, "8001", &b.contact).await?;
        assert!(list_bindings(pool, 2_000).await?.is_empty());
        Ok(())
    });

    hotline_testkit::db_test!(call_records_insert_update_list, |db| async move {
        let pool = &db.pool;
        let mut c = CallRecord {
            id: "c1".into(),
            direction: "inbound".into(),
            caller: "13900000000".into(),
            callee: "02212345".into(),
            trunk: Some("e1".into()),
            a_call_id: "a@x".into(),
            offered_at: 5,
            ..CallRecord::default()
        };
        save_call(pool, &c).await?;
        c.seat = Some("8001".into());
        c.b_call_id = Some("b@y".into());
        c.answered_at = Some(7);
        c.ended_at = Some(9);
        c.end_cause = Some("normal".into());
        c.hangup_side = Some("caller".into());
        c.a_final_code = Some(200);
        c.a_codec = Some("PCMA".into());
        c.transferred_to = Some("8002".into());
        save_call(pool, &c).await?;
        assert_eq!(get_call(pool, "c1").await?, Some(c.clone()));
        assert_eq!(list_calls(pool, 10).await?, vec![c]);
        assert_eq!(get_call(pool, "nope").await?, None);
        Ok(())
    });
}
