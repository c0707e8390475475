"""What a person watches while training: a live line on a terminal, one line per evaluation.

    step 120/1650 · epoch 0.07 · loss 2.134 · 5,321 chars/s · ETA 4m12s

When the output is not a terminal (a log file, a pipe), the live line is
left out and only the evaluation lines are written.
"""
import time


def format_duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    def __init__(self, out, total_steps, start_step=0, min_interval=0.1):
        self.out, self.total, self.start_step = out, total_steps, start_step
        self.live = hasattr(out, "isatty") and out.isatty()
        self.min_interval, self.t_start, self.t_last = min_interval, time.perf_counter(), 0.0
        self.width = 0

    def _eta(self, step):
        done = step - self.start_step
        if done <= 0:
            return "?"
        rate = done / (time.perf_counter() - self.t_start)
        return format_duration((self.total - step) / rate)

    def update(self, step, epoch, loss, chars_per_s):
        """Rewrite the live line (terminals only, at most every min_interval seconds)."""
        now = time.perf_counter()
        if not self.live or (now - self.t_last < self.min_interval and step < self.total):
            return
        self.t_last = now
        line = (f"step {step}/{self.total} · epoch {epoch:.2f} · loss {loss:.3f} · "
                f"{chars_per_s:,.0f} chars/s · ETA {self._eta(step)}")
        self.out.write("\r" + line.ljust(self.width))
        self.out.flush()
        self.width = len(line)

    def report(self, record):
        """A permanent line for one evaluation record (see Trainer._report)."""
        val = (f" · val {record['val_loss']:.4f} nats ({record['val_bpc']:.3f} bpc)"
               if record.get("val_loss") is not None else "")
        line = (f"step {record['step']}/{self.total} · epoch {record['epoch']:.2f} · "
                f"train {record['train_loss']:.4f}{val} · {record['chars_per_s']:,.0f} chars/s"
                f" · {format_duration(record['elapsed_s'])}")
        self.clear()
        self.out.write(line + "\n")
        self.out.flush()

    def clear(self):
        if self.live and self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.width = 0

    def close(self):
        self.clear()
        self.out.flush()
