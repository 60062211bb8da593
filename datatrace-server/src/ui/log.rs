//! Log records (`tracing`) on stderr, printed through the progress bars so they do not tear
//! them. `-v` shows info, `-vv` debug; the default shows warnings and errors.

use std::io;

use tracing_subscriber::fmt::MakeWriter;

use super::Printer;

/// Writes each log record through a [`Printer`].
#[derive(Clone)]
struct PrinterWriter(Printer);

impl io::Write for PrinterWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_raw(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for PrinterWriter {
    type Writer = PrinterWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global logger (once; later calls do nothing).
pub fn init(verbosity: u8, printer: Printer) {
    let level = match verbosity {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .with_writer(PrinterWriter(printer))
        .try_init();
}
