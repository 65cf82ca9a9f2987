"""One parallel map: in order, in real spawn processes, with progress; Dask in a thread cluster."""

import os

import pytest

from station.checks import StationError
from station.parallel import parallel_map


def _pid_square(x):
    return x * x, os.getpid()


def test_local_processes_keep_order_and_report_progress():
    seen = []
    out = parallel_map(_pid_square, range(6), jobs=2, progress=seen.append)
    assert [v for v, _ in out] == [0, 1, 4, 9, 16, 25] and len(seen) == 6
    assert os.getpid() not in {pid for _, pid in out}  # really other processes
    assert {pid for _, pid in parallel_map(_pid_square, [1, 2], jobs=1)} == {os.getpid()}
    assert parallel_map(_add, [1, 2, 3], jobs=2, args=(10,)) == [11, 12, 13]


def _add(x, y):
    return x + y


def _kept_progress():
    """A real rich Progress (not drawn) that remembers each task's total and count when removed."""
    from rich.progress import Progress

    class Kept(Progress):
        removed: list = []

        def remove_task(self, task_id):
            task = next(t for t in self.tasks if t.id == task_id)
            self.removed.append((task.description, task.total, task.completed))
            super().remove_task(task_id)

    return Kept(disable=True)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_bar_advances_by_each_items_weight(jobs):
    with _kept_progress() as bar:
        out = parallel_map(_add, [1, 2, 3], jobs=jobs, args=(1,), progress=bar, description="folds",
                           weights=[4, 4, 2])
        parallel_map(_add, [1, 2], args=(1,), progress=bar, description="items")  # default: 1 each
    assert out == [2, 3, 4]
    assert bar.removed == [("folds", 10, 10), ("items", 2, 2)]


def test_weights_that_do_not_fit_the_items_are_refused():
    with pytest.raises(ValueError, match=r"weights has 2 value\(s\) for 3 item\(s\)"):
        parallel_map(_add, [1, 2, 3], args=(1,), weights=[1, 2])
    with pytest.raises(ValueError, match="numbers >= 0, got -1"):
        parallel_map(_add, [1, 2], args=(1,), weights=[1, -1])


def _fail(x):
    raise ValueError(f"item {x}")


def test_errors_propagate():
    with pytest.raises(ValueError, match="item"):
        parallel_map(_fail, [1, 2], jobs=2)


@pytest.mark.slow
def test_dask_scheduler_address():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        assert [v for v, _ in parallel_map(_pid_square, [3, 1, 2], scheduler=c.scheduler_address)] == [9, 1, 4]
    with pytest.raises(StationError, match="cannot reach the Dask scheduler"):
        parallel_map(_pid_square, [1], scheduler="tcp://127.0.0.1:9")


def test_kept_workers_leave_with_a_killed_parent(tmp_path):
    """A command killed hard (SIGKILL, os._exit) must not leave its worker processes behind."""
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text("import os\nfrom station.parallel import parallel_map\n"
                      "def f(x):\n    return os.getpid()\n"
                      "if __name__ == '__main__':\n"
                      "    print(' '.join(map(str, set(parallel_map(f, range(4), jobs=2)))), flush=True)\n"
                      "    os._exit(0)\n")
    out = tmp_path / "workers.txt"
    with open(out, "w") as fh:  # a file, not a pipe: orphans holding a pipe would block the run
        subprocess.run([sys.executable, str(script)], stdout=fh, stderr=subprocess.DEVNULL, timeout=120)
    workers = [int(p) for p in out.read_text().split()]
    assert workers
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in workers if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]]
    assert not alive, f"worker(s) {alive} outlived their parent"
