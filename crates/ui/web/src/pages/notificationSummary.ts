// Plain words and numbers for a notification's progress bar (pure, unit-tested).
import type { Notification, NotifyReport } from '../api/client';

/** Messages of the notification that are finished (sent, failed, refused, unconfirmed or cancelled). */
export function finished(n: Notification): number {
  const t = n.totals;
  return t.sent + t.failed + t.refused + t.unconfirmed + t.cancelled;
}

/** Whether the notification can still change. */
export function isRunning(n: Notification): boolean {
  return n.state === 'queued' || n.state === 'sending';
}

/** `4s`, `1m 05s`, `1h 02m`: a duration rounded up to the second. */
export function shortDuration(ms: number): string {
  const secs = Math.ceil(ms / 1000);
  if (secs < 60) return `${secs}s`;
  const mins = Math.floor(secs / 60);
  if (mins < 60) return `${mins}m ${String(secs % 60).padStart(2, '0')}s`;
  return `${Math.floor(mins / 60)}h ${String(mins % 60).padStart(2, '0')}m`;
}

/**
 * `sending · 120/300 sent · about 4s left`, `done · 300/300 sent`, `cancelled · 120/300 sent · 180 not sent`;
 * `· 2 recurring` when recurring tokens paid for some of the queued messages; a flow notification
 * still running its flow for the subscribers says `flow ran for 40/60` first, and `· 2 runs failed`.
 */
export function progressText(n: Notification): string {
  const t = n.totals;
  const parts: string[] = [n.state];
  const runs = n.runs;
  if (runs && isRunning(n) && (runs.expected == null || runs.done < runs.expected)) {
    parts.push(`flow ran for ${runs.done}/${runs.expected ?? '…'}`);
  }
  parts.push(`${t.sent}/${t.queued} sent`);
  if (t.recurring > 0) parts.push(`${t.recurring} recurring`);
  for (const [count, what] of [
    [t.failed, 'failed'],
    [t.refused, 'refused'],
    [t.unconfirmed, 'unconfirmed'],
    [t.cancelled, 'not sent'],
  ] as const) {
    if (count > 0) parts.push(`${count} ${what}`);
  }
  if (runs && runs.failed > 0) parts.push(`${runs.failed} ${runs.failed === 1 ? 'run' : 'runs'} failed`);
  if (isRunning(n) && n.eta_ms != null) parts.push(`about ${shortDuration(n.eta_ms)} left`);
  return parts.join(' · ');
}

/** `2 queued, 1 not due, 0 stopped, 0 expired`: the recurring counts of a notify answer; null when all are zero. */
export function recurringCounts(r: NotifyReport): string | null {
  const counts = [r.recurring_queued, r.recurring_not_due, r.recurring_stopped, r.recurring_expired];
  if (counts.every((c) => c === 0)) return null;
  return `${r.recurring_queued} queued, ${r.recurring_not_due} not due, ${r.recurring_stopped} stopped, ${r.recurring_expired} expired`;
}

/** The notify dialog's result: `Queued 3 · no token 0 · expired 0`, then `· recurring …` when non-zero. */
export function notifyResultText(r: NotifyReport): string {
  const recurring = recurringCounts(r);
  const base = `Queued ${r.queued} · no token ${r.no_token} · expired ${r.expired}`;
  return recurring ? `${base} · recurring ${recurring}` : base;
}

/** The toast after a notify: `Notified "Deals": 3 queued, 0 without a token, 0 expired`, then `; recurring: …` when non-zero. */
export function notifyToastText(topic: string, r: NotifyReport): string {
  const recurring = recurringCounts(r);
  const base = `Notified "${topic}": ${r.queued} queued, ${r.no_token} without a token, ${r.expired} expired`;
  return recurring ? `${base}; recurring: ${recurring}` : base;
}
