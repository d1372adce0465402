// Progress of an upload: bytes sent of the file's size, as a cli-progress bar on a terminal
// (stderr), or one line every 5 s otherwise, so a long upload in a log shows it is alive.
import { Transform } from 'node:stream';
import cliProgress from 'cli-progress';

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

/** A pass-through that counts bytes and shows them; `done()` ends the display. */
export function uploadProgress(label: string, size: number, stream: NodeJS.WriteStream = process.stderr): { counter: Transform; done: () => void } {
  let sent = 0;
  const tty = Boolean(stream.isTTY);
  const bar = tty
    ? new cliProgress.SingleBar(
        { stream, format: `${label} {bar} {percentage}% {sentMiB}/{sizeMiB} MiB`, hideCursor: true, gracefulExit: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(Math.max(1, size), 0, { sentMiB: '0.0', sizeMiB: mib(size) });
  let lastLine = Date.now();
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      if (bar) bar.update(sent, { sentMiB: mib(sent), sizeMiB: mib(size) });
      else if (Date.now() - lastLine > 5000) {
        stream.write(`${label}: ${mib(sent)}/${mib(size)} MiB\n`);
        lastLine = Date.now();
      }
      cb(null, chunk);
    },
  });
  return {
    counter,
    done: () => {
      bar?.stop();
      if (!bar) stream.write(`${label}: ${mib(sent)} MiB sent\n`);
    },
  };
}
