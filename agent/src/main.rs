//! `secrets-injector-agent`: everything happens in the library (`cli.rs`).

fn main() -> std::process::ExitCode {
    secrets_injector_agent::main()
}
