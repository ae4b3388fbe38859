// Reads an archive directory with DuckDB (@duckdb/node-api) and prints one
// JSON object of aggregates that duckdb_test.go compares with the input.
// Usage: node duckdb_check.mjs NODE_MODULES_DIR ARCHIVE_DIR
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, dir] = process.argv.slice(2);
const require = createRequire(path.join(modules, 'noop.js'));
const { DuckDBInstance } = require('@duckdb/node-api');

const inst = await DuckDBInstance.create(':memory:');
const c = await inst.connect();
const src = `read_parquet('${dir}/**/*.parquet', hive_partitioning = true)`;
const r = await c.runAndReadAll(`
  SELECT count(*)::BIGINT AS n,
         count(DISTINCT id)::BIGINT AS ids,
         sum(epoch_ms(ts))::VARCHAR AS sum_ts,
         count(uid)::BIGINT AS uids,
         count(props)::BIGINT AS props,
         count(*) FILTER (WHERE bot)::BIGINT AS bots,
         count(*) FILTER (WHERE strftime(rt, '%Y-%m-%d') <> CAST(dt AS VARCHAR) OR hour(rt) <> CAST(hr AS INTEGER))::BIGINT AS misplaced,
         sum(CAST(json_extract_string(props, '$.price') AS DOUBLE)) AS price_sum,
         any_value(typeof(ts)) AS ts_type
  FROM ${src}`);
console.log(JSON.stringify(r.getRowObjectsJson()[0]));
