//! Per-user totals from the ledger stream. Pure functions over text COPY blocks, so rayon can parse
//! blocks in parallel and the results can be checked without a database.

use std::collections::HashMap;

/// What one user's ledger says, as of the read snapshot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UserTotals {
    /// Sum of every entry: what the stored balance must equal.
    pub total: i64,
    /// Sum of entries before the end of the business day: the day's closing balance.
    pub closing: i64,
    /// Entries before the end of the business day (a snapshot row is written only when there are any).
    pub entries_to_close: i64,
    pub earned: i64,
    pub used: i64,
    pub cancelled: i64,
    pub expired: i64,
    /// The stored balance, if the user has a balance row.
    pub stored: Option<i64>,
    /// Sum of the remaining amounts of the user's lots: what the stored balance must equal as well.
    pub lots: i64,
}

/// A balance that differs from its ledger, its lots, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discrepancy {
    pub stored: i64,
    pub ledger: i64,
    pub lots: i64,
}

pub type Totals = HashMap<i64, UserTotals>;

impl UserTotals {
    fn add(&mut self, other: &UserTotals) {
        self.total += other.total;
        self.closing += other.closing;
        self.entries_to_close += other.entries_to_close;
        self.earned += other.earned;
        self.used += other.used;
        self.cancelled += other.cancelled;
        self.expired += other.expired;
        if other.stored.is_some() {
            self.stored = other.stored;
        }
        self.lots += other.lots;
    }

    /// The stored balance differs from the ledger or from the lots (a missing balance row stands for zero).
    pub fn discrepancy(&self) -> Option<Discrepancy> {
        let stored = self.stored.unwrap_or(0);
        (stored != self.total || stored != self.lots).then_some(Discrepancy {
            stored,
            ledger: self.total,
            lots: self.lots,
        })
    }
}

/// Parses ledger lines `user \t kind(e|u|c|x) \t amount \t before_close(0|1) \t in_day(0|1)`.
pub fn ledger_block(block: &[u8]) -> Result<Totals, String> {
    let mut totals = Totals::new();
    for line in block.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        let mut fields = line.split(|&b| b == b'\t');
        let mut next = || fields.next().ok_or_else(|| format!("short ledger line {:?}", String::from_utf8_lossy(line)));
        let user = integer(next()?)?;
        let kind = next()?;
        let amount = integer(next()?)?;
        let before_close = next()? == b"1";
        let in_day = next()? == b"1";
        let entry = totals.entry(user).or_default();
        entry.total += amount;
        if before_close {
            entry.closing += amount;
            entry.entries_to_close += 1;
            if in_day {
                match kind {
                    b"e" => entry.earned += amount,
                    b"u" => entry.used -= amount,
                    b"x" => entry.expired -= amount,
                    _ => entry.cancelled += amount.abs(),
                }
            }
        }
    }
    Ok(totals)
}

/// Parses balance lines `user \t balance` into the stored balances.
pub fn balance_block(block: &[u8]) -> Result<Totals, String> {
    let mut totals = Totals::new();
    for (user, balance) in pairs(block, "balance")? {
        totals.entry(user).or_default().stored = Some(balance);
    }
    Ok(totals)
}

/// The `integer \t integer` lines of a block.
fn pairs(block: &[u8], what: &str) -> Result<Vec<(i64, i64)>, String> {
    let lines = block.split(|&b| b == b'\n').filter(|line| !line.is_empty());
    lines
        .map(|line| {
            let tab = line.iter().position(|&b| b == b'\t');
            let (key, value) = tab
                .map(|tab| (&line[..tab], &line[tab + 1..]))
                .ok_or_else(|| format!("bad {what} line {:?}", String::from_utf8_lossy(line)))?;
            Ok((integer(key)?, integer(value)?))
        })
        .collect()
}

/// Parses lot lines `user \t sum of remaining` into the users' lot totals.
pub fn lots_block(block: &[u8]) -> Result<Totals, String> {
    let mut totals = Totals::new();
    for (user, remaining) in pairs(block, "lots")? {
        totals.entry(user).or_default().lots += remaining;
    }
    Ok(totals)
}

/// Folds `from` into `into` (the larger map is kept, so merging many blocks stays linear).
pub fn merge(mut into: Totals, mut from: Totals) -> Totals {
    if into.len() < from.len() {
        std::mem::swap(&mut into, &mut from);
    }
    for (user, totals) in from {
        into.entry(user).or_default().add(&totals);
    }
    into
}

fn integer(field: &[u8]) -> Result<i64, String> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(format!("bad integer {:?}", String::from_utf8_lossy(field)));
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(format!("bad integer {:?}", String::from_utf8_lossy(field)));
        }
        value = value * 10 + i64::from(digit - b'0');
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_block_splits_the_day_from_the_closing_and_the_total() {
        let block =
            b"7\te\t100\t1\t0\n7\tu\t-30\t1\t1\n7\tc\t30\t1\t1\n7\tx\t-20\t1\t1\n7\te\t5\t0\t0\n8\te\t1\t1\t1\n";
        let totals = ledger_block(block).expect("parses");
        assert_eq!(
            totals[&7],
            UserTotals {
                total: 85,
                closing: 80,
                entries_to_close: 4,
                earned: 0,
                used: 30,
                cancelled: 30,
                expired: 20,
                stored: None,
                lots: 0,
            }
        );
        assert_eq!(totals[&8].earned, 1);
    }

    #[test]
    fn merged_blocks_equal_one_block_and_balances_join_by_user() {
        let whole = ledger_block(b"1\te\t10\t1\t1\n2\te\t20\t1\t1\n1\tu\t-5\t1\t1\n").expect("parses");
        let parts = merge(
            ledger_block(b"1\te\t10\t1\t1\n").expect("a"),
            ledger_block(b"2\te\t20\t1\t1\n1\tu\t-5\t1\t1\n").expect("b"),
        );
        assert_eq!(whole, parts);
        let joined = merge(parts, balance_block(b"1\t5\n3\t9\n").expect("balances"));
        let joined = merge(joined, lots_block(b"1\t5\n2\t20\n3\t9\n").expect("lots"));
        assert_eq!(joined[&1].discrepancy(), None);
        let differ = |stored, ledger, lots| Some(Discrepancy { stored, ledger, lots });
        assert_eq!(joined[&2].discrepancy(), differ(0, 20, 20), "no balance row counts as zero");
        assert_eq!(joined[&3].discrepancy(), differ(9, 0, 9), "a balance without ledger entries");
    }

    #[test]
    fn a_balance_that_agrees_with_its_ledger_but_not_its_lots_is_a_discrepancy() {
        let ledger = ledger_block(b"4\te\t100\t1\t1\n4\tu\t-40\t1\t1\n").expect("ledger");
        let joined =
            merge(merge(ledger, balance_block(b"4\t60\n").expect("balances")), lots_block(b"4\t59\n").expect("lots"));
        assert_eq!(joined[&4].discrepancy(), Some(Discrepancy { stored: 60, ledger: 60, lots: 59 }));
    }

    #[test]
    fn malformed_lines_are_errors_not_zeros() {
        assert!(ledger_block(b"x\te\t1\t1\t1\n").is_err());
        assert!(ledger_block(b"1\te\n").is_err());
        assert!(balance_block(b"12\n").is_err());
        assert!(lots_block(b"12\tx\n").is_err());
    }
}
