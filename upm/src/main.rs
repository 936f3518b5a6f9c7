//! The `upm` binary: parse the arguments, run the command, map the result to an exit code.
//! Invoked as `install`, `chmod`, `chown`, … (the phase wrappers), it acts as that tool; invoked
//! as `upm-phase-guard`, it guards a running phase (`runner::guard`).

mod cli;

fn main() -> std::process::ExitCode {
    if let Some(code) = upm::trial::dispatch()
        .or_else(upm::wrap::dispatch)
        .or_else(upm::runner::guard::dispatch)
    {
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    cli::main()
}
