// The accessible summary of a topic's ledger chart (pure, so Vitest can test it without a DOM).
import type { LedgerDay } from '../api/client';

/** Totals of opt-ins and sends over the days shown, e.g. "1 opt-in and 3 sends in the last 30 days". */
export function chartSummary(days: LedgerDay[]): string {
  const optIns = days.reduce((sum, d) => sum + d.opt_ins, 0);
  const sends = days.reduce((sum, d) => sum + d.sends, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(optIns, 'opt-in')} and ${plural(sends, 'send')} in the last ${days.length} days`;
}
