use std::process::ExitCode;

use qqlogin::config::Config;
use qqlogin::startup::Application;

/// jemalloc instead of the C library's allocator: a login allocates and frees
/// hundreds of small buffers across threads (a request's on an async worker,
/// its query's on a database thread). What it saves: BENCHMARKS.md, "Decisions".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    let mut config = Config::from_env().unwrap_or_else(|e| e.exit());
    qqlogin::logging::init(config.log_format);
    if let Some(command) = config.command.take() {
        return qqlogin::cli::run(command, config).await;
    }
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
