/**
 * ISO 8601 text of a time in ms, remembered for the next call: a busy second asks for the
 * same millisecond many times, and `toISOString` is the costly part.
 */
export function isoCache(): (ms: number) => string {
  let lastMs = Number.NaN;
  let lastIso = '';
  return (ms) => {
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = new Date(ms).toISOString();
    }
    return lastIso;
  };
}
