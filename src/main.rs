//! The `steward` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use steward::cli::{Cli, Command, DemoAction, PolicyAction};
use steward::{run, settings::Settings, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match (cli.verbose, matches!(cli.command, Command::Serve { .. })) {
        (0, true) | (1, _) => "info",
        (0, false) => "warn",
        _ => "debug",
    };
    telemetry::init(settings.log_format, level);
    let result = match cli.command {
        Command::Serve { bind, sources } => run::serve(settings, bind, &sources).await,
        Command::Ask {
            user,
            json,
            sources,
            question,
        } => run::ask(settings, &user, json, &sources, &question).await,
        Command::Demo {
            action:
                DemoAction::Init {
                    out,
                    as_of,
                    scale,
                    postgres,
                },
        } => run::demo_init(&out, as_of, scale, postgres.as_deref()).await,
        Command::Eval {
            file,
            json,
            results,
            every,
            baseline,
            sources,
        } => {
            run::eval(
                settings,
                &file,
                json,
                results.as_deref(),
                every,
                baseline,
                &sources,
            )
            .await
        }
        Command::Ingest {
            paths,
            index,
            watch,
            json,
            model,
            qdrant,
        } => {
            let opts = run::IngestOptions {
                paths,
                index,
                watch,
                json,
                model,
                qdrant,
            };
            run::ingest(settings, opts).await
        }
        Command::Sessions { action } => run::sessions(&settings, action).await,
        Command::Verified { action } => run::verified(&settings, action).await,
        Command::Audit { action } => run::audit(&settings, action).await,
        Command::Search {
            query,
            groups,
            mode,
            k,
            index,
        } => run::search(settings, &query, &groups, mode.as_deref(), k, index).await,
        Command::EvalRetrieval {
            file,
            k,
            json,
            index,
        } => run::eval_retrieval(settings, &file, k, json, index).await,
        Command::Policy {
            action:
                PolicyAction::Check {
                    user,
                    json,
                    policies,
                    dialect,
                    sql,
                },
        } => run::policy_check(&settings, &user, json, policies, &dialect, &sql),
        Command::Policy {
            action: PolicyAction::Init { warehouse, out },
        } => run::policy_init(&warehouse, &out).await,
        Command::Policy {
            action: PolicyAction::Apply(args),
        } => run::policy_apply(&settings, args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
