// The notification progress bar's words and numbers.
import { describe, expect, it } from 'vitest';
import type { Notification, NotifyReport } from '../api/client';
import { finished, notifyResultText, notifyToastText, progressText, shortDuration } from './notificationSummary';

function notification(state: Notification['state'], totals: Partial<Notification['totals']>, eta_ms: number | null): Notification {
  return {
    id: 7,
    topic: 't',
    content: 'text',
    state,
    totals: { queued: 0, recurring: 0, pending: 0, sent: 0, failed: 0, refused: 0, unconfirmed: 0, no_token: 0, expired: 0, cancelled: 0, ...totals },
    created_ms: 0,
    started_ms: null,
    finished_ms: null,
    eta_ms,
    rate_per_sec: 50,
  };
}

describe('notification progress', () => {
  it('reads the state, sent over queued and the time left while running', () => {
    const n = notification('sending', { queued: 300, sent: 120, failed: 2, pending: 178 }, 3_560);
    expect(progressText(n)).toBe('sending · 120/300 sent · 2 failed · about 4s left');
    expect(finished(n)).toBe(122);
  });
  it('drops the time left once done or cancelled and names what was not sent', () => {
    expect(progressText(notification('done', { queued: 3, sent: 3 }, null))).toBe('done · 3/3 sent');
    const cancelled = notification('cancelled', { queued: 300, sent: 120, cancelled: 180 }, null);
    expect(progressText(cancelled)).toBe('cancelled · 120/300 sent · 180 not sent');
    expect(finished(cancelled)).toBe(300);
  });
  it('says how many of the queued messages recurring tokens paid for', () => {
    const n = notification('done', { queued: 5, recurring: 2, sent: 5 }, null);
    expect(progressText(n)).toBe('done · 5/5 sent · 2 recurring');
  });
  it('says how far a flow notification ran its flow while it runs, and failed runs always', () => {
    const running = { ...notification('queued', { queued: 40, pending: 40 }, 800), content: 'flow' as const, flow: 'f' };
    expect(progressText({ ...running, runs: { expected: 60, done: 40, failed: 0 } })).toBe(
      'queued · flow ran for 40/60 · 0/40 sent · about 1s left',
    );
    expect(progressText({ ...running, runs: { expected: null, done: 0, failed: 0 } })).toBe(
      'queued · flow ran for 0/… · 0/40 sent · about 1s left',
    );
    const done = { ...notification('done', { queued: 59, sent: 59 }, null), content: 'flow' as const, flow: 'f' };
    expect(progressText({ ...done, runs: { expected: 60, done: 60, failed: 1 } })).toBe('done · 59/59 sent · 1 run failed');
  });
  it('writes durations in seconds, minutes and hours', () => {
    expect(shortDuration(0)).toBe('0s');
    expect(shortDuration(59_001)).toBe('1m 00s');
    expect(shortDuration(65_000)).toBe('1m 05s');
    expect(shortDuration(3_720_000)).toBe('1h 02m');
  });
});

describe('notify answer', () => {
  const report = (counts: Partial<NotifyReport>): NotifyReport => ({
    id: 3,
    topic: 't',
    queued: 2,
    no_token: 1,
    expired: 0,
    recurring_queued: 0,
    recurring_not_due: 0,
    recurring_stopped: 0,
    recurring_expired: 0,
    ...counts,
  });
  it('reads the one-time counts alone when no recurring holder was counted', () => {
    expect(notifyResultText(report({}))).toBe('Queued 2 · no token 1 · expired 0');
    expect(notifyToastText('Deals', report({}))).toBe('Notified "Deals": 2 queued, 1 without a token, 0 expired');
  });
  it('adds the recurring counts when any is non-zero', () => {
    const r = report({ recurring_queued: 4, recurring_not_due: 1, recurring_stopped: 2 });
    expect(notifyResultText(r)).toBe('Queued 2 · no token 1 · expired 0 · recurring 4 queued, 1 not due, 2 stopped, 0 expired');
    expect(notifyToastText('Deals', report({ recurring_expired: 1 }))).toBe(
      'Notified "Deals": 2 queued, 1 without a token, 0 expired; recurring: 0 queued, 0 not due, 0 stopped, 1 expired',
    );
  });
});
