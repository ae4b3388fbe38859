// Package querystudy is the measured study behind docs/queries.md: small
// prototypes of the aggregate models that could answer the Stats API's
// filters × breakdowns (per-dimension and tuple hashes in Redis, fact rows
// appended in Redis, a scan of the Parquet archive, DuckDB over the same
// archive), with a seeded generator of a normal and a big site, and the
// benchmarks that produce the document's figures. Everything is in test
// files; the heavy benchmarks are skipped under -short. No production code
// depends on it.
package querystudy
