// The Topic combobox of OTN requests and OTN Send blocks: searches the Page's topics (with their
// waiting counts) and ends with Create topic "…", which creates the topic at once and uses its id.
import { useId, useState } from 'react';
import { messageOf } from '../api/client';
import { useServer } from '../data/server';
import { toast } from '../ui/toasts';
import type { TopicRef } from './flow';

export function TopicPicker(props: { value: TopicRef | undefined; onChange(ref: TopicRef): void; pointer: string }) {
  const topics = useServer((s) => s.topics);
  const createTopic = useServer((s) => s.createTopic);
  const current = props.value;
  const currentName =
    current && 'id' in current ? (topics.find((t) => t.id === current.id)?.name ?? `unknown topic ${current.id}`) : (current?.name ?? '');
  const [query, setQuery] = useState<string | null>(null);
  const [active, setActive] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const listId = useId();
  const open = query !== null;
  const text = query ?? '';
  const needle = text.trim().toLowerCase();
  const matches = topics.filter((t) => t.name.toLowerCase().includes(needle));
  const exact = topics.some((t) => t.name.trim().toLowerCase() === needle);
  const options: ({ kind: 'topic'; id: string; name: string; usable: number } | { kind: 'create'; name: string })[] = [
    ...matches.map((t) => ({ kind: 'topic' as const, id: t.id, name: t.name, usable: t.usable_tokens })),
    ...(needle && !exact ? [{ kind: 'create' as const, name: text.trim() }] : []),
  ];
  const choose = async (index: number) => {
    const option = options[index];
    if (!option) return;
    if (option.kind === 'topic') {
      props.onChange({ id: option.id });
      setQuery(null);
      return;
    }
    try {
      const topic = await createTopic(option.name);
      props.onChange({ id: topic.id });
      toast(`Topic "${topic.name}" created`);
      setQuery(null);
      setError(null);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <div className="combo">
      <input
        role="combobox"
        aria-label="Topic"
        aria-expanded={open}
        aria-controls={listId}
        aria-autocomplete="list"
        data-pointer={props.pointer}
        placeholder="Search or create a topic"
        value={open ? text : currentName}
        onFocus={() => setQuery('')}
        onChange={(e) => {
          setQuery(e.target.value);
          setActive(0);
          setError(null);
        }}
        onBlur={() => window.setTimeout(() => setQuery(null), 150)}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown') setActive((a) => Math.min(a + 1, options.length - 1));
          else if (e.key === 'ArrowUp') setActive((a) => Math.max(a - 1, 0));
          else if (e.key === 'Enter') {
            e.preventDefault();
            void choose(active);
          } else if (e.key === 'Escape') setQuery(null);
        }}
      />
      {open && options.length > 0 && (
        <ul className="listbox" role="listbox" id={listId}>
          {options.map((o, i) => (
            <li
              key={o.kind === 'topic' ? o.id : '__create'}
              role="option"
              aria-selected={i === active}
              onMouseDown={(e) => {
                e.preventDefault();
                void choose(i);
              }}
            >
              {o.kind === 'topic' ? (
                <>
                  {o.name} <span className="count">{o.usable} waiting</span>
                </>
              ) : (
                <>Create topic "{o.name}"</>
              )}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
