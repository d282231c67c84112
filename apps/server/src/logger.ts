/** Structured JSON logs (pino), one line per event, on stdout. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** How long a log line may wait in the buffer before it is written. */
export const LOG_FLUSH_MS = 500;

export function createLogger(level: string): Logger {
  const base = { service: 'namecard-server' };
  if (level === 'silent') return pino({ level, base });
  // Buffered: lines are written 4 KB at a time, or LOG_FLUSH_MS after they were logged, instead
  // of one blocking write (a system call) per line, which cost a busy server about 5% of its CPU.
  // pino writes out what is left when the process exits; a process killed outright (SIGKILL)
  // loses the lines of its last half second.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  let pending = false;
  setInterval(() => {
    if (!pending) return;
    pending = false;
    try {
      destination.flush();
    } catch {
      // Ended (the process is exiting): nothing is left to write.
    }
  }, LOG_FLUSH_MS).unref();
  const hooks = {
    streamWrite: (line: string) => {
      pending = true;
      return line;
    },
  };
  return pino({ level, base, hooks }, destination);
}
