//! DataTrace es connector (filled in by its own issue).
