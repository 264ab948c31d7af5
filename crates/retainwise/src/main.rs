//! The `retainwise` binary: see `retainwise --help` and the README.

fn main() -> std::process::ExitCode {
    retainwise::cli::main()
}
