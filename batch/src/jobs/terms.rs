//! What the settlement jobs share: the business day they close, and the provider's terms (its fee per
//! payment method).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::settlement::FeeRates;
use infra::config::BusinessTimeArgs;

/// How long after its end a business day may be closed: a move that began before midnight and commits
/// just after it is still in the day it is recorded on.
const CLOSING_DELAY_MINUTES: i64 = 5;

/// The start of a dated job's command line for `restart`: its name, `--date` and `--timezone`.
pub fn dated_command(name: &str, date: NaiveDate, business: &BusinessTimeArgs) -> Vec<String> {
    vec![name.to_owned(), "--date".into(), date.to_string(), "--timezone".into(), business.timezone.name().to_owned()]
}

/// A business day as instants: `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Day {
    /// The day `date` in the business time zone.
    pub fn of(date: NaiveDate, business: &BusinessTimeArgs) -> Result<Day, String> {
        let next = date.succ_opt().ok_or_else(|| format!("{date} has no next day"))?;
        Ok(Day { date, start: business.start_of(date), end: business.start_of(next) })
    }

    /// The day `date`, if it has been over long enough to close; else why not.
    pub fn ended(date: NaiveDate, business: &BusinessTimeArgs) -> Result<Day, String> {
        let day = Day::of(date, business)?;
        if Utc::now() < day.end + Duration::minutes(CLOSING_DELAY_MINUTES) {
            return Err(format!(
                "business day {date} ({}) has not been over {CLOSING_DELAY_MINUTES} minutes; it is closed once over",
                business.timezone.name()
            ));
        }
        Ok(day)
    }
}

/// The fee rates when none are set: the local payment sandbox's (basis points).
const SANDBOX_FEE_RATES: &str = "CARD=250,BANK_TRANSFER=150,VIRTUAL_ACCOUNT=100,MOBILE=350";

#[derive(clap::Args, Debug, Clone)]
pub struct FeeRateArgs {
    /// The provider's fee per payment method in basis points (1/100 %), METHOD=BPS pairs for CARD,
    /// BANK_TRANSFER, VIRTUAL_ACCOUNT and MOBILE. The fee on a payment is rounded toward zero to the won,
    /// as the provider computes it; each settlement line keeps the rate it was settled with.
    #[arg(long, env = "PAYMENT_FEE_RATES", default_value = SANDBOX_FEE_RATES, value_parser = parse_fee_rates)]
    pub fee_rates: FeeRates,
}

fn parse_fee_rates(raw: &str) -> Result<FeeRates, String> {
    FeeRates::parse(raw).map_err(|error| error.to_string())
}

impl FeeRateArgs {
    pub fn command_line(&self) -> [String; 2] {
        ["--fee-rates".into(), self.fee_rates.to_string()]
    }
}
