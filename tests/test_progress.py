import io

from lstm_scratch.progress import Progress, format_duration


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


RECORD = dict(step=10, epoch=0.5, train_loss=2.5, val_loss=2.25, val_bpc=3.246,
              chars_per_s=12345.6, elapsed_s=75)


def test_durations():
    assert [format_duration(s) for s in (5, 75, 3725)] == ["5s", "1m15s", "1h02m"]


def test_terminal_gets_a_live_line_and_evaluation_lines():
    out = FakeTerminal()
    p = Progress(out, total_steps=20, min_interval=0.0)
    p.update(10, 0.5, 2.5, 1000.0)
    assert out.getvalue().startswith("\rstep 10/20 · epoch 0.50 · loss 2.500 · 1,000 chars/s · ETA ")
    p.report(RECORD)
    p.close()
    # the live line is blanked out, then the evaluation line stays, and nothing follows it
    last = out.getvalue().split("\r")[-1]
    assert last == ("step 10/20 · epoch 0.50 · train 2.5000 · val 2.2500 nats (3.246 bpc)"
                    " · 12,346 chars/s · 1m15s\n")


def test_a_pipe_gets_only_evaluation_lines():
    out = io.StringIO()
    p = Progress(out, total_steps=20, min_interval=0.0)
    p.update(10, 0.5, 2.5, 1000.0)
    assert out.getvalue() == ""
    p.report(dict(RECORD, val_loss=None, val_bpc=None))
    assert out.getvalue() == "step 10/20 · epoch 0.50 · train 2.5000 · 12,346 chars/s · 1m15s\n"
