// Writes dist/source-hash.txt: the hash of the sources the bundle was built from, computed as
// botflow_ui::source_hash defines it (crates/ui/src/lib.rs), which a cargo test checks.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const ROOT_FILES = ['index.html', 'package.json', 'package-lock.json', 'tsconfig.json', 'vite.config.ts'];

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(relative(web, path).split(sep).join('/'));
  }
}

export function sourceHash() {
  const files = [...ROOT_FILES];
  walk(join(web, 'src'), files);
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const hash = createHash('sha256');
  for (const file of files) {
    const digest = createHash('sha256').update(readFileSync(join(web, file))).digest('hex');
    hash.update(`${file} ${digest}\n`);
  }
  return hash.digest('hex');
}

writeFileSync(join(web, '..', 'dist', 'source-hash.txt'), sourceHash() + '\n');
