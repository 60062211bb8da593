//! DataTrace mysql connector (filled in by its own issue).
