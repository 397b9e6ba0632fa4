//! The jobs, one module each; [`NAMES`] is what `settle-batch jobs` lists and `restart` may run.

pub mod auto_confirm;
pub mod expire_points;
pub mod notify_expiring;
pub mod reconcile;
pub mod reconcile_payments;
pub mod settle_sales;
mod terms;

/// The subcommands that run as jobs in the repository.
pub const NAMES: [&str; 5] =
    ["reconcile-points", "expire-points", "notify-expiring-points", "auto-confirm", "settle-sales"];
