// The longest gap between two runs of a systemd OnCalendar expression, in hours: the period the
// monitoring thresholds are derived from. Pure. An expression this reader does not follow counts
// as daily (thresholds in the config override every derived value).

const SHORTHAND: Record<string, number> = {
  minutely: 1 / 60, hourly: 1, daily: 24, weekly: 168, monthly: 744,
  quarterly: 2232, semiannually: 4464, yearly: 8784, annually: 8784,
};
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_MIN = 24 * 60;
const WEEK_MIN = 7 * DAY_MIN;

/** The values of one calendar field (`*`, `a`, `a,b`, `a..b`, `a/step`, `*\/step`) within [0, max). */
function fieldValues(field: string, max: number): number[] | undefined {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+)(?:\.\.(\d+))?(?:\/(\d+))?$/.exec(part);
    if (!m) return undefined;
    const start = m[1] === '*' ? 0 : Number(m[1]);
    const end = m[2] !== undefined ? Number(m[2]) : m[1] === '*' || m[3] !== undefined ? max - 1 : start;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (step < 1 || start >= max || end >= max) return undefined;
    for (let v = start; v <= end; v += step) out.add(v);
  }
  return [...out];
}

function weekdaySet(token: string): number[] | undefined {
  const out = new Set<number>();
  for (const part of token.toLowerCase().split(',')) {
    const [a, b] = part.split('..').map((d) => WEEKDAYS.indexOf(d.slice(0, 3)));
    if (a < 0 || (b !== undefined && b < 0)) return undefined;
    for (let d = a; ; d = (d + 1) % 7) {
      out.add(d);
      if (b === undefined || d === b) break;
    }
  }
  return [...out];
}

export function periodHours(onCalendar: string): number {
  const expr = onCalendar.trim().toLowerCase();
  if (SHORTHAND[expr] !== undefined) return SHORTHAND[expr];
  let days: number[] = [0, 1, 2, 3, 4, 5, 6];
  let time = '00:00:00';
  for (const token of expr.split(/\s+/)) {
    if (/^[a-z]/.test(token)) {
      const set = weekdaySet(token);
      if (!set) return 24;
      days = set;
    } else if (token.includes(':')) {
      time = token;
    } else if (token.includes('-')) {
      // A fixed day of the month (or a fixed month) makes it monthly at best.
      const [, , day] = token.split('-');
      if (!/^\*$/.test(token.split('-')[1] ?? '*') || (day !== undefined && day !== '*')) return SHORTHAND.monthly;
    } else {
      return 24;
    }
  }
  const [h, m = '0'] = time.split(':');
  const hoursOf = fieldValues(h, 24);
  const minutesOf = fieldValues(m, 60);
  if (!hoursOf || !minutesOf || !hoursOf.length || !minutesOf.length) return 24;
  const fires = days
    .flatMap((d) => hoursOf.flatMap((hh) => minutesOf.map((mm) => d * DAY_MIN + hh * 60 + mm)))
    .sort((a, b) => a - b);
  let gap = 0;
  fires.forEach((t, i) => {
    const next = i + 1 < fires.length ? fires[i + 1] : fires[0] + WEEK_MIN;
    gap = Math.max(gap, next - t);
  });
  return gap / 60;
}
