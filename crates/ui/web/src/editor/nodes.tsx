// Canvas nodes: the Start node (triggers) and one card per block kind, with a port per edge
// field, problem badges, outlined messages and red ports.
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';
import { useServer } from '../data/server';
import { Icon } from '../ui/Icon';
import type { BlockProblems } from './diagnostics';
import { blockPorts, branchLabel, describeTrigger, kindOf, type Block, type Message, type Port, type Trigger, type TopicRef } from './flow';

export type BlockNodeData = {
  block: Block;
  problems?: BlockProblems;
  isStart: boolean;
};
export type StartNodeData = {
  triggers: Trigger[];
  problems: number;
};
export type BlockNode = Node<BlockNodeData, 'block'>;
export type StartNode = Node<StartNodeData, 'start'>;

function PortRow(props: { block: string; port: Port; red: boolean; children?: React.ReactNode }) {
  const { block, port, red } = props;
  return (
    <div className={`port-row${red ? ' port-row-error' : ''}`}>
      <span className="port-label">{props.children ?? port.label}</span>
      <Handle
        type="source"
        position={Position.Right}
        id={port.path}
        className={`port${red ? ' port-error' : ''}${port.target ? ' port-linked' : ''}`}
        data-testid={`port-${block}-${port.path}`}
        title={`${port.label}${port.target ? ` → ${port.target}` : ' (drag to connect)'}`}
      />
    </div>
  );
}

function useTopic(ref: TopicRef | undefined): { name: string; usable: number | null; known: boolean } {
  const topics = useServer((s) => s.topics);
  if (!ref) return { name: 'no topic', usable: null, known: false };
  if ('id' in ref) {
    const t = topics.find((x) => x.id === ref.id);
    return t ? { name: t.name, usable: t.usable_tokens, known: true } : { name: `unknown topic`, usable: null, known: false };
  }
  const t = topics.find((x) => x.name.trim().toLowerCase() === ref.name.trim().toLowerCase());
  return { name: ref.name || 'no topic', usable: t ? t.usable_tokens : null, known: Boolean(t) };
}

function OtnCard(props: { block: string; message: Message; index: number; ports: Port[]; red: Set<string> }) {
  const topic = useTopic(props.message.topic);
  const port = props.ports.find((p) => p.path === `messages/${props.index}/on_optin`);
  return (
    <>
      <div className="otn-kicker">
        {props.message.type === 'recurring_request'
          ? `Recurring Notification · ${typeof props.message.frequency === 'string' ? props.message.frequency : 'no frequency'}`
          : 'One-Time Notification'}
      </div>
      <div className="otn-title">{props.message.title || <i className="muted">no title</i>}</div>
      <div className="notify-pill">{props.message.type === 'recurring_request' ? 'Get messages' : 'Notify me'}</div>
      <div className="otn-topic" title="Topic and its waiting opt-ins">
        <Icon name="bell" /> {topic.name}
        {topic.usable !== null && <span className="count"> · {topic.usable} waiting</span>}
      </div>
      {port && <PortRow block={props.block} port={port} red={props.red.has(port.path)} />}
    </>
  );
}

function MessageCard(props: { block: string; message: Message; index: number; ports: Port[]; red: Set<string>; outlined: boolean }) {
  const { message: m, index } = props;
  const portFor = (path: string) => props.ports.find((p) => p.path === path);
  return (
    <div className={`msg msg-${m.type}${props.outlined ? ' msg-problem' : ''}`} data-testid={`msg-${props.block}-${index}`}>
      {m.type === 'text' && <div className="msg-text">{m.text || <i className="muted">empty text</i>}</div>}
      {(m.type === 'image' || m.type === 'file') && (
        <div className="msg-text">
          <Icon name={m.type === 'image' ? 'image' : 'file'} /> {m.url || <i className="muted">no URL</i>}
        </div>
      )}
      {(m.type === 'otn_request' || m.type === 'recurring_request') && <OtnCard {...props} />}
      {(m.buttons ?? []).map((b, bi) => {
        const port = portFor(`messages/${index}/buttons/${bi}/next`);
        return port ? (
          <PortRow key={bi} block={props.block} port={port} red={props.red.has(port.path)}>
            <span className="btn-chip">{b.title || '(no title)'}</span>
          </PortRow>
        ) : (
          <div key={bi} className="port-row">
            <span className="btn-chip">{b.title} ↗</span>
          </div>
        );
      })}
      {(m.quick_replies ?? []).map((q, qi) => {
        const port = portFor(`messages/${index}/quick_replies/${qi}/next`);
        return port ? (
          <PortRow key={qi} block={props.block} port={port} red={props.red.has(port.path)}>
            <span className="qr-chip">{q.title || '(no title)'}</span>
          </PortRow>
        ) : null;
      })}
    </div>
  );
}

function summary(block: Block): string {
  switch (block.type) {
    case 'wait_input':
      return `${block.prompt ? `"${block.prompt}" → ` : ''}{{${block.field ?? ''}}} (${block.input ?? 'text'})${block.timeout ? `, times out after ${block.timeout}` : ''}`;
    case 'delay':
      return `Wait ${block.duration ?? ''}`;
    case 'action':
      return (block.actions ?? [])
        .map((a) =>
          a.type === 'set_field'
            ? `set ${a.field} = ${a.value}`
            : a.type === 'clear_field'
              ? `clear ${a.field}`
              : a.type === 'add_tag'
                ? `+tag ${a.tag}`
                : a.type === 'remove_tag'
                  ? `−tag ${a.tag}`
                  : a.type === 'goto_flow'
                    ? `go to flow ${a.flow}`
                    : a.type,
        )
        .join(' · ');
    case 'condition':
      return (block.branches ?? []).map((b, i) => branchLabel(b, i)).join(' | ');
    default:
      return '';
  }
}

function OtnSendBody(props: { block: Block }) {
  const topic = useTopic(props.block.topic);
  return (
    <div className="node-summary">
      <Icon name="bell" /> {topic.name}
      {topic.usable !== null && <span className="count"> · sends to {topic.usable} now</span>}
      <div className="muted">{props.block.message?.text ?? props.block.message?.url ?? ''}</div>
    </div>
  );
}

export function BlockNodeView({ data, selected }: NodeProps<BlockNode>) {
  const { block, problems } = data;
  const kind = kindOf(block.type);
  const ports = blockPorts(block);
  const red = problems?.ports ?? new Set<string>();
  const errors = problems?.errors.length ?? 0;
  const warnings = problems?.warnings.length ?? 0;
  const classes = [
    'block-node',
    `kind-${block.type}`,
    selected ? 'selected' : '',
    errors ? 'has-error' : warnings ? 'has-warning' : '',
    problems?.unreachable ? 'dimmed' : '',
    problems?.loop ? 'in-loop' : '',
  ].join(' ');
  const gotoFlow = block.type === 'action' ? (block.actions ?? []).find((a) => a.type === 'goto_flow') : undefined;
  return (
    <div className={classes} data-testid={`block-${block.id}`}>
      <Handle type="target" position={Position.Left} id="in" className="port-in" />
      <div className="node-head">
        <span className="node-icon">
          <Icon name={gotoFlow ? 'goto' : kind.icon} />
        </span>
        <span className="node-kind">{gotoFlow ? 'Go to flow' : kind.label}</span>
        <span className="node-id">{block.id}</span>
        {problems?.outsideWindow && (
          <span className="badge badge-clock" title="May send outside the 24-hour window" data-testid={`clock-badge-${block.id}`}>
            <Icon name="clock" />
          </span>
        )}
        {(errors > 0 || warnings > 0) && (
          <span
            className={`badge ${errors ? 'badge-error' : 'badge-warning'}`}
            data-testid={`diag-badge-${block.id}`}
            title={[...(problems?.errors ?? []), ...(problems?.warnings ?? [])].map((d) => d.message).join('\n')}
          >
            {errors || warnings}
          </span>
        )}
      </div>
      <div className="node-body">
        {block.type === 'send_message' &&
          (block.messages ?? []).map((m, i) => (
            <MessageCard key={i} block={block.id} message={m} index={i} ports={ports} red={red} outlined={problems?.messages.has(i) ?? false} />
          ))}
        {block.type === 'otn_send' && <OtnSendBody block={block} />}
        {block.type !== 'send_message' && block.type !== 'otn_send' && <div className="node-summary">{summary(block)}</div>}
        {ports
          .filter((p) => p.message === undefined)
          .map((p) => (
            <PortRow key={p.path} block={block.id} port={p} red={red.has(p.path)} />
          ))}
      </div>
    </div>
  );
}

export function StartNodeView({ data, selected }: NodeProps<StartNode>) {
  return (
    <div className={`start-node${selected ? ' selected' : ''}${data.problems ? ' has-error' : ''}`} data-testid="block-start">
      <div className="node-head">
        <span className="node-icon">
          <Icon name="start" />
        </span>
        <span className="node-kind">Start</span>
        {data.problems > 0 && (
          <span className="badge badge-error" data-testid="diag-badge-start">
            {data.problems}
          </span>
        )}
      </div>
      <div className="node-body">
        {data.triggers.length === 0 && <div className="muted">No trigger: only reached by go to flow</div>}
        {data.triggers.map((t, i) => (
          <div key={i} className="trigger">
            <Icon name={t.type === 'keyword' ? 'keyword' : t.type === 'get_started' ? 'hand' : t.type === 'referral' ? 'link' : 'message'} />{' '}
            {describeTrigger(t)}
          </div>
        ))}
        <div className="port-row">
          <span className="port-label">Starts with</span>
          <Handle type="source" position={Position.Right} id="start" className="port" data-testid="port-start-start" />
        </div>
      </div>
    </div>
  );
}

export const nodeTypes = { block: BlockNodeView, start: StartNodeView };
