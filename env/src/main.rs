//! `secrets-injector-env [--mount-path P] [--env NAME=PATH]... [--env-from DIR]... -- CMD [ARG]...`
//! (docs/env-vars.md). Everything lives in the library so tests can call it.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    secrets_injector_env::main_with(std::env::args_os().collect())
}
