// Small field components of the side panel: a text field with Messenger's live character count.
export function Counted(props: {
  label: string;
  value: string;
  max: number;
  pointer: string;
  multiline?: boolean;
  onChange(value: string): void;
}) {
  const length = [...props.value].length;
  const over = length > props.max;
  const common = {
    'aria-label': props.label,
    'data-pointer': props.pointer,
    'aria-invalid': over ? true : undefined,
    value: props.value,
  };
  return (
    <label className="field">
      <span>
        {props.label}
        <span className={`counter${over ? ' over' : ''}`}>
          {length}/{props.max}
        </span>
      </span>
      {props.multiline ? (
        <textarea {...common} rows={3} onChange={(e) => props.onChange(e.target.value)} />
      ) : (
        <input {...common} onChange={(e) => props.onChange(e.target.value)} />
      )}
    </label>
  );
}

export function Plain(props: { label: string; value: string; pointer: string; onChange(value: string): void; placeholder?: string }) {
  return (
    <label className="field">
      <span>{props.label}</span>
      <input aria-label={props.label} data-pointer={props.pointer} value={props.value} placeholder={props.placeholder} onChange={(e) => props.onChange(e.target.value)} />
    </label>
  );
}
