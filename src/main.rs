use std::process::ExitCode;

use qqlogin::config::Config;
use qqlogin::startup::Application;

/// jemalloc instead of the C library's allocator: a login allocates and frees
/// hundreds of small buffers across threads (a request's on an async worker,
/// its query's on a database thread). What it saves: BENCHMARKS.md, "Decisions".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// env_logger, level from `RUST_LOG` (default `info`), one line per event:
/// messages carrying newlines (PostgreSQL's errors do) are folded, so log
/// shippers never split an event. actix-session's per-request chatter about
/// stale cookies is kept at `warn`.
fn init_logging() {
    use std::io::Write;
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,actix_session=warn"),
    )
    .format(|buf, record| {
        let message = record.args().to_string();
        writeln!(
            buf,
            "[{} {:<5} {}] {}",
            buf.timestamp(),
            record.level(),
            record.target(),
            message.trim_end().replace('\n', " ")
        )
    })
    .init();
}

#[actix_web::main]
async fn main() -> ExitCode {
    let mut config = Config::from_env().unwrap_or_else(|e| e.exit());
    init_logging();
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
