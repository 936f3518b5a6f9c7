//! The `upm` binary: parse the arguments, run the command, map the result to an exit code.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
