import { describe, expect, it } from 'vitest';
import { periodHours } from '../src/model/schedule.js';
import { buildModel } from '../src/model/model.js';
import { minimalConfig, parse, problems, render } from './helpers.js';

describe('the period of an OnCalendar expression (the longest gap between two runs)', () => {
  it.each([
    ['02:00', 24], ['daily', 24], ['hourly', 1], ['weekly', 168], ['Sun 04:30', 168], ['Sun *-*-* 05:30:00', 168],
    ['*:0/15', 0.25], ['*-*-* 02,14:00', 12], ['Mon..Fri 02:00', 72], ['Sat,Sun 03:00', 144], ['*-*-01 02:00', 744],
    ['something odd', 24],
  ])('%s -> %s h', (expr, hours) => {
    expect(periodHours(expr as string)).toBe(hours);
  });
});

describe('monitoring config', () => {
  it('is optional: defaults and thresholds derived from the schedules', () => {
    const m = buildModel(parse(minimalConfig()));
    const s = m.servers[0].monitoring;
    expect(s.textfileDir).toBe('/var/lib/prometheus/node-exporter');
    expect(s.checkSchedule).toBe('*:0/15');
    expect(s.notify).toEqual({});
    expect(s.thresholds).toMatchObject({
      basebackupWarnHours: 26, basebackupCritHours: 50, borgWarnHours: 26, borgCritHours: 50,
      externalWarnHours: 192, externalCritHours: 360, checkWarnHours: 192, checkCritHours: 360,
      drillWarnHours: 192, drillCritHours: 360, diskWarnFreeRatio: 0.15, diskCritFreeRatio: 0.05, checkerStaleHours: 1,
    });
    expect(m.devs[0].monitoring.thresholds).toMatchObject({
      pullWarnHours: 26, pullCritHours: 50, pulledBasebackup: [{ server: 'srv', warnHours: 50, critHours: 74 }],
      drillWarnHours: 192, drillCritHours: 360,
    });
  });

  it('follows the schedules and takes explicit thresholds over derived ones', () => {
    const cfg = minimalConfig();
    cfg.servers[0].schedule = '*-*-* 02,14:00';
    cfg.servers[0].monitoring = { thresholds: { borgCritHours: 100 } };
    const t = buildModel(parse(cfg)).servers[0].monitoring.thresholds;
    expect([t.basebackupWarnHours, t.basebackupCritHours, t.borgWarnHours, t.borgCritHours]).toEqual([14, 26, 14, 100]);
  });

  it('puts the same thresholds in pgb-status.sh and the Prometheus rules', () => {
    const cfg = minimalConfig();
    cfg.servers[0].monitoring = { thresholds: { basebackupWarnHours: 30, basebackupCritHours: 60 } };
    const files = render(cfg);
    const status = files.find((f) => f.path === 'srv/root/usr/local/sbin/pgb-status.sh')!.content;
    const rules = files.find((f) => f.path === 'srv/snippets/pgb-alerts.rules.yml')!.content;
    expect(status).toContain("readonly BASEBACKUP_WARN_S='108000'");
    expect(status).toContain("readonly BASEBACKUP_CRIT_S='216000'");
    expect(rules).toContain("expr: 'time() - pgb_basebackup_last_success_timestamp_seconds{host=\"srv\"} > 108000'");
    expect(rules).toContain("expr: 'time() - pgb_basebackup_last_success_timestamp_seconds{host=\"srv\"} > 216000'");
  });

  it('matches the host label in every selector and names the host in every alert', () => {
    const rules = render(minimalConfig()).filter((f) => f.path.endsWith('/snippets/pgb-alerts.rules.yml'));
    expect(rules.map((f) => f.path).sort()).toEqual(['dev/snippets/pgb-alerts.rules.yml', 'srv/snippets/pgb-alerts.rules.yml']);
    for (const f of rules) {
      const host = f.path.split('/')[0];
      const exprs = f.content.split('\n').filter((l) => l.trim().startsWith('expr:'));
      expect(exprs.length).toBeGreaterThan(5);
      for (const e of exprs)
        for (const sel of e.match(/pgb_[a-z_]+(\{[^}]*\})?/g) ?? []) expect(sel, e).toMatch(new RegExp(`\\{(.*,)?host="${host}"\\}$`));
      expect(f.content.match(/^ {10}host: (.*)$/gm)?.length).toBe(exprs.length);
      expect(f.content).not.toMatch(new RegExp(`^ {10}host: (?!${host}$)`, 'm'));
    }
  });

  it('makes the URL files secrets install.sh creates root-only, and names every job unit in OnFailure=', () => {
    const cfg = minimalConfig();
    cfg.servers[0].monitoring = { notify: { webhookUrlFile: '/etc/pgb-gen/ntfy.url', email: 'ops@example.org' } };
    const files = render(cfg);
    const install = files.find((f) => f.path === 'srv/install.sh')!.content;
    expect(install).toMatch(/readonly SECRET_PATHS=\(.*'\/etc\/pgb-gen\/ntfy.url'/);
    expect(install).toMatch(/readonly ENABLE_UNITS=\(.*'pgb-check.timer'/);
    for (const f of files.filter((x) => /\/systemd\/system\/.*\.service$/.test(x.path) && !x.path.includes('pgb-notify@')))
      expect(f.content, f.path).toContain('OnFailure=pgb-notify@%n.service');
    const notify = files.find((f) => f.path === 'srv/root/usr/local/sbin/pgb-notify.sh')!.content;
    expect(notify).toContain("readonly EMAIL_TO='ops@example.org'");
  });

  it('gives the dev machine a hardened weekly drill of its pulled copy, checked by its pgb-status.sh and its rules', () => {
    const cfg = minimalConfig();
    cfg.devs[0].monitoring = { thresholds: { drillWarnHours: 100, drillCritHours: 200 } };
    const files = render(cfg);
    const file = (p: string) => files.find((f) => f.path === p)!.content;
    const unit = file('dev/root/etc/systemd/system/pgb-restore-drill.service');
    expect(unit).toContain('ExecStart=/usr/local/sbin/pgb-restore.sh drill');
    expect(unit).toContain('RequiresMountsFor=/mnt/upload');
    expect(unit).toContain('After=pull-server-backups.service pull-server-wal.service');
    expect(unit).toContain('OnFailure=pgb-notify@%n.service');
    expect(unit).toContain('PrivateNetwork=yes');
    expect(unit).not.toContain('CacheDirectory=');
    expect(file('dev/root/etc/systemd/system/pgb-restore-drill.timer')).toContain('OnCalendar=Sun *-*-* 05:30:00');
    expect(file('dev/install.sh')).toMatch(/readonly ENABLE_UNITS=\(.*'pgb-restore-drill.timer'/);
    const status = file('dev/root/usr/local/sbin/pgb-status.sh');
    expect(status).toContain("readonly DRILL_WARN_S='360000'");
    expect(status).toContain("readonly DRILL_CRIT_S='720000'");
    expect(status).toContain('check_drill_of "${PULLED_SERVERS[i]}/${PULLED_SERVICES[i]}" service "${PULLED_SERVICES[i]}" server "${PULLED_SERVERS[i]}"');
    expect(file('dev/root/usr/local/sbin/pgb-restore.sh')).toContain("readonly DRILL_SERVER_LABEL='yes'");
    expect(file('srv/root/usr/local/sbin/pgb-restore.sh')).toContain("readonly DRILL_SERVER_LABEL=''");
    const rules = file('dev/snippets/pgb-alerts.rules.yml');
    expect(rules).toContain("expr: 'time() - pgb_drill_last_success_timestamp_seconds{host=\"dev\"} > 360000'");
    expect(rules).toContain("summary: 'The last restore drill of {{ $labels.service }} of {{ $labels.server }} failed'");
    // With a container service, the copies go where dockerd can bind them.
    cfg.servers[0].services[0].image = 'postgres:15';
    const withImage = render(cfg).find((f) => f.path === 'dev/root/etc/systemd/system/pgb-restore-drill.service')!.content;
    expect(withImage).toContain('Environment=TMPDIR=/var/cache/pgb-drill');
  });

  it('refuses a bad e-mail address and a warning threshold above its critical one', () => {
    const cfg = minimalConfig();
    cfg.servers[0].monitoring = { notify: { email: 'not an address' }, thresholds: { drillWarnHours: 400, diskWarnFreeRatio: 0.01 } };
    cfg.devs[0].monitoring = { thresholds: { pullWarnHours: 50, pullCritHours: 26, drillWarnHours: 400 }, textfileDir: 'relative' };
    expect(problems(cfg)).toEqual([
      'test.yaml:10:16 servers[0].monitoring.notify.email: expected an e-mail address like ops@example.org, found "not an address"',
      'test.yaml:12:25 servers[0].monitoring.thresholds.drillWarnHours: expected a value below drillCritHours (360), found 400',
      'test.yaml:13:28 servers[0].monitoring.thresholds.diskWarnFreeRatio: expected a value above diskCritFreeRatio (0.05), found 0.01',
      'test.yaml:20:24 devs[0].monitoring.thresholds.pullWarnHours: expected a value below pullCritHours (26), found 50',
      'test.yaml:22:25 devs[0].monitoring.thresholds.drillWarnHours: expected a value below drillCritHours (360), found 400',
      'test.yaml:23:20 devs[0].monitoring.textfileDir: expected an absolute path of the characters A-Z a-z 0-9 . _ / -, found "relative"',
    ]);
  });
});
