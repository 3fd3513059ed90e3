// `npm run build` runs this after tsc: see builtin-snapshot.ts.
import { writeBuiltinSnapshot } from './builtin-snapshot.js';

await writeBuiltinSnapshot();
