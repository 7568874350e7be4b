// A topic's notifications on the OTN Topics page: a live progress bar with Cancel for each one
// running, and how the latest finished one ended.
import { useState } from 'react';
import { api, messageOf, must, type Notification } from '../api/client';
import { useServer } from '../data/server';
import { toast } from '../ui/toasts';
import { finished, isRunning, progressText } from './notificationSummary';

export function TopicNotifications(props: { topicId: string; name: string }) {
  const all = useServer((s) => s.notifications);
  const mine = all.filter((n) => n.topic === props.topicId);
  const running = mine.filter(isRunning);
  const last = mine.find((n) => !isRunning(n));
  if (mine.length === 0) return <span className="muted">none yet</span>;
  return (
    <div className="notifications">
      {running.map((n) => (
        <NotificationBar key={n.id} notification={n} name={props.name} />
      ))}
      {last && running.length === 0 && (
        <div className="notification-last" data-testid={`last-notification-${props.name}`}>
          <NotificationBar notification={last} name={props.name} />
        </div>
      )}
    </div>
  );
}

function NotificationBar(props: { notification: Notification; name: string }) {
  const n = props.notification;
  const page = useServer((s) => s.page) ?? '';
  const refreshNotifications = useServer((s) => s.refreshNotifications);
  const refreshTopics = useServer((s) => s.refreshTopics);
  const [busy, setBusy] = useState(false);
  const total = Math.max(n.totals.queued, 1);
  const done = finished(n);
  const label = `Notification ${n.id} of ${props.name}`;
  const cancel = async () => {
    setBusy(true);
    try {
      const result = await must(
        api.POST('/api/pages/{page}/notifications/{id}/cancel', { params: { path: { page, id: n.id } } }),
      );
      toast(
        `Notification ${n.id} cancelled: ${result.removed} not sent, ${result.tokens_restored} opt-in(s) usable again`,
      );
      await Promise.all([refreshNotifications(), refreshTopics()]);
    } catch (err) {
      toast(messageOf(err), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className={`notification state-${n.state}`} data-testid={`notification-${n.id}`}>
      <div
        className="progress"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={n.totals.queued}
        aria-valuenow={done}
        aria-valuetext={progressText(n)}
      >
        <div className="progress-sent" style={{ width: `${(100 * n.totals.sent) / total}%` }} />
        <div className="progress-other" style={{ width: `${(100 * (done - n.totals.sent)) / total}%` }} />
      </div>
      <div className="notification-line">
        <span className="muted" data-testid={`notification-text-${n.id}`}>
          {progressText(n)}
        </span>
        {isRunning(n) && (
          <button type="button" className="small danger" disabled={busy} aria-label={`Cancel notification ${n.id}`} onClick={() => void cancel()}>
            Cancel
          </button>
        )}
      </div>
    </div>
  );
}
