#!/usr/bin/python3
"""nabla's TensorBoard event files, read back by TensorBoard's own code.

1. The committed reference file (tests/reference/events.out.tfevents.ref,
   which tests/test_tfevents.c has nabla reproduce byte for byte) holds the
   scalars of tests/reference/tfevents.py.
2. `nabla train --tensorboard` with validation and --diagnose: every scalar
   TensorBoard reads matches what nabla wrote to its CSV files, in count and
   value (--log: the epoch metrics; --diagnose-log: the per-layer figures);
   the per-step losses average to each epoch's training loss (equal batches),
   and the per-step learning rate is its epoch's.
3. --resume continues in a second file of the same directory, which
   TensorBoard merges into one run with every epoch once.
4. A run killed with SIGKILL leaves a file whose records are all whole.

Records are read with TensorBoard's record reader, which checks both
CRC-32Cs of every record and fails on a truncated one, and parsed with its
Event message; the run directories are also read with tbparse (TensorBoard's
EventAccumulator), as TensorBoard shows them.

Needs the `tensorboard` and `tbparse` packages: when they are missing, the
interpreter $NB_TB_PYTHON, or else that of BUILD_DIR/venv-tb (made by `make
tensorboard-check`), is used if present; otherwise the script prints
"skipped: ..." and exits 0.

Usage: tensorboard_check.py BUILD_DIR
"""
import csv
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from pycheck import BUILD, NABLA, ROOT as SOURCE, check, finish, skip  # noqa: E402


try:
    import numpy as np
    from tbparse import SummaryReader
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2
except ImportError as e:
    venv = os.environ.get("NB_TB_PYTHON") or os.path.join(BUILD, "venv-tb", "bin", "python")
    if os.access(venv, os.X_OK) and not os.environ.get("NB_TB_REEXEC"):
        os.environ["NB_TB_REEXEC"] = "1"  # once: that interpreter may lack them too
        os.execv(venv, [venv, os.path.abspath(__file__)] + sys.argv[1:])
    skip(f"{e.name} is not installed (make tensorboard-check installs tensorboard and tbparse)")

sys.path.insert(0, os.path.join(SOURCE, "tests", "reference"))
import tfevents as reference  # noqa: E402



def events(path):
    """Every Event of one file, through TensorBoard's record reader (both CRCs
    checked; a bad or truncated record raises)."""
    return [event_pb2.Event.FromString(r) for r in event_file_loader._make_tf_record_iterator(path)]


def scalars_of(path):
    """(tag, step, value, wall_time) of every scalar of one file."""
    out, kinds = [], set()
    for ev in events(path):
        if ev.WhichOneof("what") == "summary":
            for v in ev.summary.value:
                kinds.add(v.WhichOneof("value"))
                out.append((v.tag, ev.step, v.simple_value, ev.wall_time))
    check(kinds <= {"simple_value"}, f"{path}: values {kinds}, expected simple_value")
    return out


def f32(x):
    return float(np.float32(x))


def close(a, text):
    """a (a float32) is the CSV's number `text`: equal as float32 up to its
    last bit, or up to the CSV's rounding (9 digits, accuracies 6 decimals)."""
    b = float(text)
    tol = 2e-7 * abs(b) + 1e-30
    if "." in text and "e" not in text.lower():
        tol += 0.5 * 10.0 ** -len(text.split(".")[1])
    return abs(a - b) <= tol


def check_reference():
    path = os.path.join(SOURCE, "tests", "reference", "events.out.tfevents.ref")
    evs = events(path)
    check(evs and evs[0].file_version == "brain.Event:2", "reference: first record brain.Event:2")
    check(evs and evs[0].wall_time == reference.VERSION_WALL_TIME, "reference: version wall_time")
    got = scalars_of(path)
    want = [(t, s, f32(v), w) for t, s, v, w in reference.SCALARS]
    check(got == want, f"reference scalars: {got} != {want}")


def run(args, **kw):
    return subprocess.run([NABLA, "train"] + args, capture_output=True, text=True, **kw)


def write_data(work, n):
    """3 classes of 4 features around different centres (a fixed LCG)."""
    path = os.path.join(work, f"train{n}.csv")
    s = 12345
    with open(path, "w") as f:
        f.write("a,b,c,d,label\n")
        for i in range(n):
            row = []
            for j in range(4):
                s = (s * 1103515245 + 12345) % 2147483648
                row.append(f"{(i % 3) * (j + 1) + (s / 2147483648 - 0.5) * 1.5:.4f}")
            f.write(",".join(row) + f",{i % 3}\n")
    return path


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def by_tag(scalars):
    out = {}
    for tag, step, value, _ in scalars:
        out.setdefault(tag, []).append((step, value))
    return out


EPOCH_TAGS = {"epoch/train_loss": "train_loss", "epoch/train_acc": "train_acc", "epoch/lr": "lr",
              "epoch/val_loss": "val_loss", "epoch/val_acc": "val_acc"}
DIAG_FIGURES = ["mean", "std", "dead", "saturated", "grad_norm", "update_ratio"]


def check_epochs(tags, log, what):
    for tag, col in EPOCH_TAGS.items():
        want = [(int(r["epoch"]), r[col]) for r in log if r[col] != ""]
        got = tags.get(tag, [])
        check(len(got) == len(want), f"{what}: {tag}: {len(got)} values, --log has {len(want)}")
        check(all(gs == ws and close(gv, wv) for (gs, gv), (ws, wv) in zip(got, want)),
              f"{what}: {tag} {got} != --log's {want}")


def check_steps(tags, log, per_epoch, what):
    steps = int(log[-1]["step"])
    for tag in ("train/loss", "train/lr"):
        got = [s for s, _ in tags.get(tag, [])]
        check(got == list(range(1, steps + 1)), f"{what}: {tag} at steps 1..{steps}: {got}")
    loss, lr = dict(tags.get("train/loss", [])), dict(tags.get("train/lr", []))
    for r in log:
        e = int(r["epoch"])
        batch = [loss.get(s, float("nan")) for s in range((e - 1) * per_epoch + 1, e * per_epoch + 1)]
        mean = sum(batch) / per_epoch
        check(abs(mean - float(r["train_loss"])) <= 1e-6 * abs(float(r["train_loss"])),
              f"{what}: epoch {e}: mean of train/loss {mean} != --log's {r['train_loss']}")
        check(all(close(lr.get(s, -1), r["lr"])
                  for s in range((e - 1) * per_epoch + 1, e * per_epoch + 1)),
              f"{what}: epoch {e}: train/lr differs from --log's {r['lr']}")


def check_diagnosis(tags, diag, what):
    want = {}
    for r in diag:
        for fig in DIAG_FIGURES:
            if r[fig] != "":
                want.setdefault(f"diagnose/{r['layer']}/{fig}", []).append((int(r["step"]), r[fig]))
    got = {t: v for t, v in tags.items() if t.startswith("diagnose/")}
    check(sorted(got) == sorted(want), f"{what}: diagnose tags {sorted(got)} != {sorted(want)}")
    n = sum(len(v) for v in want.values())
    check(n > 0 and sum(len(v) for v in got.values()) == n, f"{what}: {n} diagnose values")
    bad = [t for t in want if t in got and not (len(got[t]) == len(want[t]) and all(
        gs == ws and close(gv, wv) for (gs, gv), (ws, wv) in zip(got[t], want[t])))]
    check(not bad, f"{what}: diagnose values differ from --diagnose-log: {bad[:5]}")


def check_tbparse(logdir, files_scalars, what):
    """tbparse reads the directory as one run: the scalars of its files."""
    df = SummaryReader(logdir).scalars
    got = sorted(zip(df["tag"], df["step"].astype(int), df["value"].astype(float)))
    want = sorted((t, s, v) for sc in files_scalars for t, s, v, _ in sc)
    check(got == want, f"{what}: tbparse reads {len(got)} scalars, the files hold {len(want)}")


def check_run(work, data):
    """Validation, --diagnose, a schedule: every scalar against the CSVs."""
    logdir = os.path.join(work, "runs", "a")
    p = run([os.path.join(work, "m.nn"), "--data", f"csv:{data}", "--epochs", "3", "--batch", "32",
             "--val-split", "0.2", "--schedule", "cosine", "--quiet", "--diagnose",
             "--diagnose-log", os.path.join(work, "diag.csv"), "--log", os.path.join(work, "log.csv"),
             "--tensorboard", logdir])
    check(p.returncode == 0, f"nabla train --tensorboard exits 0: {p.stderr}")
    files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
    check(len(files) == 1, f"one event file in {logdir}: {files}")
    if len(files) != 1:
        return
    check(os.path.basename(files[0]).startswith("events.out.tfevents.") and
          os.path.basename(files[0]).split(".")[3].isdigit(), f"file name {files[0]}")
    sc = scalars_of(files[0])
    tags = by_tag(sc)
    log = read_csv(os.path.join(work, "log.csv"))
    check_epochs(tags, log, "run")
    check(len(tags.get("epoch/val_acc", [])) == 3, "run: validation metrics written")
    check_steps(tags, log, 8, "run")  # 256 training samples, batches of 32
    check_diagnosis(tags, read_csv(os.path.join(work, "diag.csv")), "run")
    known = set(EPOCH_TAGS) | {"train/loss", "train/lr"}
    check(all(t in known or t.startswith("diagnose/") for t in tags), f"run: tags {sorted(tags)}")
    check_tbparse(logdir, [sc], "run")


def check_resume(work, data):
    logdir = os.path.join(work, "runs", "b")
    common = [os.path.join(work, "m.nn"), "--data", f"csv:{data}", "--batch", "32", "--quiet",
              "--out", os.path.join(work, "b.safetensors"), "--log", os.path.join(work, "b.csv"),
              "--tensorboard", logdir]
    p = run(common + ["--epochs", "2"])
    check(p.returncode == 0, f"first run exits 0: {p.stderr}")
    time.sleep(1.1)  # another second: another file name, not a suffix
    p = run(common + ["--epochs", "4", "--resume", os.path.join(work, "b.safetensors.ckpt")])
    check(p.returncode == 0, f"resumed run exits 0: {p.stderr}")
    files = sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))
    check(len(files) == 2, f"--resume: a second event file in {logdir}: {files}")
    if len(files) != 2:
        return
    first, second = (by_tag(scalars_of(f)) for f in files)
    check([s for s, _ in first.get("epoch/train_loss", [])] == [1, 2], "first file: epochs 1, 2")
    check([s for s, _ in second.get("epoch/train_loss", [])] == [3, 4], "second file: epochs 3, 4")
    merged = by_tag(scalars_of(files[0]) + scalars_of(files[1]))
    check_epochs(merged, read_csv(os.path.join(work, "b.csv")), "resume")
    check_steps(merged, read_csv(os.path.join(work, "b.csv")), 10, "resume")  # 320 / 32
    check_tbparse(logdir, [scalars_of(f) for f in files], "resume")


def check_killed(work, data):
    """SIGKILL after some epochs were flushed: every record is whole, and the
    file ends where an epoch ended."""
    logdir = os.path.join(work, "runs", "c")
    proc = subprocess.Popen([NABLA, "train", os.path.join(work, "m.nn"), "--data", f"csv:{data}",
                             "--epochs", "100000", "--batch", "8", "--quiet", "--tensorboard", logdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    size, deadline = 0, time.time() + 60
    while size < 20000 and time.time() < deadline and proc.poll() is None:  # ~30 epochs
        time.sleep(0.02)
        files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
        size = os.path.getsize(files[0]) if files else 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
    check(len(files) == 1 and size >= 20000, f"killed run: {size} bytes written before the kill")
    if len(files) == 1:
        try:
            sc = scalars_of(files[0])
            ok = True
        except Exception as e:  # a truncated or corrupt record
            ok, sc = False, []
            print(e)
        check(ok and sum(1 for t, *_ in sc if t == "epoch/train_loss") >= 3,
              "killed run: the file reads to its end, whole records only")
        # flushed after every epoch, and only then: the file ends with an epoch's metrics
        check(sc and sc[-1][0] == "epoch/lr", f"killed run: the last scalar is "
              f"{sc[-1][0] if sc else None}, not the last epoch's epoch/lr")


def main():
    if not os.access(NABLA, os.X_OK):
        skip(f"{NABLA} is not built")
    if "--tensorboard needs protobuf-c" in run(["x.nn", "--data", "x.csv", "--tensorboard", "x"]).stderr:
        skip("this nabla was built without protobuf-c")
    check_reference()
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "m.nn"), "w") as f:
            f.write("input 4\ndense 16\nrelu\ndense 3\nloss cross_entropy\n")
        check_run(work, write_data(work, 320))
        check_resume(work, write_data(work, 320))
        check_killed(work, write_data(work, 48))
    finish()


if __name__ == "__main__":
    main()
