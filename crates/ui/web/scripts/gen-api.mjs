// Generates src/api/schema.d.ts from the server's OpenAPI document (one input path, below).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The OpenAPI document the UI's API types come from. */
const OPENAPI_INPUT = '../../../schemas/openapi.json';

const web = fileURLToPath(new URL('..', import.meta.url));
execFileSync('npx', ['openapi-typescript', OPENAPI_INPUT, '-o', 'src/api/schema.d.ts'], { cwd: web, stdio: 'inherit' });
