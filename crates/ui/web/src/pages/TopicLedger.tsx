// One topic's token ledger on the OTN Topics page: where its opt-ins stand and a small 30-day
// chart of opt-ins and sends (plain SVG).
import { useEffect, useState } from 'react';
import { api, must, type LedgerDay, type TopicLedger as Ledger } from '../api/client';
import { useServer } from '../data/server';
import { chartSummary } from './ledgerSummary';

const CHART_WIDTH = 150;
const CHART_HEIGHT = 32;

/** Fetches the ledger again whenever the topic's waiting count changes (an opt-in or a send). */
export function TopicLedger(props: { topicId: string; name: string; usable: number }) {
  const page = useServer((s) => s.page) ?? '';
  const [ledger, setLedger] = useState<Ledger | null>(null);
  useEffect(() => {
    if (!page) return;
    let current = true;
    must(api.GET('/api/pages/{page}/topics/{topic}/ledger', { params: { path: { page, topic: props.topicId } } }))
      .then((found) => current && setLedger(found))
      .catch(() => undefined);
    return () => {
      current = false;
    };
  }, [page, props.topicId, props.usable]);
  if (!ledger) return <span className="muted">…</span>;
  const counts: [string, string, number][] = [
    ['issued', 'Issued', ledger.issued],
    ['usable', 'Usable', ledger.usable],
    ['spent', 'Spent', ledger.spent],
    ['expired', 'Expired', ledger.expired],
    ['invalidated', 'Invalidated', ledger.invalidated],
    ['unconfirmed', 'Unconfirmed', ledger.delivered_unconfirmed],
  ];
  return (
    <div className="ledger">
      <dl className="ledger-counts" aria-label={`Token ledger of ${props.name}`}>
        {counts.map(([key, label, value]) => (
          <div key={key}>
            <dt title={key === 'unconfirmed' ? 'Token sends delivered without confirmation' : undefined}>{label}</dt>
            <dd data-testid={`ledger-${key}-${props.name}`}>{value}</dd>
          </div>
        ))}
      </dl>
      {ledger.recurring.issued > 0 && (
        <dl className="ledger-counts" aria-label={`Recurring tokens of ${props.name}`}>
          {(
            [
              ['active', 'Recurring active', ledger.recurring.active],
              ['stopped', 'Stopped', ledger.recurring.stopped],
              ['retired', 'Retired', ledger.recurring.retired],
              ['sends', 'Recurring sends', ledger.recurring.sends],
            ] as [string, string, number][]
          ).map(([key, label, value]) => (
            <div key={key}>
              <dt>{label}</dt>
              <dd data-testid={`ledger-recurring-${key}-${props.name}`}>{value}</dd>
            </div>
          ))}
        </dl>
      )}
      <LedgerChart days={ledger.days} name={props.name} />
    </div>
  );
}

/** Two bars per day, opt-ins and sends, scaled to the busiest day. */
function LedgerChart(props: { days: LedgerDay[]; name: string }) {
  const { days } = props;
  const peak = Math.max(1, ...days.map((d) => Math.max(d.opt_ins, d.sends)));
  const slot = CHART_WIDTH / Math.max(1, days.length);
  const bar = Math.max(1, slot / 2 - 0.5);
  const height = (n: number) => (n === 0 ? 0 : Math.max(1.5, (n / peak) * (CHART_HEIGHT - 2)));
  return (
    <svg
      className="ledger-chart"
      role="img"
      aria-label={`Opt-ins and sends of ${props.name}: ${chartSummary(days)}`}
      data-testid={`ledger-chart-${props.name}`}
      width={CHART_WIDTH}
      height={CHART_HEIGHT}
      viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
    >
      <line x1={0} x2={CHART_WIDTH} y1={CHART_HEIGHT - 0.5} y2={CHART_HEIGHT - 0.5} className="axis" />
      {days.map((d, i) => (
        <g key={d.date}>
          <title>{`${d.date}: ${d.opt_ins} opt-ins, ${d.sends} sends`}</title>
          <rect className="opt-ins" x={i * slot} y={CHART_HEIGHT - 1 - height(d.opt_ins)} width={bar} height={height(d.opt_ins)} />
          <rect className="sends" x={i * slot + bar} y={CHART_HEIGHT - 1 - height(d.sends)} width={bar} height={height(d.sends)} />
        </g>
      ))}
    </svg>
  );
}
