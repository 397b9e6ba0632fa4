//! `settle-batch create-user`: an account made by an operator (the first admin, service accounts),
//! under the same rules as a sign-up. The password comes from standard input, never an argument (which
//! any user of the machine can read in the process list).

use crate::Exit;
use anyhow::Context;
use domain::{account::new_account, Role};
use infra::accounts::{hashing::Hasher, users};
use sqlx::PgPool;
use std::io::BufRead;

#[derive(clap::Args, Debug)]
pub struct CreateUserArgs {
    /// The account's e-mail address (its login).
    #[arg(long)]
    pub email: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// USER or ADMIN.
    #[arg(long, default_value = "USER")]
    pub role: Role,
}

pub async fn create_user(pool: &PgPool, args: CreateUserArgs) -> anyhow::Result<Exit> {
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password).context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let (email, name) = match new_account(&args.email, &password, &args.name) {
        Ok(valid) => valid,
        Err(fields) => {
            for field in fields {
                eprintln!("settle-batch: {}: {}", field.field, field.message);
            }
            eprintln!("settle-batch: the account was not created");
            return Ok(Exit::BadArguments);
        }
    };
    let hash = Hasher::new(1, 0)?.hash(password).await.map_err(anyhow::Error::from)??;
    match users::create(pool, &email, &name, &hash, args.role).await? {
        Ok(profile) => {
            println!("created user {} <{}> with role {}", profile.id, profile.email, profile.role);
            Ok(Exit::Success)
        }
        Err(users::EmailTaken) => {
            eprintln!("settle-batch: an account with the e-mail address {email} exists");
            Ok(Exit::BadArguments)
        }
    }
}
