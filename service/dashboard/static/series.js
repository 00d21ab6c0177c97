// The in-browser history of /v1/stats and /v1/overview polls: CTR over time, events per second.
const MAX_POINTS = 720;
const RATE_WINDOW_MS = 10000;

export class Series {
  constructor() {
    this.points = [];
  }

  // Record one poll; t is the browser's clock in ms.
  record(t, stats, overview) {
    const events = overview.events.impressions + overview.events.clicks + overview.events.conversions;
    const policies = {};
    for (const [name, p] of Object.entries(stats.policies)) {
      policies[name] = { y: p.ctr, lo: p.ctr_ci95 ? p.ctr_ci95[0] : null, hi: p.ctr_ci95 ? p.ctr_ci95[1] : null };
    }
    this.points.push({ t, events, policies });
    if (this.points.length > MAX_POINTS) this.points.shift();
  }

  // Events per second over the last RATE_WINDOW_MS of polls (at least the last two); null
  // until there are two. A window, not the last step, so one slow refresh does not read as 0.
  eventsPerSecond() {
    const n = this.points.length;
    if (n < 2) return null;
    const b = this.points[n - 1];
    let i = n - 2;
    while (i > 0 && b.t - this.points[i - 1].t <= RATE_WINDOW_MS) i -= 1;
    const a = this.points[i];
    // Discounted totals can shrink; a rate below zero would mean nothing.
    return Math.max(b.events - a.events, 0) / ((b.t - a.t) / 1000);
  }

  // One {name, points} per policy seen in any poll.
  ctrSeries() {
    const names = [...new Set(this.points.flatMap((p) => Object.keys(p.policies)))];
    return names.map((name) => ({
      name,
      points: this.points.filter((p) => p.policies[name]).map((p) => ({ t: p.t, ...p.policies[name] })),
    }));
  }
}
