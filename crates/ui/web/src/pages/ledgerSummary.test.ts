// The ledger chart's accessible summary.
import { describe, expect, it } from 'vitest';
import { chartSummary } from './ledgerSummary';

describe('chartSummary', () => {
  it('totals opt-ins and sends over the days with singular and plural', () => {
    const days = [
      { date: '2026-11-29', opt_ins: 0, sends: 2, recurring_opt_ins: 0, recurring_sends: 0 },
      { date: '2026-11-30', opt_ins: 1, sends: 1, recurring_opt_ins: 0, recurring_sends: 0 },
    ];
    expect(chartSummary(days)).toBe('1 opt-in and 3 sends in the last 2 days');
    expect(chartSummary([])).toBe('0 opt-ins and 0 sends in the last 0 days');
  });
});
