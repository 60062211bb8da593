//! The `datatrace` command line; see `datatrace --help` and [`datatrace_server::cli`].

fn main() -> std::process::ExitCode {
    datatrace_server::commands::main()
}
