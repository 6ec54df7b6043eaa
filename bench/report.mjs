// bench/report.mjs RESULTS META: prints the medians, min-max, ratios and peak memory of a bench run.
// Rows of RESULTS: phase, candidate, run, metric ("t:<part>" ns, "rss:<part>" KiB, "bytes:<name>"), value.
// Printed, never asserted: the targets of issue 6 are shown with their measured ratio.
import { readFileSync } from 'node:fs';

const [resultsFile, metaFile] = process.argv.slice(2);
const rows = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [phase, cand, run, metric, value] = l.split('\t');
  return { phase, cand, run: Number(run), metric, value: Number(value) };
});
const meta = Object.fromEntries(readFileSync(metaFile, 'utf8').split('\n').filter(Boolean).map((l) => {
  const i = l.indexOf('\t');
  return [l.slice(0, i), l.slice(i + 1)];
}));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stats = (xs) => (xs.length ? { med: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length } : null);
const of = (phase, cand) => rows.filter((r) => r.phase === phase && r.cand === cand);

/** Per run, the sum of the timed parts (seconds). */
function time(phase, cand, part) {
  const byRun = new Map();
  for (const r of of(phase, cand)) {
    if (!r.metric.startsWith('t:') || (part && r.metric !== `t:${part}`)) continue;
    byRun.set(r.run, (byRun.get(r.run) ?? 0) + r.value / 1e9);
  }
  return stats([...byRun.values()]);
}
/** Per run, the CPU seconds of the timed parts: the step's processes and the PostgreSQL servers'. */
function cpu(phase, cand, part) {
  const byRun = new Map();
  for (const r of of(phase, cand)) {
    if (!r.metric.startsWith('cpu:') || (part && r.metric !== `cpu:${part}`)) continue;
    byRun.set(r.run, (byRun.get(r.run) ?? 0) + r.value / 1e3);
  }
  return stats([...byRun.values()]);
}
const parts = (phase, cand) => [...new Set(of(phase, cand).filter((r) => r.metric.startsWith('t:')).map((r) => r.metric.slice(2)))];
const rss = (phase, cand) => Math.max(0, ...of(phase, cand).filter((r) => r.metric.startsWith('rss:')).map((r) => r.value));
const bytes = (phase, cand, name) => stats(of(phase, cand).filter((r) => r.metric === `bytes:${name}`).map((r) => r.value));

const s = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtT = (st) => (st ? `${s(st.med)} s` : 'n/a');
const fmtR = (st) => (st ? (st.n > 1 ? `[${s(st.min)}-${s(st.max)}]` : '') : '');
const mb = (b) => (b / 1e6 >= 100 ? (b / 1e6).toFixed(0) : (b / 1e6).toFixed(1)) + ' MB';
const fmtB = (st) => (st ? mb(st.med) : 'n/a');
const fmtBR = (st) => (st && st.n > 1 ? `[${mb(st.min).replace(' MB', '')}-${mb(st.max)}]` : '');
const ratio = (a, b) => (a && b && b.med > 0 ? a.med / b.med : NaN);
const fx = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');
const mem = (kb) => (kb ? `${(kb / 1024).toFixed(0)} MB` : '');
const table = (header, lines) => {
  const all = [header, ...lines];
  const w = header.map((_, i) => Math.max(...all.map((l) => String(l[i] ?? '').length)));
  return all.map((l) => '  ' + l.map((c, i) => String(c ?? '').padEnd(w[i])).join('  ').trimEnd()).join('\n');
};

const labels = {
  tar: 'tar of the data dirs (no pg_wal) + fsync: copy limit',
  runbook: 'runbook: pg_basebackup one by one, borg create lz4',
  pgbackrest: 'pgBackRest full (lz4, aes-256-cbc, process-max 2)',
  'proto-overlap': 'prototype: per-service archive overlapping next backup',
  'proto-repos': 'prototype: per-service repositories, all services at once',
  'proto-repos-after': 'prototype: per-service repositories after all base backups',
  'proto-repos-create': 'prototype: the same, create only (prune, compact weekly)',
  'gen-default': 'generated, defaults',
  'gen-checkall': 'generated, reusedChecksums check (every file checksummed, the linked ones too)',
  'gen-p1': 'generated, parallelJobs 1',
  'gen-zstd': 'generated, compression zstd,3',
  'gen-buzhash': 'generated, chunkerParams default (buzhash)',
  'gen-enc-repokey': 'generated, encryption repokey (HMAC-SHA256)',
  'gen-enc-blake2': 'generated, encryption repokey-blake2',
  'gen-nofc': 'generated, defaults, files cache disabled',
  'gen-copy': 'generated, before issue 14: rawReuse copy, files cache ctime, no stablePath',
  'gen-ctime': 'generated, rawReuse link, files cache ctime, no stablePath',
  'gen-nostage': 'generated, rawReuse link, files cache mtime, no stablePath',
  'gen-r0': 'generated, defaults, rawDays 0 (retention deletes a backup every night)',
  'gen-r0-nostage': 'generated, rawDays 0, no stablePath',
  // the prototypes of the run of 2026-12-01 (bench/README.md), before the fields landed
  'gen-mtime': 'prototype: rawReuse link + files cache mtime (= gen-nostage)',
  'gen-stage': 'prototype: rawReuse link + mtime + stable stage (= the defaults now)',
  raw: 'raw artifacts still on disk (cp -a)',
};
const label = (c) => labels[c] ?? c;

const out = [];
const dataBytes = Number(meta.data_bytes);
const profileText = meta.profile === 'cold'
  ? `profile cold (a table written once + index, ~pgbench scale ${meta.scale}; hot set pgbench -s 1)`
  : `profile uniform (pgbench -i -s ${meta.scale})`;
out.push(`pgb-gen bench (${meta.mode}), ${profileText}: ${meta.clusters} clusters = ${mb(dataBytes)} of data dirs ` +
  `without pg_wal (${mb(Number(meta.data_bytes_with_wal))} with it); ` +
  `medians of ${meta.runs} run(s) [min-max]; work dir on ${meta.fs}, ${meta.cpus} CPUs; took ${meta.elapsed} s`);
out.push(`${meta.versions}`);
out.push(`generated defaults: ${meta.defaults}`);
out.push('Peak RSS is that of the largest single process of the step. Warm page cache.');

// 1. nightly
const limit = time('nightly', 'tar');
const runbook = time('nightly', 'runbook');
const nightlyCands = ['tar', 'runbook', 'pgbackrest', 'proto-overlap', 'proto-repos', 'proto-repos-after', 'proto-repos-create', 'gen-default', 'gen-checkall', 'gen-copy', 'gen-ctime', 'gen-nostage', 'gen-r0', 'gen-r0-nostage', 'gen-mtime', 'gen-stage', 'gen-p1', 'gen-zstd', 'gen-buzhash', 'gen-enc-repokey', 'gen-enc-blake2']
  .filter((c) => of('nightly', c).length);
// CPU floor: the CPU seconds of the night spread over every core, against the copy limit: no
// schedule of the same work on this machine can be faster.
const floor = (phase, c) => {
  const c_ = cpu(phase, c);
  return c_ ? { ...c_, med: c_.med / Number(meta.cpus) } : null;
};
const nightlyTable = (phase, runbookRef) => table(['candidate', 'median', 'min-max', 'x limit', 'x runbook', 'CPU', 'floor x limit', 'parts (median)', 'repo', 'peak RSS'],
  nightlyCands.filter((c) => c === 'tar' || of(phase, c).length).map((c) => {
    const t = c === 'tar' ? limit : time(phase, c);
    const ps = parts(phase, c);
    const cp = cpu(c === 'tar' ? 'nightly' : phase, c);
    return [label(c) + (phase === 'nightly2' && c === 'pgbackrest' ? ' -> incr' : ''), fmtT(t), fmtR(t), fx(ratio(t, limit)), fx(ratio(t, runbookRef)),
      cp ? `${s(cp.med)} s` : '', fx(ratio(floor(c === 'tar' ? 'nightly' : phase, c), limit)),
      ps.length > 1 ? ps.map((p) => `${p} ${fmtT(time(phase, c, p))} (CPU ${fmtT(cpu(phase, c, p))})`).join(', ') : '',
      bytes(phase, c, 'repo') ? fmtB(bytes(phase, c, 'repo')) : '', mem(rss(phase, c))];
  }));
out.push('', `CPU: user + system seconds of the step's processes and of the PostgreSQL servers' share; floor = CPU / ${meta.cpus} CPUs, the fastest any schedule of that work could be.`);
out.push('', '1. Nightly pipeline, first night (base backups of all services + Borg archive with prune and compact; fresh repo)');
out.push(nightlyTable('nightly', runbook));
out.push('', '1b. Nightly pipeline, the night after (new base backups; the repo holds night 1 and its raw backups are still on disk; no churn between)');
out.push(nightlyTable('nightly2', time('nightly2', 'runbook')));

// 2. day 2
const incr = bytes('day2', 'pgbackrest', 'growth');
const growthCands = ['gen-default', 'gen-ctime', 'gen-nostage', 'gen-mtime', 'gen-stage', 'gen-buzhash', 'gen-nofc', 'gen-enc-repokey', 'gen-enc-blake2', 'runbook', 'pgbackrest'].filter((c) => of('day2', c).length);
out.push('', `2. Day 2 after pgbench -t ${meta.churn} per database (same raw base backups for every Borg candidate; Borg archives all raw backups kept on disk)`);
out.push(`  base backups (generated, defaults): day 1 ${fmtT(time('day1', 'raw'))}, day 2 ${fmtT(time('day2', 'raw'))}; churn ${fmtT(time('churn', 'pgbench'))}`);
out.push(table(['candidate', 'day-2 growth', 'min-max', 'x pgBR incr', 'day-2 time', 'min-max', 'day-1 time', 'day-1 repo', 'peak RSS'],
  growthCands.map((c) => {
    const g = bytes('day2', c, 'growth');
    const t2 = time('day2', c);
    return [label(c) + (c === 'pgbackrest' ? ' (incr)' : ''), fmtB(g), fmtBR(g), fx(ratio(g, incr)), fmtT(t2), fmtR(t2),
      fmtT(time('day1', c)), fmtB(bytes('day1', c, 'repo')), mem(Math.max(rss('day1', c), rss('day2', c)))];
  })));
const walGrowth = bytes('day2', 'pgbackrest', 'wal-archive-growth');
if (walGrowth) out.push(`  pgBackRest's WAL archive grew ${fmtB(walGrowth)} more over the churn (not counted above; pgb-gen streams WAL separately).`);
const ver = (meta.versions.match(/pgBackRest (\d+)\.(\d+)/) ?? []).slice(1).map(Number);
if (ver.length && (ver[0] < 2 || (ver[0] === 2 && ver[1] < 46)))
  out.push(`  pgBackRest block incremental: n/a (needs pgBackRest >= 2.46, this is ${ver.join('.')}).`);

// 3. restore
const pgbrRestore = time('restore', 'pgbackrest');
// script:CAND[:N]: the generated pgb-restore.sh of CAND (restoreJobs N, else the config's) from Borg.
const restoreLabel = (c) => {
  if (c.startsWith('stage:')) return `bare borg extract of the stage path (no listing): ${label(c.slice(6))}`;
  if (!c.startsWith('script:')) return (c.startsWith('gen-') ? 'bare borg extract: ' : '') + label(c);
  const [, cand, jobs] = c.split(':');
  return `pgb-restore.sh --from primary: ${label(cand)}${jobs ? `, restoreJobs ${jobs}` : ''}`;
};
const restoreCands = [...new Set(rows.filter((r) => r.phase === 'restore').map((r) => r.cand))]
  .sort((a, b) => (time('restore', a).med - time('restore', b).med));
out.push('', '3. Restore of one service (svc0, day 2) until it accepts read-write connections (fastest first)');
out.push(table(['candidate', 'median', 'min-max', 'x pgBackRest', 'peak RSS'],
  restoreCands.map((c) => {
    const t = time('restore', c);
    return [restoreLabel(c), fmtT(t), fmtR(t), fx(ratio(t, pgbrRestore)), mem(rss('restore', c))];
  })));

// 4. build
const node0 = time('build', 'node-e-0');
const build = time('build', 'pgb-gen-build');
if (node0) {
  out.push('', '4. pgb-gen build of a 100-service config');
  out.push(table(['candidate', 'median', 'min-max', 'x node -e 0', 'peak RSS'], [
    ['node -e 0', fmtT(node0), fmtR(node0), fx(1), mem(rss('build', 'node-e-0'))],
    ['pgb-gen build (100 services)', fmtT(build), fmtR(build), fx(ratio(build, node0)), mem(rss('build', 'pgb-gen-build'))],
  ]));
}

// 5. raw disk and pull
const rawCands = ['gen-copy', 'gen-default'].filter((c) => of('raw1', c).length);
const raw1 = (c) => bytes('raw1', c, 'raw');
const raw3 = (c) => bytes('raw3', c, 'raw');
const pull2 = (c, f) => bytes('raw2', c, `pull${f}`);
if (rawCands.length) {
  out.push('', `5. Raw base backups on the backup disk over three nights (pgbench -t ${meta.churn} per database before nights 2 and 3), and the bytes rsync sends to pull night 2 (after night 1 was pulled)`);
  out.push(table(['candidate', 'night 1', '3 nights', 'x night 1', 'night-2 pull, rsync -a', 'x pgBR incr', 'with -H', 'x pgBR incr', 'pullBasis previous', 'x pgBR incr', 'backup night 1', 'night 2', 'night 3'],
    rawCands.map((c) => [label(c), fmtB(raw1(c)), fmtB(raw3(c)), fx(ratio(raw3(c), raw1(c))),
      fmtB(pull2(c, '-a')), fx(ratio(pull2(c, '-a'), incr)), fmtB(pull2(c, '-aH')), fx(ratio(pull2(c, '-aH'), incr)),
      fmtB(pull2(c, 'basis')), fx(ratio(pull2(c, 'basis'), incr)),
      fmtT(time('raw1', c)), fmtT(time('raw2', c)), fmtT(time('raw3', c))])));
  // The pullBasis previous pull of night 2 with rsync --compress: bytes on the wire and rsync's CPU.
  const pullCpu = (c, f) => stats(of('raw2', c).filter((r) => r.metric === `cpu:pull${f}`).map((r) => r.value / 1000));
  const variants = [...new Set(of('raw2', 'gen-default').map((r) => r.metric)
    .filter((m) => m.startsWith('bytes:pullbasis')).map((m) => m.slice('bytes:pull'.length)))];
  out.push('', 'Night-2 pull with pullBasis previous, per rsync --compress-choice: bytes sent, x pgBR incr, rsync CPU');
  out.push(table(['candidate', ...variants.flatMap((f) => [f, 'x pgBR incr', 'CPU'])],
    rawCands.map((c) => [label(c), ...variants.flatMap((f) => [fmtB(pull2(c, f)), fx(ratio(pull2(c, f), incr)), fmtT(pullCpu(c, f))])])));
}

// targets
const bestGrowth = ['gen-default', 'gen-buzhash', 'gen-enc-repokey', 'gen-enc-blake2']
  .filter((c) => bytes('day2', c, 'growth'))
  .sort((a, b) => bytes('day2', a, 'growth').med - bytes('day2', b, 'growth').med)[0];
const mark = (x, limit) => (Number.isFinite(x) ? (x <= limit ? 'met' : 'NOT met') : 'n/a');
const tgt = [];
for (const [phase, what] of [['nightly', 'first night'], ['nightly2', 'night after']]) {
  const r1 = ratio(time(phase, 'gen-default'), limit);
  tgt.push([`nightly pipeline, ${what} (defaults) / copy limit`, fx(r1), '<= 2.5x', mark(r1, 2.5)]);
  const fl = ratio(floor(phase, 'gen-default'), limit);
  tgt.push([`  its CPU floor (CPU s / ${meta.cpus} CPUs) / copy limit`, fx(fl), '<= 2.5x', mark(fl, 2.5)]);
  const bestNightly = nightlyCands.filter((c) => (c.startsWith('gen-') || c.startsWith('proto-')) && time(phase, c))
    .sort((a, b) => time(phase, a).med - time(phase, b).med)[0];
  if (bestNightly) {
    const r = ratio(time(phase, bestNightly), limit);
    tgt.push([`  fastest candidate (${bestNightly}) / copy limit`, fx(r), '<= 2.5x', mark(r, 2.5)]);
  }
}
const r2 = ratio(bytes('day2', 'gen-default', 'growth'), incr);
tgt.push(['day-2 growth (defaults) / pgBackRest incr', fx(r2), '<= 0.3x', mark(r2, 0.3)]);
if (bestGrowth) {
  const r = ratio(bytes('day2', bestGrowth, 'growth'), incr);
  const d1 = ratio(time('nightly', bestGrowth), runbook);
  tgt.push([`  smallest (${bestGrowth}) / pgBackRest incr`, fx(r), '<= 0.3x', mark(r, 0.3)]);
  tgt.push([`  its day-1 nightly time / runbook's`, fx(d1), '<= 1.0x', mark(d1, 1.0)]);
}
const scriptRestore = restoreCands.find((c) => c.startsWith('script:') && c.split(':').length === 2);
const r3 = ratio(time('restore', scriptRestore ?? 'gen-default'), pgbrRestore);
tgt.push([`restore from Borg (${scriptRestore ? 'pgb-restore.sh, defaults' : 'bare borg extract'}) / pgBackRest restore`, fx(r3), '<= 1.0x', mark(r3, 1.0)]);
const r3b = ratio(time('restore', 'raw'), pgbrRestore);
tgt.push(['  restore from raw artifacts / pgBackRest restore', fx(r3b), '<= 1.0x', mark(r3b, 1.0)]);
// Issue 15 retired the ratio to a bare node start: the build is a record, under 1 s.
const buildSeconds = build ? build.med : NaN;
if (build) tgt.push(['pgb-gen build (100 services), seconds', fmtT(build), '< 1 s', mark(buildSeconds, 1.0)]);
out.push('', 'Targets of issue 6 (printed, not asserted)');
out.push(table(['ratio', 'measured', 'target', ''], tgt));

// issue 14
const t14 = [];
const pgbrIncrTime = time('nightly2', 'pgbackrest');
for (const c of ['gen-default', 'gen-checkall', 'gen-copy', 'gen-ctime', 'gen-nostage', 'gen-r0', 'gen-r0-nostage', 'gen-mtime', 'gen-stage'].filter((x) => time('nightly2', x))) {
  const r = ratio(time('nightly2', c), pgbrIncrTime);
  t14.push([`night after, base backups + Borg (${c}) / pgBackRest incr`, fx(r), '<= 1.0x', mark(r, 1.0)]);
}
for (const c of ['gen-default', 'gen-ctime', 'gen-nostage', 'gen-mtime', 'gen-stage'].filter((x) => bytes('day2', x, 'growth'))) {
  const r = ratio(bytes('day2', c, 'growth'), incr);
  t14.push([`day-2 growth (${c}) / pgBackRest incr`, fx(r), '<= 0.3x', mark(r, 0.3)]);
}
for (const c of rawCands) {
  const r = ratio(raw3(c), raw1(c));
  t14.push([`raw disk, 3 nights / 1 night (${c})`, fx(r), '<= 1.5x', mark(r, 1.5)]);
}
for (const c of rawCands) {
  const label = { '-a': 'rsync -a', '-aH': 'rsync -aH', basis: 'pullBasis previous', 'basis-zstd': 'pullBasis previous + pullCompress zstd (the defaults)' };
  for (const f of ['-a', '-aH', 'basis', 'basis-zstd']) {
    const r = ratio(pull2(c, f), incr);
    t14.push([`pull of night 2, ${label[f]} (${c}) / pgBackRest incr`, fx(r), '<= 1.5x', mark(r, 1.5)]);
  }
}
for (const c of restoreCands.filter((x) => x.startsWith('script:') || x.startsWith('stage:'))) {
  const r = ratio(time('restore', c), pgbrRestore);
  t14.push([`restore from Borg (${c}) / pgBackRest restore`, fx(r), '<= 1.0x', mark(r, 1.0)]);
}
out.push('', 'Targets of issue 14 (printed, not asserted)');
out.push(table(['ratio', 'measured', 'target', ''], t14));
if (meta.mode === 'smoke') out.push('', 'Smoke run: tiny scale, one run; the numbers only prove that every step works.');
console.log(out.join('\n'));
