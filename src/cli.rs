//! Operators' commands (`qqlogin <command>`), run instead of the server with
//! the same settings: the summary on stdout (`--json` for scripts), exit 0
//! on success.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::{Command, Config, DatabaseUrl, QqMode};
use crate::db::Db;
use crate::import::{Summary, import_django};
use crate::qq::stand_in::DEV_APP_ID;

/// How long a command waits for a database connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

pub async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::ImportDjango { from, json } => import(from, json, config).await,
    }
}

async fn import(from: DatabaseUrl, json: bool, config: Config) -> ExitCode {
    let app_id = match &config.qq {
        QqMode::Real { app_id, .. } => app_id.clone(),
        QqMode::DevStandIn => DEV_APP_ID.to_owned(),
    };
    let source = Db::new(from, 1, CONNECT_WITHIN);
    let target = Db::new(config.database.clone(), 2, CONNECT_WITHIN);
    let imported = async {
        target.migrate().await?;
        import_django(&source, &target, &app_id).await
    };
    match imported.await {
        Ok(summary) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).unwrap_or_default()
                );
            } else {
                print!("{}", report(&summary, &config.database));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("qqlogin import-django: nothing was copied: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The summary, for a person.
fn report(summary: &Summary, target: &DatabaseUrl) -> String {
    let mut text = format!(
        "Imported into {}: {} users copied, {} already here; {} QQ links copied, {} already here; {} rows skipped.\n",
        target.describe(),
        summary.users_copied,
        summary.users_already_here,
        summary.links_copied,
        summary.links_already_here,
        summary.skipped.len(),
    );
    if summary.users_copied == 0 && summary.links_copied == 0 {
        text.push_str("Nothing new: everything copyable was here already.\n");
    }
    for skipped in &summary.skipped {
        text.push_str(&format!("skipped {}: {}\n", skipped.row, skipped.why));
    }
    text
}
