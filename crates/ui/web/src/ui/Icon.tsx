// Inline SVG icons (no icon font, no emoji: they render the same on every machine).
const PATHS: Record<string, string> = {
  message: 'M3 4h14v9H8l-4 3v-3H3z',
  input: 'M2 6h16v8H2z M5 9h2 M9 9h2 M13 9h2 M6 12h8',
  condition: 'M10 2v5 M10 7l-6 6v5 M10 7l6 6v5',
  action: 'M10 6.5a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7z M10 1v3 M10 16v3 M1 10h3 M16 10h3 M3.6 3.6l2.1 2.1 M14.3 14.3l2.1 2.1 M3.6 16.4l2.1-2.1 M14.3 5.7l2.1-2.1',
  delay: 'M10 3a7 7 0 1 0 0 14a7 7 0 1 0 0-14z M10 6v4l3 2',
  bell: 'M5 14V9a5 5 0 0 1 10 0v5l2 2H3z M8 17a2 2 0 0 0 4 0',
  goto: 'M3 10h11 M10 5l5 5-5 5',
  start: 'M6 4l10 6-10 6z',
  keyword: 'M3 5h14v10H3z M6 8h8 M6 11h5',
  hand: 'M6 10V4.5a1.5 1.5 0 0 1 3 0V9 M9 8.5V3.5a1.5 1.5 0 0 1 3 0V9 M12 9V5a1.5 1.5 0 0 1 3 0v6a6 6 0 0 1-6 6H8l-4-5 1.5-1.2L6 12',
  link: 'M8 12l4-4 M7 9l-2 2a2.8 2.8 0 0 0 4 4l2-2 M13 11l2-2a2.8 2.8 0 0 0-4-4L9 7',
  trash: 'M4 6h12 M8 6V4h4v2 M6 6l1 11h6l1-11',
  image: 'M3 4h14v12H3z M3 13l4-4 4 4 2-2 4 4',
  file: 'M5 2h7l4 4v12H5z M12 2v4h4',
  clock: 'M10 3a7 7 0 1 0 0 14a7 7 0 1 0 0-14z M10 6v4h3',
};

export function Icon(props: { name: string; title?: string }) {
  return (
    <svg className="icon-svg" viewBox="0 0 20 20" width="16" height="16" aria-hidden={props.title ? undefined : true} role={props.title ? 'img' : undefined}>
      {props.title && <title>{props.title}</title>}
      <path d={PATHS[props.name] ?? PATHS.message} fill="none" stroke="currentColor" strokeWidth="1.6" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}
