//! An Elasticsearch-compatible `_bulk` endpoint that parses every request fully, for
//! measuring the ES sink's own cost (filled in by the Elasticsearch connector work).
