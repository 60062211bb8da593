//! The `datatrace` command line (filled in by the jobs issue).

fn main() {
    println!("datatrace {}", env!("CARGO_PKG_VERSION"));
}
