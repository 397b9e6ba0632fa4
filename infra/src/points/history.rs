//! A user's ledger, newest first, in keyset pages: stable while new entries arrive, and served by the
//! `(user_id, created_at DESC, id DESC)` index instead of OFFSET scans.

use chrono::{DateTime, Utc};
use domain::{
    points::{LotSource, PointKind},
    UserId,
};
use sqlx::PgPool;

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub kind: PointKind,
    pub amount: i64,
    pub reason: Option<String>,
    pub order_id: Option<i64>,
    pub cancels_point_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The lot the entry made (an earn's, or a cancel's that regranted what had expired meanwhile).
    pub lot_source: Option<LotSource>,
    pub lot_amount: Option<i64>,
    pub lot_expires_at: Option<DateTime<Utc>>,
}

/// Where a page ends: the (created_at, id) of its last entry. Opaque to clients (hex text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_micros: i64,
    pub id: i64,
}

impl Cursor {
    pub fn after(row: &HistoryRow) -> Self {
        Self { created_at_micros: row.created_at.timestamp_micros(), id: row.id }
    }

    pub fn encode(self) -> String {
        format!("{}.{}", self.created_at_micros, self.id).bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(raw: &str) -> Option<Self> {
        if !raw.len().is_multiple_of(2) || raw.len() > 80 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..raw.len()).step_by(2).map(|i| u8::from_str_radix(raw.get(i..i + 2)?, 16).ok()).collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (micros, id) = text.split_once('.')?;
        Some(Self { created_at_micros: micros.parse().ok()?, id: id.parse().ok()? })
    }
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub kind: Option<PointKind>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

pub async fn page(
    pool: &PgPool,
    user: UserId,
    filter: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> anyhow::Result<Vec<HistoryRow>> {
    let after_time = after.and_then(|c| DateTime::<Utc>::from_timestamp_micros(c.created_at_micros));
    Ok(sqlx::query_as!(
        HistoryRow,
        r#"SELECT p.id, p.kind AS "kind: PointKind", p.amount, p.reason, p.order_id, p.cancels_point_id, p.created_at,
                  l.source AS "lot_source?: LotSource", l.amount AS "lot_amount?", l.expires_at AS "lot_expires_at?"
           FROM points p LEFT JOIN point_lots l ON l.user_id = p.user_id AND l.point_id = p.id
           WHERE p.user_id = $1 AND ($2::text IS NULL OR p.kind = $2)
             AND ($3::timestamptz IS NULL OR p.created_at >= $3) AND ($4::timestamptz IS NULL OR p.created_at < $4)
             AND ($5::timestamptz IS NULL OR (p.created_at, p.id) < ($5, $6))
           ORDER BY p.created_at DESC, p.id DESC LIMIT $7"#,
        user.get(),
        filter.kind as Option<PointKind>,
        filter.from,
        filter.until,
        after_time,
        after.map_or(0, |c| c.id),
        limit,
    )
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor { created_at_micros: 1_795_000_000_123_456, id: 42 };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for garbage in ["", "zz", "abc", "2e", &"a".repeat(82)] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage:?}");
        }
    }
}
