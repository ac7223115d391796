"""What the Python checks in tests/ share: where the data and the source tree
are, how a check that cannot run reports a skip, and the pass/fail count.
Each check runs with the build directory as its first argument."""
import os
import sys

DATA = "/usr/share/datasets/fashion-mnist/"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
NABLA = os.path.join(BUILD, "nabla")

_counts = {"passed": 0, "failed": 0}


def skip(why):
    """Report that the check could not run (ctest counts it as passed)."""
    print(f"skipped: {why}")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


def check(cond, what):
    """Count one check; print what failed."""
    if cond:
        _counts["passed"] += 1
    else:
        _counts["failed"] += 1
        print(f"FAILED: {what}", file=sys.stderr)


def finish():
    """Print the counts and exit: status 1 if any check failed."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)
