use std::process::ExitCode;

use qqlogin::config::Config;
use qqlogin::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    let config = Config::from_env().unwrap_or_else(|e| e.exit());
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let listen = config.listen;
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!("qqlogin listening on http://{listen} (port {})", app.port());
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server stopped with an error: {e}");
            ExitCode::FAILURE
        }
    }
}
