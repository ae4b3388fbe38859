// Runs the study's Q1-Q5 in DuckDB (@duckdb/node-api) over a Pulse archive
// directory and prints, per query, the first run's time in a fresh
// instance (cold) and the median of the next three (warm), as JSON.
// Usage: node queries.mjs NODE_MODULES_DIR ARCHIVE_DIR FROM_MS TO_MS
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, dir, fromArg, toArg] = process.argv.slice(2);
const require = createRequire(path.join(modules, 'noop.js'));
const { DuckDBInstance } = require('@duckdb/node-api');
const from = Number(fromArg), to = Number(toArg);
const day = 86400000;

// The receive-hour partitions that can hold [lo, hi) (event.TimeRule:
// 5 minutes of future, 24 hours of lateness), as a predicate on dt and hr
// that DuckDB prunes files with.
function parts(lo, hi) {
  const a = new Date(lo - 5 * 60000), b = new Date(hi + day);
  const d = (x) => x.toISOString().slice(0, 10);
  return `(dt > DATE '${d(a)}' OR (dt = DATE '${d(a)}' AND hr >= '${String(a.getUTCHours()).padStart(2, '0')}')) AND dt <= DATE '${d(b)}'`;
}

// applied is what the aggregator counts: the first row of each id, events
// not later than the allowed lateness, ts in the range.
function applied(lo, hi) {
  return `(SELECT * FROM read_parquet('${dir}/**/*.parquet', hive_partitioning = true)
     WHERE ${parts(lo, hi)} AND ts >= epoch_ms(${lo}) AND ts < epoch_ms(${hi})
       AND epoch_ms(rt) - epoch_ms(ts) <= ${day}
     QUALIFY row_number() OVER (PARTITION BY id ORDER BY rt) = 1)`;
}

const queries = {
  Q1: `SELECT count(DISTINCT uid) AS visitors, count(*) FILTER (WHERE type = 'pageview') AS pageviews FROM ${applied(from, to)}`,
  Q2: `SELECT path, count(*) AS pageviews FROM ${applied(to - 7 * day, to)}
       WHERE type = 'pageview' AND ref_host LIKE '%google%' GROUP BY path ORDER BY pageviews DESC`,
  Q3: `SELECT type, date_trunc('day', ts) AS day, count(*) AS events FROM ${applied(from, to)}
       WHERE json_extract_string(props, '$.plan') = 'pro' GROUP BY ALL ORDER BY day, type`,
  'Q4-visitors-5m': `SELECT count(DISTINCT uid) AS visitors FROM ${applied(to - 5 * 60000, to)}`,
  'Q4-pages-30m': `SELECT path, count(*) AS pageviews FROM ${applied(to - 30 * 60000, to)}
       WHERE type = 'pageview' GROUP BY path ORDER BY pageviews DESC`,
  Q5: `SELECT path, sum(CAST(json_extract_string(props, '$.price') AS DOUBLE)) AS price FROM ${applied(from, to)}
       WHERE props IS NOT NULL AND json_extract_string(props, '$.price') IS NOT NULL GROUP BY path ORDER BY price DESC`,
  'visits-7d': `SELECT count(*) AS visits FROM (
       SELECT CASE WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w > INTERVAL 30 MINUTE THEN 1 END AS starts
       FROM ${applied(to - 7 * day, to)} WINDOW w AS (PARTITION BY uid ORDER BY ts)) WHERE starts = 1`,
};

const out = [];
for (const [q, sql] of Object.entries(queries)) {
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  const times = [];
  let rows;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    const r = await c.runAndReadAll(sql);
    times.push(performance.now() - t0);
    rows = r.getRowObjectsJson();
  }
  const warm = times.slice(1).sort((a, b) => a - b)[1];
  out.push({ q, cold_ms: times[0], warm_ms: warm, rows: rows.length, first: JSON.stringify(rows[0]) });
}
console.log(JSON.stringify(out));
